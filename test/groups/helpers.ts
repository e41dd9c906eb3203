/** Room members for tests: an identity, a sealing key, a store and a room log of their own. */
import assert from 'node:assert/strict'
import { generateDhKey } from '../../src/e2e/primitives.ts'
import { type EntryKind, type RoomEntry, signEntry } from '../../src/groups/entry.ts'
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

/** Whether `log` shows a post whose text includes `text` (it holds the key to read it). */
export function reads(log: RoomLog, text: string): boolean {
  return transcript(log).some((l) => l.includes(text))
}

/** `writer` posts `text`; synced to each of them, `cannot` do not read it and `can` do. */
export function postReadOnlyBy(
  writer: TestMember,
  text: string,
  now: number,
  parties: { cannot: readonly TestMember[]; can: readonly TestMember[] },
): void {
  writer.log.post(utf8(text), now)
  for (const m of parties.cannot) {
    sync(writer.log, m.log)
    assert.ok(!reads(m.log, text), `${m.name} reads "${text}"`)
  }
  for (const m of parties.can) {
    sync(writer.log, m.log)
    assert.ok(reads(m.log, text), `${m.name} does not read "${text}"`)
  }
}

/** Adds `who` to the room through `admin`'s log. */
export function add(admin: TestMember, who: TestMember, role: 'member' | 'admin' = 'member', now = T0): void {
  admin.log.addMember(
    { account: who.identity.account.publicKey, sealingKey: who.sealer.sealingKey, role },
    now,
  )
}

/**
 * `key` under `keyId` sealed by `by` for each of `members`, in account order: the `sealed` list
 * of a remove or rotate body, as a test that writes one by hand needs it.
 */
export function sealedForAll(
  by: TestMember,
  members: readonly TestMember[],
  keyId: Uint8Array,
  key: Uint8Array,
): Array<{ account: Uint8Array; sealed: Uint8Array }> {
  return members
    .map((m) => ({ account: m.identity.account.publicKey, sealingKey: m.sealer.sealingKey }))
    .sort((x, y) => Buffer.compare(Buffer.from(x.account), Buffer.from(y.account)))
    .map((m) => ({ account: m.account, sealed: by.sealer.seal(m, keyId, key) }))
}

/**
 * An entry by `author` whose one parent is `parent`, signed but not received anywhere: how a test
 * writes one "backdated" (on a parent from before what the author has seen).
 */
export function writtenOn(
  author: TestMember,
  parent: RoomEntry,
  kind: EntryKind,
  body: Uint8Array,
  time: number,
): RoomEntry {
  return signEntry(author.identity, {
    roomId: author.log.roomId,
    parents: [parent.hash],
    depth: parent.depth + 1,
    kind,
    body,
    time,
  })
}
