/**
 * The named scenarios. Each turns (nodes, seed, options) into a {@link ScenarioInput}: node
 * tags, a contact/churn schedule and a message plan, drawn from independent streams of the seed
 * (`tags`, `topology`, `mobility`, `churn`, `traffic`, `attack-traffic`), so the inputs are the
 * same whichever router runs. docs/simulator.md describes each one.
 */
import { TalkenError } from '../errors.ts'
import { checkLinkParams, DEFAULT_LINK, type LinkParams } from './link-model.ts'
import { randomWaypoint } from './mobility.ts'
import { Rng } from './rng.ts'
import { InputKind, ScheduleBuilder } from './schedule.ts'
import type { ScenarioInput } from './simulator.ts'
import { components, geometricEdges, gridEdges, gridWidth, lineEdges, sideForDegree } from './topology.ts'
import { loadTrace } from './trace.ts'
import { makePlan, type PlannedMessage, randomTraffic } from './traffic.ts'

/** The scenario names. */
export const SCENARIOS = ['line', 'grid', 'rwp', 'partition', 'churn', 'attack', 'trace'] as const

/** One of {@link SCENARIOS}. */
export type ScenarioName = (typeof SCENARIOS)[number]

/** Most nodes a scenario may have. */
export const MAX_NODES = 1_000_000

/** Options of {@link buildScenario}. */
export interface ScenarioOptions {
  readonly scenario: ScenarioName
  /** Ignored by `trace` (the trace decides). */
  readonly nodes: number
  readonly seed: number
  /** Messages to send (default: as many as nodes, at least 20; the trace decides for `trace`). */
  readonly messages?: number
  /** Simulated time (default per scenario; for `trace`, the trace's end rounded up to a minute). */
  readonly durationSec?: number
  /** Directory with contacts.txt and messages.txt, for `trace`. */
  readonly traceDir?: string
  /** Overrides of the scenario's link parameters. */
  readonly link?: Partial<LinkParams>
}

/** A built scenario; `withoutAttacker` is the same scenario with the attacker behaving (attack only). */
export interface BuiltScenario {
  readonly input: ScenarioInput
  readonly withoutAttacker?: ScenarioInput
}

/** Generated messages are chat-sized: 200–1,200 bytes. */
const SIZE_MIN = 200
const SIZE_MAX = 1200

/**
 * Builds the named scenario.
 *
 * @example
 * const { input } = buildScenario({ scenario: 'grid', nodes: 100, seed: 7 })
 */
export function buildScenario(o: ScenarioOptions): BuiltScenario {
  if (!Number.isSafeInteger(o.seed) || o.seed < 0) {
    throw new TalkenError('invalid_argument', 'seed must be a non-negative integer')
  }
  if (o.scenario !== 'trace' && (!Number.isInteger(o.nodes) || o.nodes < 2 || o.nodes > MAX_NODES)) {
    throw new TalkenError('invalid_argument', `nodes must be an integer in [2, ${MAX_NODES}]`)
  }
  if (o.messages !== undefined && (!Number.isInteger(o.messages) || o.messages < 0)) {
    throw new TalkenError('invalid_argument', 'messages must be a non-negative integer')
  }
  if (o.durationSec !== undefined && !(o.durationSec > 0 && Number.isFinite(o.durationSec))) {
    throw new TalkenError('invalid_argument', 'duration must be a positive number of seconds')
  }
  switch (o.scenario) {
    case 'line':
    case 'grid':
      return staticScenario(o)
    case 'rwp':
      return rwpScenario(o)
    case 'partition':
      return partitionScenario(o)
    case 'churn':
      return churnScenario(o)
    case 'attack':
      return attackScenario(o)
    case 'trace':
      return traceScenario(o)
    default:
      throw new TalkenError('invalid_argument', `unknown scenario "${String(o.scenario)}"`)
  }
}

// --- shared pieces -------------------------------------------------------------------------------

function linkFor(o: ScenarioOptions, base: LinkParams = DEFAULT_LINK): LinkParams {
  return checkLinkParams({ ...base, ...o.link })
}

function tags(root: Rng, n: number): Uint8Array[] {
  const rng = root.fork('tags')
  return Array.from({ length: n }, () => rng.fill(new Uint8Array(16)))
}

function staticLinks(out: ScheduleBuilder, edges: readonly number[], at = 0): void {
  for (let i = 0; i < edges.length; i += 2) out.add(at, InputKind.linkUp, edges[i]!, edges[i + 1]!)
}

