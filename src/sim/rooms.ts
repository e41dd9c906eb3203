/**
 * The `rooms` scenario: one room of members inside a larger mesh, many posts, Talken's room
 * gossip (docs/groups.md §Dissemination) over its real mesh core, beside naive flooding on the
 * same topology, seed and post schedule.
 *
 * - Topology: a static random geometric graph (mean degree 8); the members are drawn from its
 *   largest component, so every member can reach every other.
 * - The room (genesis and one add per member) is made before the run and held by every member, as
 *   if they had joined earlier; the run measures the posts.
 * - Talken: each node runs the mesh core; each member also runs a room log and {@link RoomGossip},
 *   whose frames travel as mesh messages (multi-hop, acknowledged). Non-members only relay.
 * - Flooding: every node, on first sight of a post, sends it to each of its neighbours but the
 *   one it came from.
 *
 * Metrics, per mode:
 * - `deliveryRatio`: (post, member other than its author) pairs delivered / all such pairs.
 * - `latencyP50`, `latencyP95`: seconds from post to delivery at a member, over delivered pairs.
 * - `txPerPostPerMember`: transmissions of room traffic / (posts × members): every hop of every
 *   envelope carrying a room frame (pushes, announcements, grafts, prunes, syncs, supplies), or,
 *   for flooding, every copy of a post sent over a link.
 * - `upkeepPerPostPerMember`: Talken's other frames / (posts × members): the mesh's hellos and
 *   route updates, which it sends whether or not a room exists, and the per-hop link
 *   acknowledgements (flooding is given perfect links and sends none).
 * - `duplicatesPerMember`: full copies of a post a member received beyond the first /
 *   (posts × members).
 */
import { generateDhKey, type RandomSource } from '../e2e/primitives.ts'
import { TalkenError } from '../errors.ts'
import { toHex } from '../groups/entry.ts'
import { RoomGossip } from '../groups/room-gossip.ts'
import { x25519Sealer } from '../groups/room-keys.ts'
import { createRoom, openRoomLog, type RoomLog } from '../groups/room-log.ts'
import { type Identity, identityFromSecrets } from '../identity/identity.ts'
import { createMeshRouter, type MeshCore } from '../mesh/mesh-core.ts'
import type { Delivery, NeighbourId, Router, RouterHost, RouterLoad, SendOptions } from '../mesh/router.ts'
import { createMemoryStore } from '../store/memory-store.ts'
import type { Store } from '../store/store.ts'
import { DEFAULT_LINK } from './link-model.ts'
import { percentile } from './metrics.ts'
import { Rng } from './rng.ts'
import type { RouterEntry } from './routers.ts'
import { InputKind, ScheduleBuilder } from './schedule.ts'
import { type ScenarioInput, simulate } from './simulator.ts'
import { geometricEdges, largestComponent, sideForDegree } from './topology.ts'
import { makePlan, type PlannedMessage } from './traffic.ts'

/** Options of {@link runRooms}. */
export interface RoomsOptions {
  readonly nodes: number
  readonly seed: number
  /** Room members (default 50, at most 128). */
  readonly members?: number
  /** Posts (default 1,000). */
  readonly posts?: number
  /** Time between posts (default 500 ms). */
  readonly postIntervalMs?: number
}

/** What one mode (Talken or flooding) measured. */
export interface RoomsMetrics {
  deliveryRatio: number
  latencyP50: number | null
  latencyP95: number | null
  txPerPostPerMember: number
  upkeepPerPostPerMember: number
  duplicatesPerMember: number
  framesSent: number
  dataFrames: number
  delivered: number
  expected: number
  completed: boolean
}

/** The report: one object, both modes on the same input. */
export interface RoomsReport {
  readonly scenario: 'rooms'
  readonly nodes: number
  readonly seed: number
  readonly members: number
  readonly posts: number
  readonly talken: RoomsMetrics
  readonly flooding: RoomsMetrics
  readonly scenarioInfo: Readonly<Record<string, number | string>>
  readonly wallSeconds: number
  readonly cpuSeconds: number
  readonly peakRssMB: number
}

const RADIUS_M = 30
const DEGREE = 8
const WARMUP_MS = 60_000
const DRAIN_MS = 120_000
/** Unix time of the run's start, for entry times. */
const T0 = 1_767_225_600_000
/** Room frames live this long in the mesh: long enough for a member briefly out of reach. */
const FRAME_TTL_MS = 10 * 60_000
/** Flooding frames are as large as a Talken post entry, so that bytes compare too. */
const FLOOD_FRAME_BYTES = 360

interface Built {
  readonly input: ScenarioInput
  readonly members: readonly number[]
  readonly info: Record<string, number | string>
}

