/**
 * What a member's syncs and grafts can make us send is bounded by a budget of its own (a token
 * bucket): one small frame can ask for the whole history, and a member asking again and again
 * would otherwise make us send it each time. A non-member's keep their own, older limit.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeGossipFrame, encodeGossipFrame, type GossipFrame } from '../../src/groups/gossip-frames.ts'
import { MAX_ENTRY_BYTES, MAX_POST_BYTES } from '../../src/groups/limits.ts'
import {
  DEFAULT_GOSSIP_CONFIG,
  type GossipConfig,
  type MemberId,
  NON_MEMBER_ANSWER_INTERVAL_MS,
  RoomGossip,
} from '../../src/groups/room-gossip.ts'
import { createIdentity } from '../../src/identity/identity.ts'
import { prng } from '../helpers/prng.ts'
import { add, founder, joiner, T0, type TestMember, transcript } from './helpers.ts'

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const idOf = (m: TestMember): MemberId => hex(m.identity.account.publicKey)
const NO_HEADS: GossipFrame = { type: 'sync', heads: [], reply: false }
const bytesOf = (entries: readonly Uint8Array[]) => entries.reduce((s, e) => s + e.length, 0)

interface Sent {
  readonly from: MemberId
  readonly to: MemberId
  readonly frame: GossipFrame
  readonly bytes: number
}

/**
 * Gossip cores of room members on a virtual clock, delivering frames in order and at once
 * between those joined (frames to anyone else are recorded, and lost).
 */
class Wire {
  now = T0
  readonly sent: Sent[] = []
  readonly #nodes = new Map<MemberId, { gossip: RoomGossip; wake: number }>()
  readonly #queue: { from: MemberId; to: MemberId; bytes: Uint8Array }[] = []
  readonly #random = prng(7)

