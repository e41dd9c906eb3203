import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { encode } from 'cborg'
import { generateDhKey, type RandomSource } from '../../src/e2e/primitives.ts'
import { TalkenError } from '../../src/errors.ts'
import { type RoomEntry, signEntry } from '../../src/groups/entry.ts'
import {
  decodeGossipFrame,
  encodeGossipFrame,
  entryFrames,
  type GossipFrame,
  MAX_GOSSIP_FRAME_BYTES,
  MAX_GOSSIP_HASHES,
} from '../../src/groups/gossip-frames.ts'
import { HASH_LENGTH, MAX_ENTRY_BYTES } from '../../src/groups/limits.ts'
import { encodePostBody } from '../../src/groups/room-bodies.ts'
import {
  DEFAULT_GOSSIP_CONFIG,
  type GossipConfig,
  type GossipTraffic,
  type MemberId,
  NON_MEMBER_ANSWER_INTERVAL_MS,
  NON_MEMBER_ANSWERS_PER_INTERVAL,
  RoomGossip,
  type RoomGossipHost,
} from '../../src/groups/room-gossip.ts'
import { x25519Sealer } from '../../src/groups/room-keys.ts'
import { createRoom, openRoomLog } from '../../src/groups/room-log.ts'
import { createIdentity, identityFromSecrets } from '../../src/identity/identity.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'
import { throwsCode } from '../helpers/errors.ts'
import { prng, testSeed } from '../helpers/prng.ts'
import { add, founder, T0, type TestMember, transcript, utf8 } from './helpers.ts'

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const idOf = (m: TestMember): MemberId => hex(m.identity.account.publicKey)
/** Virtual milliseconds a frame takes per mesh hop. */
const HOP_MS = 10
/** Codes a gossip frame decoder may throw (see the note in the fuzz test on `non_canonical`). */
const FRAME_ERRORS = ['malformed', 'too_large', 'non_canonical']

const seedFor = (name: string): number => {
  const seed = testSeed()
  console.log(`# ${name} seed ${seed} (replay with TALKEN_SEED=${seed})`)
  return seed
}

// ------------------------------------------------------------------------------------------
// A deterministic network of room members: virtual clock, seeded randomness, per-hop delay,
// and an optional cut that drops frames and hides routes between two sides.

interface SentFrame {
  readonly at: number
  readonly from: MemberId
  readonly to: MemberId
  readonly frame: GossipFrame
  readonly traffic: GossipTraffic
}

interface Flight {
  readonly at: number
  readonly seq: number
  readonly from: MemberId
  readonly to: MemberId
  readonly bytes: Uint8Array
}

/** One member's device on the test network. */
class Node {
  gossip!: RoomGossip
  wake = Number.POSITIVE_INFINITY
  /** Entry hash → who it was accepted from, every time `accepted` was called. */
  readonly accepted = new Map<string, (MemberId | undefined)[]>()
  /** Entry hash → when it was first accepted (virtual ms). */
  readonly acceptedAt = new Map<string, number>()
  /** Entry hash → how many duplicate copies arrived. */
  readonly duplicates = new Map<string, number>()
  readonly rejected: { from: MemberId; error: TalkenError }[] = []
  readonly logs: string[] = []

  constructor(
    readonly member: TestMember,
    readonly id: MemberId,
  ) {}

  get name(): string {
    return this.member.name
  }

  transcript(): string[] {
    return transcript(this.member.log)
  }
}

class Net {
  now = T0
  readonly random: () => number
  readonly nodes = new Map<MemberId, Node>()
  readonly sent: SentFrame[] = []
  dropped = 0
  delivered = 0
  /** While set, a and b cannot reach each other: no route, and frames between them are lost. */
  cut: ((a: MemberId, b: MemberId) => boolean) | undefined
  /** While set, frames it picks are lost in transit (after being recorded in {@link sent}). */
  lose: ((s: SentFrame) => boolean) | undefined
  readonly #queue: Flight[] = []
  readonly #hops = new Map<string, number>()
  readonly #hopRandom: () => number
  /** When set, the hop count between two members (instead of a random 1 to 3). */
  hopTable: ((a: MemberId, b: MemberId) => number) | undefined
  #seq = 0

  constructor(seed: number) {
    this.random = prng(seed)
    this.#hopRandom = prng(seed ^ 0x5bd1e995)
  }

  /** A fixed hop count (1 to 3) between two members, drawn on first use. */
  hops(a: MemberId, b: MemberId): number {
    if (this.hopTable) return this.hopTable(a, b)
    const key = a < b ? `${a}${b}` : `${b}${a}`
    let h = this.#hops.get(key)
    if (h === undefined) {
      h = 1 + Math.floor(this.#hopRandom() * 3)
      this.#hops.set(key, h)
    }
    return h
  }

  distance(a: MemberId, b: MemberId): number | undefined {
    if (a === b || !this.nodes.has(a) || !this.nodes.has(b)) return undefined
    if (this.cut?.(a, b)) return undefined
    return this.hops(a, b)
  }

  /** Puts a member's device on the network with a gossip core of its own. */
  join(member: TestMember, config: Partial<GossipConfig> = {}): Node {
    const id = idOf(member)
    const node = new Node(member, id)
    this.nodes.set(id, node)
    const host: RoomGossipHost = {
      now: () => this.now,
      random: this.random,
      send: (to, bytes, traffic) => this.#send(id, to, bytes, traffic),
      distance: (to) => this.distance(id, to),
      wakeAt: (time) => {
        assert.ok(Number.isFinite(time), 'wake-ups are at a finite time')
        node.wake = Math.min(node.wake, time)
      },
      accepted: (hash, from) => {
        const list = node.accepted.get(hex(hash)) ?? []
        list.push(from)
        node.accepted.set(hex(hash), list)
        if (!node.acceptedAt.has(hex(hash))) node.acceptedAt.set(hex(hash), this.now)
      },
      duplicate: (hash) => node.duplicates.set(hex(hash), (node.duplicates.get(hex(hash)) ?? 0) + 1),
      rejected: (from, error) => node.rejected.push({ from, error }),
      log: (level, message) => node.logs.push(`${level} ${message}`),
    }
    node.gossip = new RoomGossip(member.log, member.identity.account.publicKey, host, config)
    return node
  }

  #send(from: MemberId, to: MemberId, bytes: Uint8Array, traffic: GossipTraffic): void {
    assert.ok(bytes.length <= MAX_GOSSIP_FRAME_BYTES, 'frames fit the limit')
    const frame = decodeGossipFrame(bytes)
    const carries = frame.type === 'push' || frame.type === 'supply'
    assert.equal(traffic, carries ? 'entries' : 'control', `traffic class of a ${frame.type} frame`)
    assert.notEqual(to, from, 'nobody sends to itself')
    const sent = { at: this.now, from, to, frame, traffic }
    this.sent.push(sent)
    const d = this.distance(from, to)
    if (d === undefined || this.lose?.(sent)) {
      this.dropped++
      return
    }
    this.#queue.push({ at: this.now + d * HOP_MS, seq: this.#seq++, from, to, bytes })
  }