function build(o: Required<RoomsOptions>): Built {
  const root = Rng.fromSeed(o.seed)
  const n = o.nodes
  const side = sideForDegree(n, RADIUS_M, DEGREE)
  const graph = geometricEdges(root.fork('topology'), n, side, RADIUS_M)
  const component = largestComponent(n, graph.edges)
  if (component.length < o.members) {
    throw new TalkenError(
      'invalid_argument',
      `the largest component has ${component.length} nodes, fewer than the members`,
    )
  }
  const pick = root.fork('members')
  const pool = [...component]
  const members: number[] = []
  while (members.length < o.members) members.push(pool.splice(pick.int(pool.length), 1)[0]!)
  const schedule = new ScheduleBuilder()
  for (let i = 0; i < graph.edges.length; i += 2)
    schedule.add(0, InputKind.linkUp, graph.edges[i]!, graph.edges[i + 1]!)
  const traffic = root.fork('traffic')
  const durationMs = WARMUP_MS + o.posts * o.postIntervalMs + DRAIN_MS
  const posts: PlannedMessage[] = []
  for (let i = 0; i < o.posts; i++) {
    const src = members[traffic.int(members.length)]!
    posts.push({
      src,
      dst: src,
      size: 32 + traffic.int(200),
      createdAt: WARMUP_MS + i * o.postIntervalMs,
      ttlMs: durationMs,
    })
  }
  const tagRng = root.fork('tags')
  const tags = Array.from({ length: n }, () => tagRng.fill(new Uint8Array(16)))
  const info = {
    links: graph.edges.length / 2,
    meanDegree: Math.round((graph.edges.length / n) * 100) / 100,
    largestComponent: component.length,
    durationSeconds: durationMs / 1000,
  }
  const input: ScenarioInput = {
    name: 'rooms',
    nodes: n,
    durationMs,
    tags,
    schedule: schedule.build(),
    messages: makePlan(posts),
    link: () => DEFAULT_LINK,
    info,
  }
  return { input, members, info }
}

/** Per-run bookkeeping shared by the nodes' routers. */
class Collector {
  readonly posted = new Map<string, { at: number; author: number }>()
  readonly firstSeen = new Map<string, number>()
  duplicates = 0
  readonly #latencies: number[] = []
  constructor(readonly memberCount: number) {}

