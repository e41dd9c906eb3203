/**
 * The discrete-event engine: hosts one router per node on a virtual clock (integer
 * milliseconds), replays a scenario's inputs (contacts, churn, sends), carries the routers' frames
 * through the link model, and measures what happened.
 *
 * Three sources of events are merged: the scenario's pre-sorted contact/churn schedule and its
 * pre-sorted message plan (each read with a cursor), and a binary heap of dynamic events (frame
 * arrivals, router wake-ups, attacker ticks) ordered by (time, insertion sequence). At equal
 * times contacts and churn run first, then sends, then dynamic events — exactly as if all inputs
 * had been pushed into the heap, in that order, before the run started. Nothing here reads a wall
 * clock or `Math.random`: the same scenario, router and seed give the same run, event for event.
 *
 * @example
 * const { input } = buildScenario({ scenario: 'line', nodes: 8, seed: 1 })
 * const metrics = simulate(input, ROUTERS.epidemic!, { seed: 1 })
 */
import type { Delivery, Logger, NeighbourId, Router, RouterHost, StateChange } from '../mesh/router.ts'
import { Adversary } from './adversary.ts'
import { EventQueue } from './event-queue.ts'
import { type LinkParams, LinkTable } from './link-model.ts'
import { MetricsCollector, type RouterMetrics } from './metrics.ts'
import { Rng } from './rng.ts'
import type { RouterEntry } from './routers.ts'
import { InputKind, type Schedule } from './schedule.ts'
import { type MessagePlan, messagePayload } from './traffic.ts'

/** An attacking node (attack scenario). */
export interface AttackPlan {
  readonly node: number
  /** Every this many milliseconds the attacker injects one forged frame into each of its links. */
  readonly intervalMs: number
}

/** Everything a run replays: identical for every router compared on it. */
export interface ScenarioInput {
  readonly name: string
  readonly nodes: number
  readonly durationMs: number
  /** Each node's 16-byte destination tag (the `self` its routers get). */
  readonly tags: readonly Uint8Array[]
  readonly schedule: Schedule
  readonly messages: MessagePlan
  /** The parameters of the link between `a` and `b`, asked each time it comes up. */
  readonly link: (a: number, b: number) => LinkParams
  readonly attack?: AttackPlan
  /** Facts about the scenario for the report (mean degree, contact count, …). */
  readonly info: Readonly<Record<string, number | string>>
}

/** Options of {@link simulate}. */
export interface SimulateOptions {
  readonly seed: number
  /** Rethrow a router's exceptions instead of counting them in `routerErrors`. */
  readonly strict?: boolean
  /** Stop after this many events (the result says `completed: false`). */
  readonly maxEvents?: number
  /** Run the scenario's attacker (default true when the scenario has one). */
  readonly attack?: boolean
  /** Where routers' logs go (default: discarded). */
  readonly logger?: Logger
  /** Called with each delivery (tests use it to look inside a run). */
  readonly onDeliver?: (node: number, delivery: Delivery, now: number) => void
  /**
   * Called every {@link PROGRESS_EVERY} events with how far the run is, for a progress line on
   * long runs. Counted in events, not wall time, so that it changes nothing in the run.
   */
  readonly onProgress?: (progress: SimProgress) => void
  /** Events between two calls of `onProgress` (default {@link PROGRESS_EVERY}). */
  readonly progressEvery?: number
}

/** How far a run is (see {@link SimulateOptions.onProgress}). */
export interface SimProgress {
  /** Virtual time reached, and the scenario's end. */
  readonly simulatedMs: number
  readonly durationMs: number
  readonly events: number
  /** Messages handed to their sources so far, and delivered so far. */
  readonly sent: number
  readonly delivered: number
}

/** Events between two calls of {@link SimulateOptions.onProgress}. */
export const PROGRESS_EVERY = 1 << 18

const EV_FRAME = 1
const EV_TIMER = 2
const EV_ATTACK = 3

/** Most events at one instant before the run is declared a livelock and stopped. */
const MAX_EVENTS_PER_INSTANT = 10_000_000

const discard: Logger = () => {}

/** Runs one router kind over a scenario and returns its metrics. */
export function simulate(input: ScenarioInput, entry: RouterEntry, options: SimulateOptions): RouterMetrics {
  return new Simulation(input, entry, options).run()
}

