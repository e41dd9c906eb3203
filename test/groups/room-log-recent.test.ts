import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { compareBytes, type RoomEntry, toHex } from '../../src/groups/entry.ts'
import type { RoomLog } from '../../src/groups/room-log.ts'
import { prng, testSeed } from '../helpers/prng.ts'
import { add, founder, joiner, reopen, sync, T0, utf8, writtenOn } from './helpers.ts'

/** What a sync or graft names (room-gossip.ts: SYNC_HASHES). */
const SYNC_HASHES = 48

/** The line of deepest parents (ties: the lowest hash) below `top`; index = distance from it. */
function lineBelow(log: RoomLog, top: RoomEntry): RoomEntry[] {
  const line = [top]
  for (let e = top; e.parents.length > 0; line.push(e)) {
    const parents = e.parents.map((p) => log.entry(p)!)
    e = parents.reduce((a, b) => (b.depth > a.depth ? b : a))
  }
  return line
}

/**
 * docs/groups.md §Sync: at most `max` hashes; the heads, deepest first (cut to leave room for the
 * doubling distances); then entries on the line below the deepest head at every power of two up
 * to its depth, and the nearest distances with what room is left.
 */
function expectedRecent(log: RoomLog, max: number): string[] {
  const heads = log
    .heads()
    .map((h) => log.entry(h)!)
    .sort((a, b) => b.depth - a.depth || compareBytes(a.hash, b.hash))
  const top = heads[0]!
  const far: number[] = []
  for (let d = 1; d <= top.depth; d *= 2) far.push(d)
  const named = heads.slice(0, Math.max(1, max - far.length))
  const room = max - named.length
  const distances = new Set(far.slice(0, room))
  for (let d = 1; distances.size < room && d <= top.depth; d++) distances.add(d)
  const line = lineBelow(log, top)
  return [
    ...named.map((e) => toHex(e.hash)),
    ...[...distances].sort((a, b) => a - b).map((d) => toHex(line[d]!.hash)),
  ]
}

describe('room log: what a sync names', () => {
  it('a member who wrote many entries while apart is answered with only what it lacks, not the whole history', () => {
    const alice = founder('alice')
    const bob = joiner('bob', alice.log.roomId)
    add(alice, bob)
    sync(alice.log, bob.log)
    for (let i = 0; i < 200; i++) alice.log.post(utf8(`common ${i}`), T0 + i)
    sync(alice.log, bob.log)
    // Apart: Bob writes 10, Alice 5; each then names what it holds, as a sync does.
    for (let i = 0; i < 10; i++) bob.log.post(utf8(`bob ${i}`), T0 + 1000 + i)
    for (let i = 0; i < 5; i++) alice.log.post(utf8(`alice ${i}`), T0 + 1000 + i)
    const toBob = alice.log.entriesSince(bob.log.recent(SYNC_HASHES))
    const toAlice = bob.log.entriesSince(alice.log.recent(SYNC_HASHES))
    assert.equal(toBob.length, 5, 'Alice sends her 5 only')
    assert.equal(toAlice.length, 10, 'Bob sends his 10 only')
    for (const bytes of toBob) assert.equal(bob.log.receive(bytes).status, 'accepted')
    for (const bytes of toAlice) assert.equal(alice.log.receive(bytes).status, 'accepted')
    assert.deepEqual(alice.log.heads(), bob.log.heads())
  })

  it('a member who wrote more than the names near its head cover gets at most as many entries again as it wrote', () => {
    const alice = founder('alice')
    const bob = joiner('bob', alice.log.roomId)
    add(alice, bob)
    sync(alice.log, bob.log)
    for (let i = 0; i < 300; i++) alice.log.post(utf8(`common ${i}`), T0 + i)
    sync(alice.log, bob.log)
    const apart = 100
    for (let i = 0; i < apart; i++) bob.log.post(utf8(`bob ${i}`), T0 + 1000 + i)
    for (let i = 0; i < 3; i++) alice.log.post(utf8(`alice ${i}`), T0 + 1000 + i)
    const named = bob.log.recent(SYNC_HASHES)
    assert.ok(named.length <= SYNC_HASHES)
    const toBob = alice.log.entriesSince(named)
    const lacking = toBob.filter((b) => bob.log.receive(b).status === 'accepted').length
    assert.equal(lacking, 3)
    // The nearest name Alice holds lies at most twice as far back as what Bob wrote apart.
    assert.ok(toBob.length <= lacking + apart, `${toBob.length} entries sent`)
  })

  it('names the heads, then entries on the line below the deepest head, near and then doubling; the same after a restart', () => {
    const seed = testSeed()
    console.log(`# recent seed ${seed} (replay with TALKEN_SEED=${seed})`)
    const rand = prng(seed)
    const alice = founder('alice')
    const bob = joiner('bob', alice.log.roomId)
    const carol = joiner('carol', alice.log.roomId)
    add(alice, bob)
    add(alice, carol)
    sync(alice.log, bob.log)
    sync(alice.log, carol.log)
    const members = [alice, bob, carol]
    // Concurrent branches that merge now and then: lines of deepest parents that cross them.
    for (let i = 0; i < 400; i++) {
      const m = members[Math.floor(rand() * members.length)]!
      m.log.post(utf8(`post ${i}`), T0 + i)
      if (rand() < 0.1) {
        const other = members[Math.floor(rand() * members.length)]!
        if (other !== m) sync(m.log, other.log)
      }
    }
    for (const m of members) {
      for (const max of [SYNC_HASHES, 12, 3, 1]) {
        const named = m.log.recent(max).map(toHex)
        assert.ok(named.length <= max)
        assert.deepEqual(named, expectedRecent(m.log, max), `${m.name}, at most ${max}`)
      }
      assert.deepEqual(reopen(m).recent(SYNC_HASHES).map(toHex), expectedRecent(m.log, SYNC_HASHES))
    }
    // More heads than the bound: the deepest are named, and the doubling distances still are.
    const tip = alice.log.post(utf8('the last'), T0 + 500)
    for (let i = 0; i < 60; i++) alice.log.receive(writtenOn(alice, tip, 'post', tip.body, T0 + i).bytes)
    assert.equal(alice.log.heads().length, 60)
    const named = alice.log.recent(SYNC_HASHES).map(toHex)
    assert.equal(named.length, SYNC_HASHES)
    assert.deepEqual(named, expectedRecent(alice.log, SYNC_HASHES))
    const depth = tip.depth + 1
    const below = lineBelow(alice.log, alice.log.entry(alice.log.heads()[0]!)!).slice(1)
    const line = new Set(below.map((e) => toHex(e.hash)))
    const doubling = Math.floor(Math.log2(depth)) + 1
    assert.equal(named.filter((h) => line.has(h)).length, doubling, 'one per power of two up to the depth')
  })
})