  post(key: string, author: number, at: number): void {
    this.posted.set(key, { at, author })
  }
  seen(key: string, node: number, at: number): void {
    const p = this.posted.get(key)
    if (p === undefined || p.author === node) return
    const k = `${key}:${node}`
    if (this.firstSeen.has(k)) {
      this.duplicates++
      return
    }
    this.firstSeen.set(k, at)
    this.#latencies.push((at - p.at) / 1000)
  }
  metrics(frames: { data: number; control: number; completed: boolean }): RoomsMetrics {
    const expected = this.posted.size * (this.memberCount - 1)
    const lat = Float64Array.from(this.#latencies).sort()
    const per = this.posted.size * this.memberCount
    const round = (x: number) => Math.round(x * 1000) / 1000
    return {
      deliveryRatio: expected === 0 ? 0 : round(this.firstSeen.size / expected),
      latencyP50: percentile(lat, 0.5),
      latencyP95: percentile(lat, 0.95),
      txPerPostPerMember: per === 0 ? 0 : round(frames.data / per),
      upkeepPerPostPerMember: per === 0 ? 0 : round(frames.control / per),
      duplicatesPerMember: per === 0 ? 0 : round(this.duplicates / per),
      framesSent: frames.data + frames.control,
      dataFrames: frames.data,
      delivered: this.firstSeen.size,
      expected,
      completed: frames.completed,
    }
  }
}

/** The room as made before the run: each member's keys and the entries they all hold. */
interface RoomSetup {
  readonly identities: Map<number, Identity>
  readonly sealers: Map<number, ReturnType<typeof x25519Sealer>>
  readonly randoms: Map<number, RandomSource>
  readonly roomId: Uint8Array
  readonly entries: readonly Uint8Array[]
}

function makeRoom(seed: number, members: readonly number[]): RoomSetup {
  const rng = Rng.fromSeed(seed).fork('room')
  const random: RandomSource = (k) => rng.fill(new Uint8Array(k))
  const identities = new Map<number, Identity>()
  const sealers = new Map<number, ReturnType<typeof x25519Sealer>>()
  const randoms = new Map<number, RandomSource>()
  for (const node of members) {
    const secondsT0 = T0 / 1000
    identities.set(
      node,
      identityFromSecrets({
        accountSeed: random(32),
        deviceSeed: random(32),
        deviceName: `n${node}`,
        deviceCreated: secondsT0,
        accountCreated: secondsT0,
      }),
    )
    const own = rng.fork(`node-${node}`)
    const nodeRandom: RandomSource = (k) => own.fill(new Uint8Array(k))
    randoms.set(node, nodeRandom)
    sealers.set(node, x25519Sealer(generateDhKey(random), nodeRandom))
  }
  const founder = members[0]!
  const log = createRoom(
    { store: createMemoryStore(), identity: identities.get(founder)!, sealer: sealers.get(founder)!, random },
    'rooms',
    T0,
  )
  for (const node of members.slice(1)) {
    log.addMember(
      { account: identities.get(node)!.account.publicKey, sealingKey: sealers.get(node)!.sealingKey },
      T0,
    )
  }
  return { identities, sealers, randoms, roomId: log.roomId, entries: log.entries().map((e) => e.bytes) }
}

/** A node of the Talken run: the mesh core, and for members a room log with its gossip. */
class MemberRouter implements Router {
  readonly #inner: MeshCore
  readonly #host: RouterHost
  readonly #gossip: RoomGossip | undefined
  readonly #log: RoomLog | undefined
  readonly #inbox: Uint8Array[] = []
  readonly #node: number
  readonly #account: Uint8Array | undefined
  readonly #collector: Collector
  constructor(
    init: { self: Uint8Array; host: RouterHost; store: Store },
    ctx: { node: number; setup: RoomSetup; tagOf: Map<string, Uint8Array>; collector: Collector },
  ) {
    const host = init.host
    this.#host = host
    this.#node = ctx.node
    this.#collector = ctx.collector
    this.#inner = createMeshRouter({
      self: init.self,
      store: init.store,
      host: {
        now: () => host.now(),
        random: () => host.random(),
        transmit: (n, f, k) => host.transmit(n, f, k),
        deliver: (d: Delivery) => {
          this.#inbox.push(d.payload)
        },
        stateChanged: () => {},
        wakeAt: (t) => host.wakeAt(t),
        log: host.log,
      },
    })
    const identity = ctx.setup.identities.get(ctx.node)
    if (identity === undefined) return
    this.#account = identity.account.publicKey
    const log = openRoomLog(
      {
        store: init.store,
        identity,
        sealer: ctx.setup.sealers.get(ctx.node)!,
        random: ctx.setup.randoms.get(ctx.node)!,
      },
      ctx.setup.roomId,
    )
    if (log.size.entries === 0) for (const e of ctx.setup.entries) log.receive(e)
    this.#log = log
    this.#gossip = new RoomGossip(log, identity.account.publicKey, {
      now: () => host.now(),
      random: () => host.random(),
      send: (member, frame) => {
        const tag = ctx.tagOf.get(member)
        if (tag === undefined) return
        const payload = new Uint8Array(32 + frame.length)
        payload.set(this.#account!, 0)
        payload.set(frame, 32)
        this.#inner.send(tag, payload, { ttlMs: FRAME_TTL_MS, datagram: true })
      },
      distance: (member) => {
        const tag = ctx.tagOf.get(member)
        return tag === undefined ? undefined : this.#inner.metricTo(tag)
      },
      wakeAt: (t) => host.wakeAt(t),
      accepted: (hash) => this.#collector.seen(toHex(hash), this.#node, host.now()),
      duplicate: (hash) => this.#collector.seen(toHex(hash), this.#node, host.now()),
      log: host.log,
    })
  }

  linkUp(neighbour: NeighbourId, mtu: number): void {
    this.#inner.linkUp(neighbour, mtu)
    this.#drain()
  }
  linkDown(neighbour: NeighbourId): void {
    this.#inner.linkDown(neighbour)
    this.#drain()
  }
  receive(neighbour: NeighbourId, frame: Uint8Array): void {
    this.#inner.receive(neighbour, frame)
    this.#drain()
  }
  timer(): void {
    this.#inner.timer()
    this.#gossip?.timer()
    this.#drain()
  }
  /** The scenario's "send" is a post to the room by this member. */
  send(_destination: Uint8Array, payload: Uint8Array, _options?: SendOptions): string {
    if (this.#log === undefined || this.#gossip === undefined) return ''
    const now = this.#host.now()
    const entry = this.#log.post(payload, T0 + now)
    const key = toHex(entry.hash)
    this.#collector.post(key, this.#node, now)
    this.#gossip.published(entry)
    this.#drain()
    return key
  }
  load(): RouterLoad {
    return this.#inner.load()
  }

  #drain(): void {
    while (this.#inbox.length > 0) {
      const payload = this.#inbox.shift()!
      if (this.#gossip === undefined || payload.length < 32) continue
      this.#gossip.receive(toHex(payload.subarray(0, 32)), payload.subarray(32))
    }
  }
}