class SimHost implements RouterHost {
  private readonly sim: Simulation
  private readonly node: number
  private readonly gen: number
  private readonly rng: Rng
  readonly log: Logger

  constructor(sim: Simulation, node: number, gen: number, rng: Rng, log: Logger) {
    this.sim = sim
    this.node = node
    this.gen = gen
    this.rng = rng
    this.log = log
  }
  now(): number {
    return this.sim.now
  }
  random(): number {
    return this.rng.next()
  }
  transmit(neighbour: NeighbourId, frame: Uint8Array, kind?: 'data' | 'control'): void {
    this.sim.transmit(this.node, this.gen, neighbour, frame, kind === 'control')
  }
  deliver(delivery: Delivery): void {
    this.sim.deliver(this.node, this.gen, delivery)
  }
  stateChanged(_change: StateChange): void {}
  wakeAt(time: number): void {
    this.sim.wakeAt(this.node, this.gen, time)
  }
}

class Simulation {
  now = 0
  private readonly input: ScenarioInput
  private readonly entry: RouterEntry
  private readonly options: SimulateOptions
  private readonly n: number
  private readonly names: string[]
  private readonly nameIndex = new Map<string, number>()
  private readonly routers: (Router | undefined)[]
  private readonly stores: unknown[]
  private readonly streams: Rng[]
  private readonly gen: Int32Array
  private readonly alive: Uint8Array
  private readonly wake: Float64Array
  /** Contacts in progress per the schedule (pair keys), whether or not both ends are present. */
  private readonly physical = new Set<number>()
  private readonly physAdj: number[][]
  /** Links actually up (both ends present). */
  private readonly adj: number[][]
  private readonly links: LinkTable
  private readonly queue = new EventQueue(4096)
  private readonly metrics: MetricsCollector
  private readonly lossRng: Rng
  private readonly adversary: Adversary | undefined
  private readonly attacker: number
  private readonly log: Logger

  constructor(input: ScenarioInput, entry: RouterEntry, options: SimulateOptions) {
    this.input = input
    this.entry = entry
    this.options = options
    const n = input.nodes
    this.n = n
    this.names = Array.from({ length: n }, (_, i) => String(i))
    for (let i = 0; i < n; i++) this.nameIndex.set(this.names[i]!, i)
    this.routers = new Array(n).fill(undefined)
    this.stores = new Array(n)
    this.gen = new Int32Array(n)
    this.alive = new Uint8Array(n)
    this.wake = new Float64Array(n).fill(Number.POSITIVE_INFINITY)
    this.physAdj = Array.from({ length: n }, () => [])
    this.adj = Array.from({ length: n }, () => [])
    this.links = new LinkTable(n)
    this.metrics = new MetricsCollector(input.messages)
    const root = Rng.fromSeed(options.seed)
    this.lossRng = root.fork('loss')
    this.streams = Array.from({ length: n }, (_, i) => root.fork(`router:${i}`))
    const attack = options.attack ?? true
    this.attacker = attack && input.attack !== undefined ? input.attack.node : -1
    this.adversary = this.attacker >= 0 ? new Adversary(root.fork('attack')) : undefined
    this.log = options.logger ?? discard
  }

  run(): RouterMetrics {
    const { schedule, durationMs } = this.input
    for (let i = 0; i < this.n; i++) {
      this.stores[i] = this.entry.makeStore()
      this.alive[i] = 1
      this.startRouter(i)
    }
    if (this.attacker >= 0) this.queue.push(this.input.attack!.intervalMs, EV_ATTACK, this.attacker)
    const maxEvents = this.options.maxEvents ?? Number.POSITIVE_INFINITY
    const onProgress = this.options.onProgress
    const every = Math.max(1, this.options.progressEvery ?? PROGRESS_EVERY)
    const m = this.metrics
    const plan = this.input.messages
    let ip = 0
    let mp = 0
    let completed = true
    let instant = -1
    let atInstant = 0
    for (;;) {
      const tIn = ip < schedule.length ? schedule.time[ip]! : Number.POSITIVE_INFINITY
      const tMsg = mp < plan.count ? plan.createdAt[mp]! : Number.POSITIVE_INFINITY
      const tQ = this.queue.peekTime()
      const t = Math.min(tIn, tMsg, tQ)
      if (t > durationMs || t === Number.POSITIVE_INFINITY) break
      if (m.events >= maxEvents) {
        completed = false
        break
      }
      if (t === instant) {
        if (++atInstant > MAX_EVENTS_PER_INSTANT) {
          this.log('error', 'livelock: too many events at one instant', { time: t })
          completed = false
          break
        }
      } else {
        instant = t
        atInstant = 0
      }
      this.now = t
      m.events++
      if (onProgress !== undefined && m.events % every === 0) {
        onProgress({ simulatedMs: t, durationMs, events: m.events, sent: mp, delivered: m.deliveredSoFar })
      }
      if (tIn === t) this.input1(schedule, ip++)
      else if (tMsg === t) this.send(mp++)
      else {
        this.queue.pop()
        this.dynamic()
      }
    }
    const end = completed ? durationMs : this.now
    this.queue.clear()
    return m.finish(completed, end)
  }