/** Random pairs sending during the first half of the run, each message living to its end. */
function halfTimeTraffic(root: Rng, o: ScenarioOptions, n: number, durationMs: number): PlannedMessage[] {
  return randomTraffic(root.fork('traffic'), {
    nodes: n,
    count: messageCount(o),
    startMs: 0,
    endMs: durationMs / 2,
    sizeMin: SIZE_MIN,
    sizeMax: SIZE_MAX,
    ttlMs: durationMs,
  })
}

function messageCount(o: ScenarioOptions): number {
  return o.messages ?? Math.max(20, o.nodes)
}

function input(
  o: ScenarioOptions,
  root: Rng,
  durationMs: number,
  schedule: ScheduleBuilder,
  messages: PlannedMessage[],
  link: LinkParams,
  info: Record<string, number | string>,
): ScenarioInput {
  const plan = makePlan(messages)
  const s = schedule.build()
  return {
    name: o.scenario,
    nodes: o.nodes,
    durationMs,
    tags: tags(root, o.nodes),
    schedule: s,
    messages: plan,
    link: () => link,
    info: { durationSeconds: durationMs / 1000, messages: plan.count, ...info },
  }
}

// --- line and grid -------------------------------------------------------------------------------

function staticScenario(o: ScenarioOptions): BuiltScenario {
  const n = o.nodes
  const root = Rng.fromSeed(o.seed)
  const durationMs = (o.durationSec ?? 600) * 1000
  const edges = o.scenario === 'line' ? lineEdges(n) : gridEdges(n)
  const schedule = new ScheduleBuilder()
  staticLinks(schedule, edges)
  const count = messageCount(o)
  const traffic = root.fork('traffic')
  const window = {
    startMs: 0,
    endMs: durationMs / 2,
    sizeMin: SIZE_MIN,
    sizeMax: SIZE_MAX,
    ttlMs: durationMs,
  }
  const messages: PlannedMessage[] = []
  // On a line, a quarter of the messages go end to end (both directions): the longest paths.
  const ends = o.scenario === 'line' ? Math.max(Math.min(2, count), Math.floor(count / 4)) : 0
  for (let i = 0; i < ends; i++) {
    const forward = i % 2 === 0
    messages.push({
      src: forward ? 0 : n - 1,
      dst: forward ? n - 1 : 0,
      size: SIZE_MIN + traffic.int(SIZE_MAX - SIZE_MIN + 1),
      createdAt: Math.floor(traffic.range(window.startMs, window.endMs)),
      ttlMs: durationMs,
    })
  }
  messages.push(...randomTraffic(traffic, { nodes: n, count: count - ends, ...window }))
  const info: Record<string, number | string> = { links: edges.length / 2, meanDegree: edges.length / n }
  if (o.scenario === 'grid') info.gridWidth = gridWidth(n)
  return { input: input(o, root, durationMs, schedule, messages, linkFor(o), info) }
}

// --- random waypoint ---------------------------------------------------------------------------

/** Radio range of the mobile scenarios: Wi-Fi Direct / BLE long range outdoors, roughly. */
const RWP_RADIUS_M = 30
/** Target mean neighbours per node: sparse, disconnected, delay-tolerant conditions. */
const RWP_DEGREE = 1

function rwpScenario(o: ScenarioOptions): BuiltScenario {
  const n = o.nodes
  const root = Rng.fromSeed(o.seed)
  const durationMs = (o.durationSec ?? 3600) * 1000
  const side = sideForDegree(n, RWP_RADIUS_M, RWP_DEGREE)
  const schedule = new ScheduleBuilder()
  const stats = randomWaypoint(
    root.fork('mobility'),
    {
      nodes: n,
      width: side,
      height: side,
      radius: RWP_RADIUS_M,
      speedMin: 0.5,
      speedMax: 1.5,
      pauseMinMs: 0,
      pauseMaxMs: 120_000,
      durationMs,
    },
    schedule,
  )
  const messages = halfTimeTraffic(root, o, n, durationMs)
  return {
    input: input(o, root, durationMs, schedule, messages, linkFor(o), {
      areaSideMetres: Math.round(side),
      radiusMetres: RWP_RADIUS_M,
      contacts: stats.contacts,
      meanDegree: Math.round(stats.meanDegree * 1000) / 1000,
    }),
  }
}

// --- partition -----------------------------------------------------------------------------------

