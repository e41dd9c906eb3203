/** Room members for tests: an identity, a sealing key, a store and a room log of their own. */
import { generateDhKey } from '../../src/e2e/primitives.ts'
import { x25519Sealer } from '../../src/groups/room-keys.ts'
import { createRoom, openRoomLog, type RoomLog } from '../../src/groups/room-log.ts'
import { createIdentity, type Identity } from '../../src/identity/identity.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'
import type { Store } from '../../src/store/store.ts'

/** One member's device. */
export interface TestMember {
  readonly name: string
  readonly identity: Identity
  readonly sealer: ReturnType<typeof x25519Sealer>
  readonly store: Store
  log: RoomLog
}

export const T0 = 1_750_000_000_000
const text = new TextEncoder()

/** UTF-8 bytes of `s`. */
export const utf8 = (s: string): Uint8Array => text.encode(s)

function member(name: string): Omit<TestMember, 'log'> {
  return {
    name,
    identity: createIdentity({ now: T0, deviceName: name }),
    sealer: x25519Sealer(generateDhKey()),
    store: createMemoryStore(),
  }
}

/** Creates a room owned by `owner`. */
export function founder(name: string, room = 'room'): TestMember {
  const m = member(name)
  return { ...m, log: createRoom({ store: m.store, identity: m.identity, sealer: m.sealer }, room, T0) }
}

/** A member-to-be with an empty log of `roomId` (nothing held until it syncs). */
export function joiner(name: string, roomId: Uint8Array): TestMember {
  const m = member(name)
  return { ...m, log: openRoomLog({ store: m.store, identity: m.identity, sealer: m.sealer }, roomId) }
}

/** Reopens a member's log from its store, as after a restart. */
export function reopen(m: TestMember): RoomLog {
  return openRoomLog({ store: m.store, identity: m.identity, sealer: m.sealer }, m.log.roomId)
}

/** One reconciliation between two logs: each sends what the other's heads say it lacks. */
export function sync(a: RoomLog, b: RoomLog): number {
  let moved = 0
  for (const bytes of a.entriesSince(b.heads())) {
    b.receive(bytes)
    moved++
  }
  for (const bytes of b.entriesSince(a.heads())) {
    a.receive(bytes)
    moved++
  }
  return moved
}

/** The history as comparable text: hash, kind and decrypted content of each entry. */
export function transcript(log: RoomLog): string[] {
  const dec = new TextDecoder()
  return log
    .history()
    .map(
      (h) =>
        `${Buffer.from(h.hash).toString('hex').slice(0, 12)} ${h.kind} ${h.content ? dec.decode(h.content) : '-'}`,
    )
}

/** Adds `who` to the room through `admin`'s log. */
export function add(admin: TestMember, who: TestMember, role: 'member' | 'admin' = 'member', now = T0): void {
  admin.log.addMember(
    { account: who.identity.account.publicKey, sealingKey: who.sealer.sealingKey, role },
    now,
  )
}