/** A node of the flooding run. */
class FloodRouter implements Router {
  readonly #host: RouterHost
  readonly #node: number
  readonly #member: boolean
  readonly #collector: Collector
  readonly #neighbours = new Set<NeighbourId>()
  readonly #seen = new Set<number>()

  constructor(host: RouterHost, node: number, member: boolean, collector: Collector) {
    this.#host = host
    this.#node = node
    this.#member = member
    this.#collector = collector
  }
  linkUp(neighbour: NeighbourId): void {
    this.#neighbours.add(neighbour)
  }
  linkDown(neighbour: NeighbourId): void {
    this.#neighbours.delete(neighbour)
  }
  receive(neighbour: NeighbourId, frame: Uint8Array): void {
    if (frame.length < 4) return
    const id = new DataView(frame.buffer, frame.byteOffset, 4).getUint32(0)
    if (this.#member) this.#collector.seen(String(id), this.#node, this.#host.now())
    if (this.#seen.has(id)) return
    this.#seen.add(id)
    for (const n of this.#neighbours) if (n !== neighbour) this.#host.transmit(n, frame, 'data')
  }
  timer(): void {}
  send(): string {
    // Posts are numbered in the order they are made, across the run.
    const id = this.#collector.posted.size
    const frame = new Uint8Array(FLOOD_FRAME_BYTES)
    new DataView(frame.buffer).setUint32(0, id)
    this.#seen.add(id)
    this.#collector.post(String(id), this.#node, this.#host.now())
    for (const n of this.#neighbours) this.#host.transmit(n, frame, 'data')
    return String(id)
  }
  load(): RouterLoad {
    return { storedMessages: 0, storedBytes: 0 }
  }
}

/**
 * Runs the rooms scenario: Talken's room gossip and naive flooding on the same input.
 *
 * @example
 * const report = runRooms({ nodes: 200, seed: 1, members: 20, posts: 100 })
 * report.talken.deliveryRatio // 1
 */
export function runRooms(options: RoomsOptions): RoomsReport {
  const started = performance.now()
  const cpuStart = process.cpuUsage()
  const o: Required<RoomsOptions> = {
    members: 50,
    posts: 1000,
    postIntervalMs: 500,
    ...options,
  }
  if (!Number.isInteger(o.members) || o.members < 2 || o.members > 128) {
    throw new TalkenError('invalid_argument', 'members must be an integer in [2, 128]')
  }
  if (!Number.isInteger(o.nodes) || o.nodes < o.members || o.nodes > 100_000) {
    throw new TalkenError('invalid_argument', 'nodes must be an integer ≥ members and ≤ 100,000')
  }
  const built = build(o)
  const isMember = new Set(built.members)
  const nodeOfTag = new Map(built.input.tags.map((t, i) => [toHex(t), i]))

  const setup = makeRoom(o.seed, built.members)
  const tagOf = new Map<string, Uint8Array>()
  for (const node of built.members)
    tagOf.set(toHex(setup.identities.get(node)!.account.publicKey), built.input.tags[node]!)

  const talkenCollector = new Collector(o.members)
  const talkenEntry: RouterEntry = {
    makeStore: () => createMemoryStore(),
    factory: (init) =>
      new MemberRouter(init as { self: Uint8Array; host: RouterHost; store: Store }, {
        node: nodeOfTag.get(toHex(init.self))!,
        setup,
        tagOf,
        collector: talkenCollector,
      }),
  }
  const t = simulate(built.input, talkenEntry, { seed: o.seed })

  const floodCollector = new Collector(o.members)
  const floodEntry: RouterEntry = {
    makeStore: () => undefined,
    factory: (init) => {
      const node = nodeOfTag.get(toHex(init.self))!
      return new FloodRouter(init.host, node, isMember.has(node), floodCollector)
    },
  }
  const f = simulate(built.input, floodEntry, { seed: o.seed })

  return {
    scenario: 'rooms',
    nodes: o.nodes,
    seed: o.seed,
    members: o.members,
    posts: o.posts,
    talken: talkenCollector.metrics({ data: t.dataFrames, control: t.controlFrames, completed: t.completed }),
    flooding: floodCollector.metrics({
      data: f.dataFrames,
      control: f.controlFrames,
      completed: f.completed,
    }),
    scenarioInfo: built.info,
    wallSeconds: Math.round((performance.now() - started) / 10) / 100,
    cpuSeconds: cpuSecondsSince(cpuStart),
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
  }
}

function cpuSecondsSince(start: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(start)
  return Math.round((u.user + u.system) / 10_000) / 100
}