  /** Hands `bytes` to `to` as if `from` had sent them, now, bypassing the network. */
  inject(from: MemberId, to: Node, bytes: Uint8Array): void {
    to.gossip.receive(from, bytes)
  }

  /** Runs deliveries and wake-ups in time order up to `until` (virtual ms), then sets the clock there. */
  runUntil(until: number, maxSteps = 500_000): void {
    for (let step = 0; ; step++) {
      assert.ok(step < maxSteps, `the network settles in ${maxSteps} steps`)
      let next = -1
      for (let i = 0; i < this.#queue.length; i++) {
        const f = this.#queue[i]!
        const best = this.#queue[next]
        if (best === undefined || f.at < best.at || (f.at === best.at && f.seq < best.seq)) next = i
      }
      let sleeper: Node | undefined
      for (const n of this.nodes.values()) if (sleeper === undefined || n.wake < sleeper.wake) sleeper = n
      const deliverAt = next < 0 ? Number.POSITIVE_INFINITY : this.#queue[next]!.at
      const wakeAt = sleeper?.wake ?? Number.POSITIVE_INFINITY
      const t = Math.min(deliverAt, wakeAt)
      if (t > until) break
      this.now = Math.max(this.now, t)
      if (deliverAt <= wakeAt) {
        const [f] = this.#queue.splice(next, 1)
        const to = this.nodes.get(f!.to)
        if (to === undefined || this.cut?.(f!.from, f!.to)) {
          this.dropped++
          continue
        }
        this.delivered++
        to.gossip.receive(f!.from, f!.bytes)
      } else {
        sleeper!.wake = Number.POSITIVE_INFINITY
        sleeper!.gossip.timer()
      }
    }
    this.now = Math.max(this.now, until)
  }

  runFor(ms: number): void {
    this.runUntil(this.now + ms)
  }

  /** `node` posts `text` and hands the entry to its gossip. */
  post(node: Node, text: string): RoomEntry {
    const entry = node.member.log.post(utf8(text), this.now)
    node.gossip.published(entry)
    return entry
  }

  framesOf(type: GossipFrame['type'], filter: (s: SentFrame) => boolean = () => true): SentFrame[] {
    return this.sent.filter((s) => s.frame.type === type && filter(s))
  }
}

/** Seeded bytes, so that a seed replays a run exactly (keys, nonces, hashes and all). */
const seededBytes =
  (rand: () => number): RandomSource =>
  (length) =>
    Uint8Array.from({ length }, () => Math.floor(rand() * 256))

/**
 * Like the helpers' founder (without `roomId`) or joiner (with it), but with identity, sealing
 * key and room randomness drawn from `random`.
 */
function seededMember(name: string, random: RandomSource, roomId?: Uint8Array): TestMember {
  const seconds = T0 / 1000
  const identity = identityFromSecrets({
    accountSeed: random(32),
    deviceSeed: random(32),
    deviceName: name,
    deviceCreated: seconds,
    accountCreated: seconds,
  })
  const sealer = x25519Sealer(generateDhKey(random), random)
  const store = createMemoryStore()
  const options = { store, identity, sealer, random }
  const log = roomId ? openRoomLog(options, roomId) : createRoom(options, 'room', T0)
  return { name, identity, sealer, store, log }
}

/** A room of `n` members who all hold the founder's entries, each on the network. */
function room(n: number, seed: number, config: Partial<GossipConfig> = {}) {
  const random = seededBytes(prng(seed ^ 0x2545f491))
  const first = seededMember('m0', random)
  const others = Array.from({ length: n - 1 }, (_, i) => seededMember(`m${i + 1}`, random, first.log.roomId))
  for (const o of others) add(first, o)
  for (const o of others) for (const bytes of first.log.entriesSince([])) o.log.receive(bytes)
  const net = new Net(seed)
  const nodes = [first, ...others].map((m) => net.join(m, config))
  /** A member-to-be with an empty log, for late joins. */
  const newcomer = (name: string) => seededMember(name, random, first.log.roomId)
  return { net, nodes, newcomer }
}

/** Asserts that every node holds the same verified history, with every post readable. */
function assertConverged(nodes: readonly Node[], posts: number): string[] {
  const reference = nodes[0]!.transcript()
  const postLines = reference.filter((l) => l.includes(' post '))
  assert.equal(postLines.length, posts, 'every post is in the history')
  assert.ok(!postLines.some((l) => l.endsWith(' -')), 'every post decrypts')
  for (const n of nodes) {
    assert.deepEqual(n.transcript(), reference, `${n.name} holds the same history`)
    assert.deepEqual(n.member.log.heads().map(hex), nodes[0]!.member.log.heads().map(hex))
    assert.equal(n.member.log.size.pending, 0, `${n.name} holds nothing pending`)
  }
  return reference
}

