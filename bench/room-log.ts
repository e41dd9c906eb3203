/**
 * Room log memory against the room's own history: one member of a two-member room writes N key
 * rotations (what any member may write, with no rate limit), and the other's log is reopened from
 * its store. The heap that reopened log holds is set against the bytes of the entries it holds,
 * measured in the same run, for growing N: a ratio that stays flat means memory linear in the
 * history; it grew with N while each control entry kept a copy of its whole past.
 *
 * ```
 * npm run bench -- room-log --json
 * {"bench":"room-log","runs":[{"rotations":1000,"heapMB":…,"entriesMB":…,"heapPerEntryByte":…},…]}
 * ```
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { generateDhKey } from '../src/e2e/primitives.ts'
import { x25519Sealer } from '../src/groups/room-keys.ts'
import { createRoom, openRoomLog, type RoomLog } from '../src/groups/room-log.ts'
import { createIdentity } from '../src/identity/identity.ts'
import { createMemoryStore } from '../src/store/memory-store.ts'

/** Rotations per run. */
const RUNS = [1_000, 2_000, 4_000]
const T0 = 1_750_000_000_000

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

function member(name: string) {
  return {
    identity: createIdentity({ now: T0, deviceName: name }),
    sealer: x25519Sealer(generateDhKey()),
    store: createMemoryStore(),
  }
}

function sync(from: RoomLog, to: RoomLog): void {
  for (const bytes of from.entriesSince(to.heads())) to.receive(bytes)
}

/** The heap a reopened log of a room with `rotations` rotations holds, and its entries' bytes. */
function run(rotations: number): {
  rotations: number
  heapMB: number
  entriesMB: number
  heapPerEntryByte: number
} {
  const alice = member('alice')
  const bob = member('bob')
  const aliceLog = createRoom(alice, 'bench', T0)
  aliceLog.addMember({ account: bob.identity.account.publicKey, sealingKey: bob.sealer.sealingKey }, T0 + 1)
  let bobLog = openRoomLog(bob, aliceLog.roomId)
  sync(aliceLog, bobLog)
  for (let i = 0; i < rotations; i++) aliceLog.receive(bobLog.rotateKey(T0 + 2 + i).bytes)
  bobLog = undefined as unknown as RoomLog
  gc()
  const before = process.memoryUsage().heapUsed
  const reopened = openRoomLog(alice, aliceLog.roomId)
  gc()
  const heap = process.memoryUsage().heapUsed - before
  let bytes = 0
  for (const e of reopened.entries()) bytes += e.bytes.length
  const mb = (x: number) => Math.round((x / 1e6) * 10) / 10
  return {
    rotations,
    heapMB: mb(heap),
    entriesMB: mb(bytes),
    heapPerEntryByte: Math.round((heap / bytes) * 10) / 10,
  }
}

/** Runs every size; prints one JSON line with `json`, a table otherwise. */
export async function roomLogBench(opts: { json: boolean }): Promise<object> {
  const runs = RUNS.map(run)
  const result = { bench: 'room-log', runs }
  if (opts.json) console.log(JSON.stringify(result))
  else
    for (const r of runs)
      console.log(
        `${r.rotations} rotations: heap ${r.heapMB} MB for ${r.entriesMB} MB of entries (${r.heapPerEntryByte}×)`,
      )
  return result
}