  // --- inputs ----------------------------------------------------------------------------------

  private input1(s: Schedule, i: number): void {
    const a = s.a[i]!
    const b = s.b[i]!
    switch (s.kind[i]) {
      case InputKind.linkUp: {
        const key = this.links.pairKey(a, b)
        if (a === b || this.physical.has(key)) return
        this.physical.add(key)
        this.physAdj[a]!.push(b)
        this.physAdj[b]!.push(a)
        if (this.alive[a] && this.alive[b]) this.openLink(a, b)
        return
      }
      case InputKind.linkDown: {
        const key = this.links.pairKey(a, b)
        if (!this.physical.delete(key)) return
        removeFrom(this.physAdj[a]!, b)
        removeFrom(this.physAdj[b]!, a)
        const slot = this.links.find(a, b)
        if (slot >= 0) this.closeLink(slot, a, b, true)
        return
      }
      case InputKind.leave:
        if (this.alive[a]) this.leave(a)
        return
      case InputKind.return:
        if (!this.alive[a]) this.comeBack(a)
        return
    }
  }

  private startRouter(i: number): void {
    const host = new SimHost(this, i, this.gen[i]!, this.streams[i]!, this.log)
    try {
      this.routers[i] = this.entry.factory({ self: this.input.tags[i]!, host, store: this.stores[i] })
    } catch (err) {
      this.fail(err)
      this.routers[i] = undefined
    }
    this.sample(i)
  }

  private openLink(a: number, b: number): void {
    const params = this.input.link(a, b)
    const slot = this.links.open(a, b, params)
    this.adj[a]!.push(b)
    this.adj[b]!.push(a)
    const mtu = this.links.mtu[slot]!
    this.callLinkUp(a, b, mtu)
    // The first router may have reacted in a way that took the link down already (it cannot
    // today: only inputs close links), so look it up again before telling the second.
    if (this.links.find(a, b) === slot) this.callLinkUp(b, a, mtu)
  }

  private closeLink(slot: number, a: number, b: number, notifyA: boolean): void {
    this.links.close(slot)
    removeFrom(this.adj[a]!, b)
    removeFrom(this.adj[b]!, a)
    if (notifyA) this.callLinkDown(a, b)
    this.callLinkDown(b, a)
  }

  private leave(a: number): void {
    for (const b of [...this.adj[a]!]) this.closeLink(this.links.find(a, b), a, b, false)
    this.alive[a] = 0
    this.routers[a] = undefined
    this.gen[a] = this.gen[a]! + 1
    this.wake[a] = Number.POSITIVE_INFINITY
  }

  private comeBack(a: number): void {
    this.alive[a] = 1
    this.gen[a] = this.gen[a]! + 1
    this.startRouter(a)
    for (const b of [...this.physAdj[a]!]) if (this.alive[b] && this.links.find(a, b) < 0) this.openLink(a, b)
  }

  private send(i: number): void {
    const plan = this.input.messages
    const src = plan.src[i]!
    const router = this.routers[src]
    if (!this.alive[src] || router === undefined) {
      if (plan.counted[i] === 1) this.metrics.sourceOffline++
      return
    }
    let id: string | undefined
    try {
      id = router.send(this.input.tags[plan.dst[i]!]!, messagePayload(plan, i), { ttlMs: plan.ttlMs[i]! })
    } catch (err) {
      this.fail(err)
    }
    // A message the router refused still counts as created (and never delivered).
    this.metrics.sent(i, this.now, id)
    this.sample(src)
  }

  // --- dynamic events --------------------------------------------------------------------------