/** Every entry (post) was accepted exactly once at every member, and at non-authors from someone. */
function assertAcceptedOnce(
  nodes: readonly Node[],
  entries: readonly { entry: RoomEntry; by: Node }[],
): void {
  for (const { entry, by } of entries) {
    for (const n of nodes) {
      const froms = n.accepted.get(hex(entry.hash))
      assert.equal(froms?.length, 1, `${n.name} accepted ${hex(entry.hash).slice(0, 8)} exactly once`)
      if (n === by) assert.equal(froms![0], undefined, 'the author publishes it')
      else assert.ok(froms![0] !== undefined && froms![0] !== n.id, 'received from another member')
    }
  }
}

// ------------------------------------------------------------------------------------------

describe('gossip frames', () => {
  const h = (i: number) => new Uint8Array(HASH_LENGTH).fill(i)

  it('round-trips every kind, and entryFrames splits within the limits in order', () => {
    const alice = founder('alice')
    const entries = [alice.log.entries()[0]!.bytes, alice.log.post(utf8('hi'), T0 + 1).bytes]
    const frames: GossipFrame[] = [
      { type: 'push', entries },
      { type: 'supply', entries },
      { type: 'push', entries: [] },
      { type: 'ihave', hashes: [h(1), h(2)] },
      { type: 'graft', hashes: [h(3)] },
      { type: 'ihave', hashes: [] },
      { type: 'prune' },
      { type: 'sync', heads: [h(4), h(5)], reply: false },
      { type: 'sync', heads: [], reply: true },
      { type: 'graft', hashes: Array.from({ length: MAX_GOSSIP_HASHES }, (_, i) => h(i % 256)) },
    ]
    for (const f of frames) {
      const bytes = encodeGossipFrame(f)
      assert.deepEqual(decodeGossipFrame(bytes), f, `${f.type} round-trips`)
      assert.deepEqual(encodeGossipFrame(decodeGossipFrame(bytes)), bytes)
    }
    // Kinds are distinct on the wire.
    const kinds = new Set(frames.map((f) => encodeGossipFrame(f)[1]))
    assert.equal(kinds.size, 6)

    // Big entries: one or two per frame, never over the limit; order kept across frames.
    const big = Array.from({ length: 7 }, (_, i) => new Uint8Array(MAX_ENTRY_BYTES - i * 3000).fill(i + 1))
    // Many small ones: split by the hash-count limit.
    const small = Array.from({ length: 2 * MAX_GOSSIP_HASHES + 3 }, (_, i) => utf8(`entry ${i}`))
    for (const [list, type] of [
      [big, 'push'],
      [small, 'supply'],
      [[...small.slice(0, 5), ...big, ...small.slice(5, 9)], 'push'],
    ] as const) {
      const out = entryFrames(type, list)
      const back: Uint8Array[] = []
      for (const bytes of out) {
        assert.ok(bytes.length <= MAX_GOSSIP_FRAME_BYTES, `${bytes.length} fits`)
        const f = decodeGossipFrame(bytes)
        assert.equal(f.type, type)
        if (f.type === 'push' || f.type === 'supply') back.push(...f.entries)
      }
      assert.deepEqual(back, list, 'every entry once, in order')
      assert.ok(out.length >= Math.ceil(list.length / MAX_GOSSIP_HASHES))
    }
    assert.equal(entryFrames('push', [big[0]!, big[0]!]).length, 2, 'two largest entries never share a frame')
    assert.equal(entryFrames('supply', small).length, 3)
    assert.deepEqual(entryFrames('push', []), [])
  })

  it('refuses bad frames with malformed or too_large, and never anything untyped (fuzzed)', () => {
    const bad = (bytes: Uint8Array, ...codes: ('malformed' | 'too_large')[]) =>
      throwsCode(() => decodeGossipFrame(bytes), ...(codes.length > 0 ? codes : ['malformed' as const]))
    bad(new Uint8Array(0))
    bad(Uint8Array.of(0xff, 0x00, 0x13))
    bad(encode({ kind: 1 }))
    bad(encode(4))
    bad(encode([]))
    bad(encode(['push', []]))
    bad(encode([0]))
    bad(encode([7, []]))
    bad(encode([-1, []]))
    bad(encode([1.5, []]))
    bad(encode([4, []]), 'malformed') // prune takes nothing
    bad(encode([1]))
    bad(encode([1, [utf8('x')], true]))
    bad(encode([1, utf8('x')]))
    bad(encode([1, [new Uint8Array(0)]])) // an empty entry
    bad(encode([6, [new Uint8Array(MAX_ENTRY_BYTES + 1)]])) // one byte over an entry's limit
    bad(encode([1, ['text']]))
    bad(encode([2, [new Uint8Array(HASH_LENGTH - 1)]])) // hash one byte short
    bad(encode([3, [new Uint8Array(HASH_LENGTH + 1)]])) // hash one byte long
    bad(encode([2, [h(1), 'x']]))
    bad(encode([3, Array.from({ length: MAX_GOSSIP_HASHES + 1 }, () => h(1))]))
    bad(encode([5, [h(1)]])) // sync without reply
    bad(encode([5, [h(1)], 1])) // reply not a bool
    bad(encode([5, [new Uint8Array(31)], true]))
    bad(encode([5, [h(1)], false, 0]))
    bad(new Uint8Array(MAX_GOSSIP_FRAME_BYTES + 1), 'too_large')
    bad(encode([1, [new Uint8Array(MAX_ENTRY_BYTES), new Uint8Array(MAX_ENTRY_BYTES)]]), 'too_large')
    // Truncations of a valid frame.
    const sync = encodeGossipFrame({ type: 'sync', heads: [h(9), h(8)], reply: true })
    for (let cut = 0; cut < sync.length; cut++) bad(sync.subarray(0, cut))

    // Mutations of valid encodings of every kind: either a valid frame (that re-encodes to the
    // same bytes) or a TalkenError of a decoder's code.
    //
    // Note: decodeCbor (src/wire/cbor.ts) may throw `non_canonical`, which gossip-frames.ts's
    // comment ("throws `too_large` or `malformed` only") does not list; accepted here, reported.
    const seed = seedFor('gossip frame fuzz')
    const rand = prng(seed)
    const alice = founder('alice')
    const entry = alice.log.post(utf8('fuzz'), T0 + 1).bytes
    const samples = [
      encodeGossipFrame({ type: 'push', entries: [entry] }),
      encodeGossipFrame({ type: 'supply', entries: [utf8('a'), utf8('bc')] }),
      encodeGossipFrame({ type: 'ihave', hashes: [h(1), h(2)] }),
      encodeGossipFrame({ type: 'graft', hashes: [h(3)] }),
      encodeGossipFrame({ type: 'prune' }),
      encodeGossipFrame({ type: 'sync', heads: [h(4)], reply: false }),
    ]
    const seen = new Map<string, number>()
    for (let i = 0; i < 4000; i++) {
      const base = samples[i % samples.length]!
      let bytes = new Uint8Array(base)
      const edits = 1 + Math.floor(rand() * 3)
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(rand() * bytes.length)
        const op = Math.floor(rand() * 4)
        if (op === 0) bytes[at] = Math.floor(rand() * 256)
        else if (op === 1) bytes[at]! ^= 1 << Math.floor(rand() * 8)
        else if (op === 2) bytes = bytes.subarray(0, at)
        else
          bytes = Uint8Array.from([...bytes.subarray(0, at), Math.floor(rand() * 256), ...bytes.subarray(at)])
      }
      try {
        const f = decodeGossipFrame(bytes)
        assert.deepEqual(encodeGossipFrame(f), bytes, 'a frame that decodes is canonical')
        seen.set('ok', (seen.get('ok') ?? 0) + 1)
      } catch (err) {
        assert.ok(err instanceof TalkenError, `a TalkenError, not ${String(err)}`)
        assert.ok(FRAME_ERRORS.includes(err.code), `code ${err.code}: ${err.message}`)
        seen.set(err.code, (seen.get(err.code) ?? 0) + 1)
      }
    }
    assert.ok((seen.get('malformed') ?? 0) > 1000, 'mutations are mostly refused')
    console.log(`# gossip frame fuzz outcomes ${JSON.stringify(Object.fromEntries(seen))}`)
  })
})