  join(m: TestMember, config: Partial<GossipConfig> = {}): RoomGossip {
    const id = idOf(m)
    const node = { gossip: undefined as unknown as RoomGossip, wake: Number.POSITIVE_INFINITY }
    this.#nodes.set(id, node)
    node.gossip = new RoomGossip(
      m.log,
      m.identity.account.publicKey,
      {
        now: () => this.now,
        random: this.#random,
        send: (to, bytes) => {
          this.sent.push({ from: id, to, frame: decodeGossipFrame(bytes), bytes: bytes.length })
          if (this.#nodes.has(to)) this.#queue.push({ from: id, to, bytes })
        },
        distance: (to) => (to !== id && this.#nodes.has(to) ? 1 : undefined),
        wakeAt: (t) => {
          node.wake = Math.min(node.wake, t)
        },
        log: () => {},
      },
      config,
    )
    return node.gossip
  }

  /** `from` (joined or not) sends `frame` to `to`; returns what `to` sent back to `from` at once. */
  ask(from: MemberId, to: TestMember, frame: GossipFrame): Sent[] {
    const before = this.sent.length
    this.#nodes.get(idOf(to))!.gossip.receive(from, encodeGossipFrame(frame))
    return this.sent.slice(before).filter((s) => s.to === from)
  }

  /** Delivers frames and runs wake-ups, in time order, for `ms` of virtual time. */
  run(ms: number): void {
    const until = this.now + ms
    for (;;) {
      const f = this.#queue.shift()
      if (f) {
        this.#nodes.get(f.to)!.gossip.receive(f.from, f.bytes)
        continue
      }
      let next: { gossip: RoomGossip; wake: number } | undefined
      for (const n of this.#nodes.values()) if (next === undefined || n.wake < next.wake) next = n
      if (next === undefined || next.wake > until) break
      this.now = Math.max(this.now, next.wake)
      next.wake = Number.POSITIVE_INFINITY
      next.gossip.timer()
    }
    this.now = until
  }
}

/** The entries of the supply frames among `sent`, in the order sent. */
const supplied = (sent: readonly Sent[]): Uint8Array[] =>
  sent.flatMap((s) => (s.frame.type === 'supply' ? [...s.frame.entries] : []))

/** Asserts that `got` is a strict, non-empty prefix of `all` (its oldest entries, causal order). */
function assertStrictPrefix(got: readonly Uint8Array[], all: readonly Uint8Array[], what: string): void {
  assert.ok(got.length > 0 && got.length < all.length, `${what}: ${got.length} of ${all.length} entries`)
  assert.deepEqual(got, all.slice(0, got.length), `${what}: the oldest first, in causal order`)
}

/** A room of `owner` and `other` (added, holding nothing), with `posts` posts of `size(i)` bytes. */
function roomWithHistory(posts: number, size: (i: number) => number) {
  const owner = founder('owner')
  const other = joiner('other', owner.log.roomId)
  add(owner, other)
  for (let i = 0; i < posts; i++) owner.log.post(new Uint8Array(size(i)).fill(i & 0xff), T0 + i)
  return { owner, other, all: owner.log.entriesSince([]) }
}

describe('room gossip: answer budgets', () => {
  it("a member's repeated syncs get the whole history once, then what the budget allows, then its refill", () => {
    const { supplyBurstBytes: burst, supplyBytesPerSecond: rate } = DEFAULT_GOSSIP_CONFIG
    // A large room by the defaults: about 4.8 MiB, taken in one answer, but not twice.
    const { owner, other, all } = roomWithHistory(300, () => MAX_POST_BYTES)
    const history = bytesOf(all)
    assert.ok(history < burst && 2 * history > burst, `${history} bytes against a burst of ${burst}`)
    const wire = new Wire()
    const gossip = wire.join(owner)
    const mal = idOf(other)

    const first = wire.ask(mal, owner, NO_HEADS)
    assert.deepEqual(supplied(first), all, 'the whole history, at once')
    assert.ok(
      first.some((s) => s.frame.type === 'sync'),
      'and our heads',
    )
    const second = wire.ask(mal, owner, NO_HEADS)
    assertStrictPrefix(supplied(second), all, 'the second answer')
    assert.equal(gossip.stats.suppliesTruncated, 1)
    // Asked again and again (and by graft): nothing more, not even our heads.
    for (let i = 0; i < 20; i++) {
      assert.deepEqual(wire.ask(mal, owner, NO_HEADS), [], 'a sync with the budget spent')
      assert.deepEqual(wire.ask(mal, owner, { type: 'graft', hashes: [] }), [], 'a graft with it spent')
    }
    assert.equal(gossip.stats.suppliesRefused, 40)
    const sentToMal = wire.sent.filter((s) => s.to === mal).reduce((sum, s) => sum + s.bytes, 0)
    assert.ok(
      sentToMal <= burst + MAX_ENTRY_BYTES + 4096,
      `${sentToMal} bytes: the burst, overdrawn by an entry at most`,
    )

    // Ten seconds later, about ten seconds' worth; once the budget is full again, everything.
    wire.run(10_000)
    const refilled = supplied(wire.ask(mal, owner, NO_HEADS))
    assertStrictPrefix(refilled, all, 'after 10 s')
    assert.ok(bytesOf(refilled) <= 10 * rate + MAX_ENTRY_BYTES, `${bytesOf(refilled)} bytes after 10 s`)
    assert.deepEqual(wire.ask(mal, owner, NO_HEADS), [], 'spent again')
    wire.run(Math.ceil((burst / rate) * 1000) + 1000)
    assert.deepEqual(supplied(wire.ask(mal, owner, NO_HEADS)), all, 'a full budget takes it all again')
    // A sync naming the heads lacks nothing, and costs nothing but a look.
    assert.deepEqual(
      supplied(wire.ask(mal, owner, { type: 'sync', heads: owner.log.heads(), reply: true })),
      [],
    )
  })

  it('a catch-up larger than the budget completes over later grafts and syncs, losing nothing', () => {
    // A small budget against a history of about 155 KiB, in entries of mixed sizes.
    const config = { supplyBurstBytes: 16 * 1024, supplyBytesPerSecond: 1024 }
    const random = prng(11)
    const { owner, other, all } = roomWithHistory(60, () => 256 + Math.floor(random() * 4096))
    assert.ok(bytesOf(all) > 8 * config.supplyBurstBytes, `${bytesOf(all)} bytes`)
    const wire = new Wire()
    const ownerGossip = wire.join(owner, config)
    const otherGossip = wire.join(other, config)

    otherGossip.syncWith(idOf(owner))
    wire.run(0)
    assertStrictPrefix(other.log.entriesSince([]), all, 'the first answer')
    assert.equal(other.log.size.pending, 0, 'every entry of it verified at once')
    // The periodic syncs and the grafts of the heads named in our reply bring the rest.
    let rounds = 0
    while (other.log.size.entries < all.length && rounds++ < 200) {
      wire.run(10_000)
      assert.equal(other.log.size.pending, 0, 'nothing waits for a parent')
    }
    assert.deepEqual(transcript(other.log), transcript(owner.log), 'the whole verified history')
    assert.ok(ownerGossip.stats.suppliesTruncated > 1, 'over several answers')
    assert.equal(otherGossip.stats.rejected, 0)
    assert.equal(otherGossip.stats.notKept, 0)
  })

  it("non-members keep their own limit, and take nothing from members' budgets", () => {
    const config = { supplyBurstBytes: 16 * 1024, supplyBytesPerSecond: 1024 }
    const { owner, other, all } = roomWithHistory(30, () => 2048)
    assert.ok(bytesOf(all) > 2 * config.supplyBurstBytes)
    const wire = new Wire()
    const gossip = wire.join(owner, config)
    const stranger = () => hex(createIdentity({ now: T0, deviceName: 'x' }).account.publicKey)

    // A member spends its budget: a part of the history, then nothing.
    const member = idOf(other)
    assertStrictPrefix(supplied(wire.ask(member, owner, NO_HEADS)), all, "a member's first answer")
    assert.deepEqual(wire.ask(member, owner, NO_HEADS), [], "a member's next")
    // A non-member is answered in full, whatever a member's budget, once a minute.
    const mallory = stranger()
    const once = wire.ask(mallory, owner, NO_HEADS)
    assert.deepEqual(supplied(once), all, "a non-member's answer is whole")
    assert.ok(
      once.some((s) => s.frame.type === 'sync'),
      'with our heads',
    )
    const ignored = gossip.stats.ignoredFrames
    for (let i = 0; i < 5; i++) {
      assert.deepEqual(wire.ask(mallory, owner, NO_HEADS), [])
      assert.deepEqual(wire.ask(mallory, owner, { type: 'graft', hashes: [] }), [])
    }
    assert.equal(gossip.stats.ignoredFrames, ignored + 10, 'counted as ignored, as before')
    // Another non-member is answered in full too: members' budgets do not cover them.
    assert.deepEqual(supplied(wire.ask(stranger(), owner, NO_HEADS)), all)
    assert.equal(gossip.stats.suppliesTruncated, 1, "only the member's answer was cut")
    assert.equal(gossip.stats.suppliesRefused, 1)
    // A minute later the non-member is answered in full again, and the member by its refill.
    wire.run(NON_MEMBER_ANSWER_INTERVAL_MS)
    assert.deepEqual(supplied(wire.ask(mallory, owner, NO_HEADS)), all)
    assertStrictPrefix(supplied(wire.ask(member, owner, NO_HEADS)), all, 'the member, a minute later')
  })
})