  private dynamic(): void {
    const ev = this.queue.current
    switch (ev.type) {
      case EV_FRAME: {
        const from = ev.a
        const to = ev.b
        const slot = ev.c
        if (this.links.epoch[slot] !== ev.d) {
          this.metrics.framesAborted++
          return
        }
        const frame = ev.ref as Uint8Array
        if (to === this.attacker) this.adversary!.capture(frame)
        const r = this.routers[to]
        if (r === undefined) return
        try {
          r.receive(this.names[from]!, frame)
        } catch (err) {
          this.fail(err)
        }
        this.sample(to)
        return
      }
      case EV_TIMER: {
        const node = ev.a
        if (this.gen[node] !== ev.c || this.wake[node] !== ev.time) return
        this.wake[node] = Number.POSITIVE_INFINITY
        const r = this.routers[node]
        if (r === undefined) return
        try {
          r.timer()
        } catch (err) {
          this.fail(err)
        }
        this.sample(node)
        return
      }
      case EV_ATTACK: {
        const a = ev.a
        if (this.alive[a]) {
          for (const b of this.adj[a]!) {
            const slot = this.links.find(a, b)
            const frame = this.adversary!.forge(this.links.mtu[slot]!)
            this.metrics.attackFrames++
            this.carry(slot, a, b, frame)
          }
        }
        this.queue.push(this.now + this.input.attack!.intervalMs, EV_ATTACK, a)
        return
      }
    }
  }

  // --- host callbacks --------------------------------------------------------------------------

  /** A router asked to send `frame`; counts it and books it on the link. */
  transmit(from: number, gen: number, neighbour: NeighbourId, frame: Uint8Array, control: boolean): void {
    if (gen !== this.gen[from] || !this.alive[from]) return
    const m = this.metrics
    const to = this.nameIndex.get(neighbour)
    const slot = to === undefined ? -1 : this.links.find(from, to)
    if (slot < 0) {
      m.noLink++
      return
    }
    if (frame.length > this.links.mtu[slot]!) {
      m.oversize++
      return
    }
    if (control) m.controlFrames++
    else m.dataFrames++
    m.bytesSent += frame.length
    if (from === this.attacker) this.adversary!.capture(frame)
    this.carry(slot, from, to!, frame)
  }

  /** Puts `frame` on the link in `slot`: airtime, loss, and its arrival event. */
  private carry(slot: number, from: number, to: number, frame: Uint8Array): void {
    const links = this.links
    const arrival = links.book(slot, from, frame.length, this.now)
    const loss = links.loss[slot]!
    if (loss > 0 && this.lossRng.next() < loss) {
      this.metrics.framesLost++
      return
    }
    this.queue.push(arrival, EV_FRAME, from, to, slot, links.epoch[slot]!, frame)
  }

  deliver(node: number, gen: number, delivery: Delivery): void {
    if (gen !== this.gen[node]) return
    this.metrics.delivered(node, delivery.id, this.now)
    this.options.onDeliver?.(node, delivery, this.now)
  }

  wakeAt(node: number, gen: number, time: number): void {
    if (gen !== this.gen[node] || Number.isNaN(time)) return
    const t = Math.max(this.now, Math.ceil(time))
    if (t < this.wake[node]!) {
      this.wake[node] = t
      this.queue.push(t, EV_TIMER, node, 0, gen)
    }
  }

  // --- bookkeeping -----------------------------------------------------------------------------

  private callLinkUp(i: number, j: number, mtu: number): void {
    const r = this.routers[i]
    if (r === undefined) return
    try {
      r.linkUp(this.names[j]!, mtu)
    } catch (err) {
      this.fail(err)
    }
    this.sample(i)
  }

  private callLinkDown(i: number, j: number): void {
    const r = this.routers[i]
    if (r === undefined) return
    try {
      r.linkDown(this.names[j]!)
    } catch (err) {
      this.fail(err)
    }
    this.sample(i)
  }

  private sample(i: number): void {
    const r = this.routers[i]
    if (r === undefined) return
    const stored = r.load().storedMessages
    if (stored > this.metrics.peakStored) this.metrics.peakStored = stored
  }

  private fail(err: unknown): void {
    if (this.options.strict) throw err
    this.metrics.routerErrors++
    this.log('error', 'router threw', { error: String(err) })
  }
}

function removeFrom(list: number[], x: number): void {
  const i = list.indexOf(x)
  if (i >= 0) {
    list[i] = list[list.length - 1]!
    list.pop()
  }
}