describe('room gossip', () => {
  it('eight reachable members: 40 posts reach everyone, the tree prunes duplicates away', () => {
    const seed = seedFor('gossip spread')
    const { net, nodes } = room(8, seed)
    net.runFor(1_000)
    const posts: { entry: RoomEntry; by: Node }[] = []
    for (let i = 0; i < 40; i++) {
      const by = nodes[Math.floor(net.random() * nodes.length)]!
      posts.push({ entry: net.post(by, `${by.name} says ${i}`), by })
      net.runFor(100 + Math.floor(net.random() * 1_400))
    }
    net.runFor(5_000)
    assertConverged(nodes, 40)
    assertAcceptedOnce(nodes, posts)

    const dupsOf = (e: RoomEntry) => nodes.reduce((s, n) => s + (n.duplicates.get(hex(e.hash)) ?? 0), 0)
    const early = posts.slice(0, 10).reduce((s, p) => s + dupsOf(p.entry), 0)
    const late = posts.slice(10).reduce((s, p) => s + dupsOf(p.entry), 0)
    const prunes = nodes.reduce((s, n) => s + n.gossip.stats.prunesSent, 0)
    console.log(`# duplicates: first 10 posts ${early}, last 30 posts ${late}; prunes ${prunes}`)
    const delays = posts
      .slice(10)
      .flatMap(({ entry }) => nodes.map((n) => n.acceptedAt.get(hex(entry.hash))! - entry.time))
    delays.sort((a, b) => a - b)
    console.log(
      `# delivery after the first 10 posts: p50 ${delays[delays.length >> 1]} ms, max ${delays.at(-1)} ms, over 500 ms: ${delays.filter((d) => d > 500).length}/${delays.length}`,
    )
    assert.ok(late < 30 * 8 * 1.5, `duplicates over the last 30 posts: ${late}`)
    assert.ok(prunes > 0, 'duplicate pushes prune edges')
    assert.equal(net.framesOf('prune').length, prunes)
    // The eager overlay thinned: fewer full copies than a flood (7 per member per post) would send.
    const pushes = net.framesOf('push', (s) => s.at > posts[10]!.entry.time).length
    assert.ok(pushes < 30 * 8 * 2, `push frames after the first 10 posts: ${pushes}`)
    for (const n of nodes) {
      assert.equal(n.rejected.length, 0)
      assert.equal(n.gossip.stats.rejected, 0)
      const { eager, lazy } = n.gossip.peers()
      assert.ok(!eager.includes(n.id) && !lazy.includes(n.id), 'never its own peer')
      assert.ok(eager.length + lazy.length >= 4, `${n.name} keeps an overlay`)
    }
  })

  it('a partition: both sides post, heal, and everyone converges (review sync on reachability)', () => {
    const seed = seedFor('gossip partition')
    // No periodic anti-entropy: only the review noticing the healed routes can bring sides together.
    const { net, nodes } = room(8, seed, { antiEntropyIntervalMs: 1e12 })
    net.runFor(1_000)
    const left = new Set(nodes.slice(0, 4).map((n) => n.id))
    net.cut = (a, b) => left.has(a) !== left.has(b)
    net.runFor(3_000) // reviews notice the cut
    const posted: RoomEntry[] = []
    for (let i = 0; i < 24; i++) {
      const by = nodes[i % 2 === 0 ? i % 4 : 4 + (i % 4)]!
      posted.push(net.post(by, `${by.name} during the cut ${i}`))
      net.runFor(200 + Math.floor(net.random() * 400))
    }
    net.runFor(5_000)
    // Each side holds its own side's posts and none of the other's.
    for (const n of nodes) {
      for (const [i, e] of posted.entries()) {
        const sameSide = (i % 2 === 0) === left.has(n.id)
        assert.equal(n.member.log.has(e.hash), sameSide, `${n.name} and post ${i} across the cut`)
      }
    }
    net.cut = undefined
    net.runFor(6_000)
    assertConverged(nodes, 24)
    // A post after the merge links every head: the DAG closes for everyone.
    net.post(nodes[5]!, 'after the heal')
    net.runFor(10_000) // pushes, or for a stale tree edge announce (2 s) and graft (1.5 s) a hop
    assertConverged(nodes, 25)
    for (const n of nodes) assert.equal(n.member.log.heads().length, 1, `${n.name} has one head`)
    assert.ok(nodes.some((n) => n.gossip.stats.syncsSent > 0))
  })

  it('a lost push is repaired by the lazy path: ihave, then graft', () => {
    const seed = seedFor('gossip lazy repair')
    const { net, nodes } = room(8, seed, { antiEntropyIntervalMs: 1e12 })
    net.runFor(1_000)
    for (let i = 0; i < 15; i++) {
      net.post(nodes[i % 8]!, `warm-up ${i}`)
      net.runFor(500)
    }
    net.runFor(3_000)
    // An author with lazy peers; every full copy of its next post is lost on the way.
    const author = nodes.find((n) => n.gossip.peers().lazy.length > 0)
    assert.ok(author, 'pruning left someone with lazy peers')
    const lazy = author.gossip.peers().lazy
    let lost = 0
    const start = net.sent.length
    net.lose = (s) => {
      const gone = s.frame.type === 'push' && s.from === author.id
      if (gone) lost++
      return gone
    }
    const e = net.post(author, 'lost and found')
    net.runFor(10)
    net.lose = undefined
    const posted = net.now
    while (net.now < posted + 30_000 && !nodes.every((n) => n.member.log.has(e.hash))) net.runFor(100)
    console.log(`# lazy repair: everyone after ${net.now - posted} ms`)
    assertConverged(nodes, 16)
    const later = net.sent.slice(start)
    const announced = later.filter(
      (s) =>
        s.frame.type === 'ihave' &&
        s.from === author.id &&
        s.frame.hashes.some((h) => hex(h) === hex(e.hash)),
    )
    for (const peer of lazy)
      assert.ok(
        announced.some((s) => s.to === peer),
        'announced to each lazy peer',
      )
    // Grafts (which carry the asker's heads) follow an announcement after graftTimeoutMs, and are
    // answered with what the asker lacks: the lost entry among it.
    const firstIhave = later.find((s) => s.frame.type === 'ihave')!
    const grafted = later.filter((s) => s.frame.type === 'graft')
    assert.ok(grafted.length > 0, 'someone grafted')
    const supplied = later.filter(
      (s) => s.frame.type === 'supply' && s.frame.entries.some((b) => hex(b) === hex(e.bytes)),
    )
    assert.ok(supplied.length > 0, 'a graft brought the lost entry')
    const { graftTimeoutMs } = DEFAULT_GOSSIP_CONFIG
    for (const s of supplied) {
      const asked = grafted.filter((g) => g.from === s.to && g.to === s.from && g.at < s.at).at(-1)
      assert.ok(asked, 'supplied on a graft')
      assert.ok(asked.at >= firstIhave.at + graftTimeoutMs, 'the graft waited for graftTimeoutMs')
    }
    console.log(`# lazy repair: ${lost} pushes lost, ${announced.length} ihaves, ${grafted.length} grafts`)
  })

  it('one syncWith reconciles two diverged members both ways (the reply carries the rest)', () => {
    const { net, nodes } = room(3, 9, { antiEntropyIntervalMs: 1e12 })
    const [alice, bob, carol] = nodes as [Node, Node, Node]
    net.runFor(3_000)
    // Written without gossip: only the sync can move them.
    for (let i = 0; i < 3; i++) alice.member.log.post(utf8(`alice ${i}`), net.now)
    for (let i = 0; i < 4; i++) bob.member.log.post(utf8(`bob ${i}`), net.now)
    const syncs = bob.gossip.stats.syncsSent
    alice.gossip.syncWith(bob.id)
    net.runFor(500) // well before a missing head would be grafted (2 × graftTimeoutMs)
    assert.equal(net.framesOf('graft').length, 0)
    assert.equal(bob.gossip.stats.syncsSent, syncs + 1, 'bob answered with its own heads')
    assert.deepEqual(alice.transcript(), bob.transcript())
    assert.equal(alice.transcript().filter((l) => l.includes(' post ')).length, 7)
    // Synced entries spread on like any other: carol gets them without syncing.
    net.runFor(3_000)
    assertConverged([alice, bob, carol], 7)
  })

  it('a member nobody picked as a peer, who never posts, still gets posts promptly', () => {
    // m7 is 5 hops from everyone, the others 1 hop from each other, and nobody picks peers at
    // random: m7 is nobody's nearest. It picks its own peers and syncs with them, but never posts.
    const { net, nodes } = room(8, 1, { randomPeers: 0, antiEntropyIntervalMs: 60_000 })
    const quiet = nodes[7]!
    net.hopTable = (a, b) => (a === quiet.id || b === quiet.id ? 5 : 1)
    net.runFor(1_000)
    const posts: RoomEntry[] = []
    for (let i = 0; i < 10; i++) {
      posts.push(net.post(nodes[i % 7]!, `post ${i}`))
      net.runFor(500)
    }
    net.runFor(5_000)
    for (const e of posts) {
      const at = quiet.acceptedAt.get(hex(e.hash))
      assert.ok(
        at !== undefined && at - e.time < 5_000,
        `${quiet.name} got post ${hex(e.hash).slice(0, 8)} in time`,
      )
    }
  })

  it('a removed member hears of its removal soon, also when the remover had lost sight of it', () => {
    // Two members: only the admin can tell the other. The admin loses sight of it for a while
    // (the other, still seeing the admin, has no reason to sync again).
    const { net, nodes } = room(2, seedFor('gossip removal'), { antiEntropyIntervalMs: 600_000 })
    net.runFor(1_000)
    const admin = nodes[0]!
    const gone = nodes[1]!
    net.cut = (a, b) => a === admin.id && b === gone.id
    net.runFor(3_000) // the admin's reviews have seen it go
    // Back, and removed before the admin's next review sees it back: no push, no announcement.
    net.cut = undefined
    const removal = admin.member.log.removeMember(gone.member.identity.account.publicKey, net.now)
    admin.gossip.published(removal)
    net.runFor(5_000)
    assert.ok(gone.member.log.has(removal.hash), 'the removed member holds its removal')
  })

  it('a member alone keeps posting, becomes reachable, and everyone converges', () => {
    const seed = seedFor('gossip alone')
    const { net, nodes } = room(6, seed)
    net.runFor(1_000)
    const alone = nodes[3]!
    net.cut = (a, b) => a === alone.id || b === alone.id
    net.runFor(2_500)
    const sentBefore = net.sent.filter((s) => s.from === alone.id).length
    for (let i = 0; i < 20; i++) {
      const by = i % 2 === 0 ? alone : nodes[(i / 2) % 2 === 0 ? 0 : 5]!
      net.post(by, `${by.name} ${i}`)
      net.runFor(300)
    }
    net.runFor(2_000)
    assert.equal(alone.transcript().filter((l) => l.includes(' post ')).length, 10, 'only its own posts')
    const sentAlone = net.sent.filter((s) => s.from === alone.id && s.frame.type !== 'graft').length
    assert.equal(sentAlone, sentBefore, 'with no route, it sends nothing but late grafts')
    net.cut = undefined
    net.runFor(5_000)
    assertConverged(nodes, 20)
  })

  it('a late joiner catches up from supplyAll, or by syncing, and reads what follows', () => {
    for (const how of ['supplyAll', 'syncWith'] as const) {
      const seed = seedFor(`gossip late joiner (${how})`)
      const { net, nodes, newcomer: makeNewcomer } = room(4, seed)
      const [first] = nodes as [Node]
      net.runFor(1_000)
      for (let i = 0; i < 12; i++) {
        net.post(nodes[i % 4]!, `before ${i}`)
        net.runFor(150)
      }
      net.runFor(2_000)
      const newcomer = makeNewcomer('late')
      const added = first.member.log.addMember(
        {
          account: newcomer.identity.account.publicKey,
          sealingKey: newcomer.sealer.sealingKey,
          role: 'member',
        },
        net.now,
      )
      first.gossip.published(added)
      const late = net.join(newcomer)
      assert.equal(newcomer.log.size.entries, 0, 'the joiner holds nothing')
      if (how === 'supplyAll') first.gossip.supplyAll(late.id)
      else late.gossip.syncWith(first.id)
      net.runFor(1_000)
      assert.deepEqual(late.transcript(), first.transcript(), `${how}: the whole verified history`)
      // Posts after the add, by others and by the newcomer, reach and are read by everyone.
      const after = [net.post(nodes[2]!, 'welcome'), net.post(late, 'thanks')]
      net.runFor(5_000)
      const all = [...nodes, late]
      const ref = assertConverged(all, 14)
      assert.ok(ref.some((l) => l.endsWith(' post welcome')) && ref.some((l) => l.endsWith(' post thanks')))
      assert.ok(
        late.transcript().some((l) => l.endsWith(' post welcome')),
        'the newcomer reads it',
      )
      for (const e of after) for (const n of all) assert.ok(n.member.log.has(e.hash))
      assert.equal(late.gossip.stats.rejected, 0)
    }
  })

  it('frames from someone who is not a member make them no peer, and draw no sync at the next review', () => {
    const { net, nodes } = room(3, 11)
    const bob = nodes[1]!
    net.runFor(1_000)
    const mallory = hex(createIdentity({ now: T0, deviceName: 'mallory' }).account.publicKey)
    net.inject(mallory, bob, encodeGossipFrame({ type: 'push', entries: [] }))
    net.inject(mallory, bob, encodeGossipFrame({ type: 'sync', heads: [], reply: true, peer: true }))
    net.inject(mallory, bob, encodeGossipFrame({ type: 'graft', hashes: [] }))
    const { eager, lazy } = bob.gossip.peers()
    assert.ok(![...eager, ...lazy].includes(mallory), 'not a peer')
    const before = net.sent.length
    net.runFor(10_000) // several reviews
    assert.deepEqual(
      net.sent.slice(before).filter((f) => f.to === mallory),
      [],
      'nothing sent to them on our own',
    )
  })

  it("non-members' syncs and grafts are answered once a minute each, and a few times a minute in all", () => {
    const { net, nodes } = room(3, 13)
    const bob = nodes[1]!
    net.runFor(1_000)
    const stranger = () => hex(createIdentity({ now: T0, deviceName: 'x' }).account.publicKey)
    const answers = (to: string) => net.sent.filter((f) => f.to === to).length
    // One sealed request, replayed: the whole history once, then nothing for a minute.
    const mallory = stranger()
    const sync = encodeGossipFrame({ type: 'sync', heads: [], reply: true, peer: false })
    for (let i = 0; i < 20; i++) net.inject(mallory, bob, sync)
    for (let i = 0; i < 20; i++) net.inject(mallory, bob, encodeGossipFrame({ type: 'graft', hashes: [] }))
    const once = answers(mallory)
    assert.ok(once > 0, 'answered once')
    // Many made-up senders: a few answered in all.
    const others = Array.from({ length: 20 }, stranger)
    for (const o of others) net.inject(o, bob, sync)
    assert.equal(others.filter((o) => answers(o) > 0).length, NON_MEMBER_ANSWERS_PER_INTERVAL - 1)
    // A member is answered every time.
    const alice = nodes[0]!
    const before = answers(alice.id)
    for (let i = 0; i < 5; i++) net.inject(alice.id, bob, sync)
    assert.ok(answers(alice.id) >= before + 5)
    // A minute later, the sender is answered again.
    net.runFor(NON_MEMBER_ANSWER_INTERVAL_MS)
    net.inject(mallory, bob, sync)
    assert.ok(answers(mallory) > once)
  })

  it("a non-member's announcements and entries waiting for parents take nothing from repair", () => {
    const graftTimeoutMs = 1_000
    const { net, nodes } = room(3, 5, { graftTimeoutMs, antiEntropyIntervalMs: 1e12 })
    const [alice, bob] = nodes as [Node, Node, Node]
    net.runFor(1_000)
    const mallory = createIdentity({ now: T0, deviceName: 'mallory' })
    const malloryId = hex(mallory.account.publicKey)
    // Mallory announces more made-up hashes than anyone keeps wanting…
    for (let f = 0; f < 9; f++) {
      const hashes = Array.from({ length: MAX_GOSSIP_HASHES }, () => randomBytes(HASH_LENGTH))
      net.inject(malloryId, bob, encodeGossipFrame({ type: 'ihave', hashes }))
    }
    // …and pushes signed entries whose parents nobody holds, more than the log keeps waiting.
    const body = encodePostBody({
      keyId: new Uint8Array(16),
      nonce: new Uint8Array(12),
      ciphertext: new Uint8Array(16),
    })
    const made = Array.from(
      { length: 300 },
      (_, i) =>
        signEntry(mallory, {
          roomId: alice.member.log.roomId,
          parents: [randomBytes(HASH_LENGTH)],
          depth: 2,
          kind: 'post',
          body,
          time: T0 + i,
        }).bytes,
    )
    for (const f of entryFrames('push', made)) net.inject(malloryId, bob, f)
    assert.equal(bob.member.log.size.pending, 0)
    assert.equal(bob.gossip.stats.notKept, 300)
    // A member's entry whose parent is missing is still held, and the parent grafted.
    const parent = alice.member.log.post(utf8('parent'), net.now)
    const child = alice.member.log.post(utf8('child'), net.now)
    net.inject(alice.id, bob, encodeGossipFrame({ type: 'push', entries: [child.bytes] }))
    assert.equal(bob.member.log.size.pending, 1)
    net.runFor(graftTimeoutMs + 500)
    assert.ok(bob.member.log.has(parent.hash) && bob.member.log.has(child.hash))
    const { eager, lazy } = bob.gossip.peers()
    assert.ok(![...eager, ...lazy].includes(malloryId), 'not a peer')
    assert.deepEqual(
      net.sent.filter((f) => f.to === malloryId),
      [],
      'nothing asked of them',
    )
  })

  it('refuses forged entries, punishes a sender past maxStrikes, forgives after penaltyMs', () => {
    const { net, nodes } = room(3, 7, { maxStrikes: 3, penaltyMs: 60_000 })
    const [alice, bob, carol] = nodes as [Node, Node, Node]
    net.runFor(1_000)
    const honest = bob.transcript()
    const entriesBefore = bob.member.log.size.entries

    // A real entry of carol's with one signature byte flipped (the signature is the last field).
    const good = carol.member.log.post(utf8('carol real'), net.now)
    const flipped = new Uint8Array(good.bytes)
    flipped[flipped.length - 1]! ^= 0x01
    // An entry signed by someone who is not a member.
    const mallory = createIdentity({ now: T0, deviceName: 'mallory' })
    const foreign = signEntry(mallory, {
      roomId: alice.member.log.roomId,
      parents: bob.member.log.heads(),
      depth: bob.member.log.entries().at(-1)!.depth + 1,
      kind: 'leave',
      body: new Uint8Array(0),
      time: net.now,
    })
    const push = (...entries: Uint8Array[]) => encodeGossipFrame({ type: 'push', entries })

    net.inject(carol.id, bob, push(flipped))
    assert.equal(bob.gossip.stats.rejected, 1)
    assert.ok(bob.rejected[0]!.error instanceof TalkenError)
    assert.equal(bob.rejected[0]!.error.code, 'bad_signature')
    assert.equal(bob.rejected[0]!.from, carol.id)
    net.inject(carol.id, bob, push(foreign.bytes))
    assert.equal(bob.gossip.stats.rejected, 2)
    assert.equal(bob.rejected[1]!.error.code, 'not_permitted')
    assert.deepEqual(bob.transcript(), honest, 'nothing forged entered')
    assert.equal(bob.member.log.size.entries, entriesBefore)

    // A third bad frame (not even a gossip frame) reaches maxStrikes: carol is ignored…
    net.inject(carol.id, bob, Uint8Array.of(0x99, 0x01))
    assert.equal(bob.gossip.stats.rejected, 3)
    assert.ok(['malformed', 'too_large', 'non_canonical'].includes(bob.rejected[2]!.error.code))
    assert.equal(bob.gossip.stats.ignoredFrames, 0)
    net.inject(carol.id, bob, push(good.bytes))
    net.inject(
      carol.id,
      bob,
      encodeGossipFrame({ type: 'sync', heads: carol.member.log.heads(), reply: false }),
    )
    assert.equal(bob.gossip.stats.ignoredFrames, 2, 'even valid frames from carol are ignored')
    assert.equal(bob.member.log.has(good.hash), false)
    assert.equal(bob.gossip.stats.rejected, 3, 'ignored frames are not inspected')
    // …but not alice, whose valid push of the same entry is taken.
    net.inject(alice.id, bob, push(good.bytes))
    assert.equal(bob.member.log.has(good.hash), true)
    assert.deepEqual(bob.accepted.get(hex(good.hash)), [alice.id])

    // Still ignored just before the penalty ends; heard again after it.
    net.runUntil(net.now + 59_000)
    const ignored = bob.gossip.stats.ignoredFrames
    const next = carol.member.log.post(utf8('carol again'), net.now)
    net.inject(carol.id, bob, push(next.bytes))
    assert.equal(bob.gossip.stats.ignoredFrames, ignored + 1)
    assert.equal(bob.member.log.has(next.hash), false)
    net.runFor(1_500)
    const ignoredAfter = bob.gossip.stats.ignoredFrames
    net.inject(carol.id, bob, push(next.bytes))
    assert.equal(bob.gossip.stats.ignoredFrames, ignoredAfter, 'the penalty is over')
    assert.equal(bob.member.log.has(next.hash), true)
    assert.deepEqual(bob.accepted.get(hex(next.hash)), [carol.id])
    // A single later bad entry is one strike again, not an instant penalty.
    net.inject(carol.id, bob, push(flipped))
    const later = carol.member.log.post(utf8('carol third'), net.now)
    net.inject(carol.id, bob, push(later.bytes))
    assert.equal(bob.member.log.has(later.hash), true)
    for (const r of bob.rejected) assert.ok(r.error instanceof TalkenError)
    assert.ok(
      bob.logs.some((l) => l.startsWith('warn ')),
      'the penalty is logged',
    )

    // Fuzzed frames from alice never make receive throw, and never change the history.
    const rand = prng(11)
    const sample = push(later.bytes)
    const before = bob.transcript()
    for (let i = 0; i < 300; i++) {
      const bytes = new Uint8Array(sample)
      bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256)
      bob.gossip.receive(alice.id, bytes)
    }
    assert.deepEqual(bob.transcript(), before)
    for (const r of bob.rejected) assert.ok(r.error instanceof TalkenError)
  })

  it('holds an entry whose parent is missing and grafts the parent from its sender', () => {
    const graftTimeoutMs = 1_000
    const { net, nodes } = room(3, 3, { graftTimeoutMs, antiEntropyIntervalMs: 1e12 })
    const [alice, bob] = nodes as [Node, Node, Node]
    net.runFor(1_000)
    // Written into alice's log without gossip, so only a graft can bring the parent to bob.
    const parent = alice.member.log.post(utf8('parent'), net.now)
    const child = alice.member.log.post(utf8('child'), net.now)
    const at = net.now
    const bobHeads = bob.member.log.heads().map(hex)
    net.inject(alice.id, bob, encodeGossipFrame({ type: 'push', entries: [child.bytes] }))
    assert.equal(bob.member.log.has(child.hash), false, 'held, not in the history')
    assert.equal(bob.member.log.size.pending, 1)
    assert.equal(bob.accepted.has(hex(child.hash)), false)

    net.runUntil(at + graftTimeoutMs - 1)
    assert.equal(net.framesOf('graft').length, 0, 'no graft before the timeout')
    assert.equal(bob.member.log.has(parent.hash), false)
    net.runUntil(at + graftTimeoutMs + 200)
    const grafts = net.framesOf('graft', (s) => s.from === bob.id)
    assert.equal(grafts.length, 1)
    assert.equal(grafts[0]!.to, alice.id, 'grafted from the sender')
    assert.ok(grafts[0]!.at >= at + graftTimeoutMs)
    const g = grafts[0]!.frame
    assert.ok(g.type === 'graft')
    const named = new Set(g.hashes.map(hex))
    assert.ok(
      bobHeads.every((h) => named.has(h)),
      "a graft names the asker's heads",
    )
    assert.ok(!named.has(hex(parent.hash)) && !named.has(hex(child.hash)), 'and only what it holds')
    const answers = net.framesOf('supply', (s) => s.from === alice.id && s.to === bob.id)
    assert.ok(answers.length >= 1)
    const answer = answers[0]!.frame
    assert.ok(answer.type === 'supply')
    assert.equal(hex(answer.entries[0]!), hex(parent.bytes), 'the answer starts with what bob lacked')
    assert.ok(bob.member.log.has(parent.hash) && bob.member.log.has(child.hash), 'both accepted')
    assert.equal(bob.member.log.size.pending, 0)
    assert.deepEqual(bob.accepted.get(hex(parent.hash)), [alice.id])
    assert.deepEqual(bob.accepted.get(hex(child.hash)), [alice.id])
    assert.equal(bob.gossip.stats.graftsSent, 1)
    assert.ok(bob.gossip.peers().eager.includes(alice.id), 'a graft makes the edge eager')
    // Released entries spread onward: carol gets both too.
    net.runFor(3_000)
    assertConverged(nodes, 2)
  })

  it('a replayed entry is a duplicate, never applied twice; a second push prunes its sender', () => {
    const { net, nodes } = room(3, 5, { antiEntropyIntervalMs: 1e12 })
    const [alice, bob, carol] = nodes as [Node, Node, Node]
    net.runFor(1_000)
    const e = alice.member.log.post(utf8('once'), net.now)
    carol.member.log.receive(e.bytes)
    const push = encodeGossipFrame({ type: 'push', entries: [e.bytes] })
    net.inject(alice.id, bob, push)
    const size = bob.member.log.size.entries
    const lines = bob.transcript()
    const stats = { ...bob.gossip.stats }
    net.inject(alice.id, bob, push) // the same bytes again from the same sender: no prune
    net.inject(alice.id, bob, encodeGossipFrame({ type: 'supply', entries: [e.bytes, e.bytes] }))
    assert.equal(bob.gossip.stats.duplicates, stats.duplicates + 3)
    assert.equal(bob.gossip.stats.duplicatesPushed, stats.duplicatesPushed + 1)
    assert.equal(bob.gossip.stats.prunesSent, stats.prunesSent)
    assert.equal(bob.gossip.stats.entriesAccepted, stats.entriesAccepted)
    assert.equal(bob.duplicates.get(hex(e.hash)), 3)
    assert.deepEqual(bob.accepted.get(hex(e.hash)), [alice.id], 'accepted once')
    assert.equal(bob.member.log.size.entries, size)
    assert.deepEqual(bob.transcript(), lines)
    assert.equal(lines.filter((l) => l.endsWith(' post once')).length, 1)

    // The same entry pushed by another member: a duplicate over a second eager edge, pruned.
    const prunes = net.framesOf('prune', (s) => s.from === bob.id && s.to === carol.id).length
    net.inject(carol.id, bob, push)
    assert.equal(bob.gossip.stats.prunesSent, stats.prunesSent + 1)
    assert.equal(net.framesOf('prune', (s) => s.from === bob.id && s.to === carol.id).length, prunes + 1)
    assert.ok(bob.gossip.peers().lazy.includes(carol.id) && !bob.gossip.peers().eager.includes(carol.id))
    assert.equal(bob.member.log.size.entries, size)
    assert.deepEqual(bob.accepted.get(hex(e.hash)), [alice.id])
  })
})