function partitionScenario(o: ScenarioOptions): BuiltScenario {
  const n = o.nodes
  if (n < 5) throw new TalkenError('invalid_argument', 'partition needs at least 5 nodes')
  const root = Rng.fromSeed(o.seed)
  const durationMs = (o.durationSec ?? 1200) * 1000
  // Nodes 0..n-2 form a grid; its left and right halves are the islands. Node n-1 is the carrier.
  const m = n - 1
  const carrier = m
  const w = gridWidth(m)
  const half = Math.max(1, Math.floor(w / 2))
  const side = (v: number) => (v % w < half ? 0 : 1)
  const all = gridEdges(m)
  const bridges: number[] = []
  const schedule = new ScheduleBuilder()
  for (let i = 0; i < all.length; i += 2) {
    const a = all[i]!
    const b = all[i + 1]!
    if (side(a) !== side(b)) bridges.push(a, b)
    else schedule.add(0, InputKind.linkUp, a, b)
  }
  const cutAt = Math.floor(durationMs * 0.1)
  const carrierFrom = Math.floor(durationMs * 0.25)
  const healAt = Math.floor(durationMs * 0.9)
  // Whole at first, cut at 10%, healed at 90%.
  staticLinks(schedule, bridges, 0)
  for (let i = 0; i < bridges.length; i += 2) {
    schedule.add(cutAt, InputKind.linkDown, bridges[i]!, bridges[i + 1]!)
    schedule.add(healAt, InputKind.linkUp, bridges[i]!, bridges[i + 1]!)
  }
  // The carrier shuttles from 25%: a minute at the left island's corner, a minute in transit,
  // a minute at the right island's far corner, a minute in transit, …
  const gateA = 0
  const gateB = Math.min(m - 1, w - 1)
  const dwell = 60_000
  let trips = 0
  for (let t = carrierFrom, atA = true; t + dwell <= durationMs; t += 2 * dwell, atA = !atA) {
    const gate = atA ? gateA : gateB
    schedule.add(t, InputKind.linkUp, carrier, gate)
    schedule.add(t + dwell, InputKind.linkDown, carrier, gate)
    trips++
  }
  const left: number[] = []
  const right: number[] = []
  for (let v = 0; v < m; v++) (side(v) === 0 ? left : right).push(v)
  const traffic = root.fork('traffic')
  const count = messageCount(o)
  const messages: PlannedMessage[] = []
  const window = { startMs: cutAt, endMs: Math.floor(durationMs * 0.6) }
  for (let i = 0; i < count; i++) {
    const cross = i % 2 === 0 && right.length > 0
    const from = traffic.next() < 0.5 || right.length === 0 ? left : right
    const to = cross ? (from === left ? right : left) : from
    const src = from[traffic.int(from.length)]!
    let dst = to[traffic.int(to.length)]!
    if (dst === src) dst = to[(to.indexOf(src) + 1) % to.length]!
    if (dst === src) continue
    messages.push({
      src,
      dst,
      size: SIZE_MIN + traffic.int(SIZE_MAX - SIZE_MIN + 1),
      createdAt: Math.floor(traffic.range(window.startMs, window.endMs)),
      ttlMs: durationMs,
    })
  }
  return {
    input: input(o, root, durationMs, schedule, messages, linkFor(o), {
      leftIsland: left.length,
      rightIsland: right.length,
      carrier,
      carrierVisits: trips,
      cutSeconds: cutAt / 1000,
      healSeconds: healAt / 1000,
    }),
  }
}

// --- churn ---------------------------------------------------------------------------------------

function churnScenario(o: ScenarioOptions): BuiltScenario {
  const n = o.nodes
  const root = Rng.fromSeed(o.seed)
  const durationMs = (o.durationSec ?? 1800) * 1000
  const radius = 50
  const g = geometricEdges(root.fork('topology'), n, sideForDegree(n, radius, 8), radius)
  const schedule = new ScheduleBuilder()
  staticLinks(schedule, g.edges)
  // A third of the nodes come and go: present for Exp(mean 5 min), away for Exp(mean 2 min).
  const churn = root.fork('churn')
  let departures = 0
  const churning = Math.max(1, Math.floor(n / 3))
  for (let k = 0; k < churning; k++) {
    const node = Math.floor((k * n) / churning)
    let t = Math.floor(churn.exponential(300_000))
    while (t < durationMs) {
      schedule.add(t, InputKind.leave, node)
      departures++
      t += Math.max(1000, Math.floor(churn.exponential(120_000)))
      if (t >= durationMs) break
      schedule.add(t, InputKind.return, node)
      t += Math.max(1000, Math.floor(churn.exponential(300_000)))
    }
  }
  const messages = halfTimeTraffic(root, o, n, durationMs)
  return {
    input: input(o, root, durationMs, schedule, messages, linkFor(o), {
      links: g.edges.length / 2,
      meanDegree: Math.round((g.edges.length / n) * 1000) / 1000,
      components: components(n, g.edges),
      churningNodes: churning,
      departures,
    }),
  }
}

// --- attack --------------------------------------------------------------------------------------

/** The attacker sends this many times a normal node's load. */
const ATTACK_LOAD = 100
/** And injects one forged frame per link this often. */
const ATTACK_INTERVAL_MS = 100

function attackScenario(o: ScenarioOptions): BuiltScenario {
  const n = o.nodes
  const root = Rng.fromSeed(o.seed)
  const durationMs = (o.durationSec ?? 600) * 1000
  const edges = gridEdges(n)
  const w = gridWidth(n)
  const attacker = Math.min(n - 1, Math.floor(Math.floor(n / w) / 2) * w + Math.floor(w / 2))
  const window = {
    startMs: 0,
    endMs: durationMs / 2,
    sizeMin: SIZE_MIN,
    sizeMax: SIZE_MAX,
    ttlMs: durationMs,
  }
  const count = messageCount(o)
  const honest = randomTraffic(root.fork('traffic'), { nodes: n, count, ...window })
  const extra = Math.max(ATTACK_LOAD - 1, Math.round(((ATTACK_LOAD - 1) * count) / n))
  const flood = root.fork('attack-traffic')
  const floodMessages: PlannedMessage[] = []
  for (let i = 0; i < extra; i++) {
    let dst = flood.int(n - 1)
    if (dst >= attacker) dst++
    floodMessages.push({
      src: attacker,
      dst,
      size: SIZE_MIN + flood.int(SIZE_MAX - SIZE_MIN + 1),
      createdAt: Math.floor(flood.range(window.startMs, window.endMs)),
      ttlMs: durationMs,
      counted: false,
    })
  }
  const link = linkFor(o)
  const info = { attacker, attackerMessages: extra, attackIntervalMs: ATTACK_INTERVAL_MS }
  const schedule = new ScheduleBuilder()
  staticLinks(schedule, edges)
  const base = input(o, root, durationMs, schedule, honest, link, info)
  const plan = makePlan([...honest, ...floodMessages])
  return {
    input: { ...base, messages: plan, attack: { node: attacker, intervalMs: ATTACK_INTERVAL_MS } },
    withoutAttacker: base,
  }
}

// --- trace ---------------------------------------------------------------------------------------

/** The ONE's Helsinki scenario radio: Bluetooth, 250 kB/s; The ONE has no propagation delay. */
const TRACE_LINK: LinkParams = { ...DEFAULT_LINK, latencyMs: 0, bandwidth: 250_000 }

function traceScenario(o: ScenarioOptions): BuiltScenario {
  if (o.traceDir === undefined)
    throw new TalkenError('invalid_argument', 'the trace scenario needs --trace DIR')
  const trace = loadTrace(o.traceDir)
  if (trace.nodes < 2 || trace.nodes > MAX_NODES) {
    throw new TalkenError('malformed', `trace has ${trace.nodes} nodes; expected 2 to ${MAX_NODES}`)
  }
  const root = Rng.fromSeed(o.seed)
  const schedule = new ScheduleBuilder()
  let last = 0
  // The ONE reports each radio interface's connection on its own line: two nodes with two radios
  // in common are up as long as either is (a nested up, then its down, leaves them connected).
  const up = new Map<string, number>()
  for (const c of trace.contacts) {
    const key = c.a < c.b ? `${c.a} ${c.b}` : `${c.b} ${c.a}`
    const before = up.get(key) ?? 0
    const after = c.up ? before + 1 : Math.max(0, before - 1)
    up.set(key, after)
    if (before === 0 && after === 1) schedule.add(c.time, InputKind.linkUp, c.a, c.b)
    else if (before === 1 && after === 0) schedule.add(c.time, InputKind.linkDown, c.a, c.b)
    last = Math.max(last, c.time)
  }
  const messages: PlannedMessage[] = trace.messages.map((m) => {
    last = Math.max(last, m.time)
    return { src: m.from, dst: m.to, size: m.size, createdAt: m.time, ttlMs: m.ttlMs, name: m.name }
  })
  const durationMs = o.durationSec !== undefined ? o.durationSec * 1000 : Math.ceil(last / 60_000) * 60_000
  const opts = { ...o, nodes: trace.nodes }
  return {
    input: input(opts, root, durationMs, schedule, messages, linkFor(o, TRACE_LINK), {
      contacts: trace.contacts.filter((c) => c.up).length,
      traceDir: o.traceDir,
    }),
  }
}
