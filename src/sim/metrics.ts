/**
 * What one router run measured. Definitions (docs/simulator.md has the long form):
 *
 * - `deliveryRatio`: messages delivered at their destination at least once / messages created
 *   (handed to a live source's router). An attacker's flood is not counted.
 * - `latencyP50`, `latencyP95`: seconds from creation to first delivery, nearest-rank
 *   percentiles over delivered messages (null when none was delivered).
 * - `txPerDelivered`: frames sent with kind `'data'` / delivered messages. Comparable with The
 *   ONE's relayed / delivered, that is its "overhead ratio" + 1 (ours also counts transfers that
 *   were cut or lost). `controlPerDelivered`: frames of kind `'control'` / delivered.
 *   `bytesPerDelivered`: all bytes sent (data and control) / delivered. Null when nothing was
 *   delivered.
 * - `peakStoredPerNode`: the largest `Router.load().storedMessages` of any node at any time,
 *   sampled after every call into that node's router (the only moments it can change).
 * - `duplicatesDelivered`: deliveries of a message ID already delivered at that node (a correct
 *   router has 0, across churn too).
 * - `misdelivered`: deliveries at a node that is not the message's destination, or of an ID no
 *   application sent (forged). A correct router has 0.
 */
import type { MessagePlan } from './traffic.ts'

/** The result of one router over one scenario. */
export interface RouterMetrics {
  deliveryRatio: number
  latencyP50: number | null
  latencyP95: number | null
  txPerDelivered: number | null
  controlPerDelivered: number | null
  bytesPerDelivered: number | null
  peakStoredPerNode: number
  duplicatesDelivered: number
  created: number
  delivered: number
  dataFrames: number
  controlFrames: number
  bytesSent: number
  /** Frames lost to the link's loss probability. */
  framesLost: number
  /** Frames cut because their link went down before their last byte arrived. */
  framesAborted: number
  /** Frames larger than the link MTU, dropped by the simulator. */
  oversize: number
  /** Frames addressed to a neighbour with no link up. */
  noLink: number
  misdelivered: number
  /** Messages not created because their source was away (churn). */
  sourceOffline: number
  /** Exceptions thrown by the router (a correct router has 0). */
  routerErrors: number
  /** Frames injected by the attacker (attack scenario). */
  attackFrames: number
  /** Events processed. */
  events: number
  /** False when the run stopped early (event budget). */
  completed: boolean
  simulatedSeconds: number
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number | null {
  if (sorted.length === 0) return null
  const rank = Math.max(1, Math.ceil(p * sorted.length))
  return sorted[rank - 1]!
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

/** Counts what happens during one run; the simulator increments the public counters directly. */
export class MetricsCollector {
  private readonly plan: MessagePlan
  private readonly byId = new Map<string, number>()
  /** Creation time per message, NaN until created. */
  private readonly createdAt: Float64Array
  /** First delivery time per message, NaN until delivered. */
  private readonly deliveredAt: Float64Array
  /** Deliveries of foreign IDs already seen, per node (forged or misrouted). */
  private readonly foreign = new Set<string>()
  created = 0
  dataFrames = 0
  controlFrames = 0
  bytesSent = 0
  framesLost = 0
  framesAborted = 0
  oversize = 0
  noLink = 0
  misdelivered = 0
  duplicates = 0
  sourceOffline = 0
  routerErrors = 0
  attackFrames = 0
  peakStored = 0
  events = 0
  /** Messages delivered so far (first deliveries of counted and uncounted messages alike). */
  deliveredSoFar = 0

  constructor(plan: MessagePlan) {
    this.plan = plan
    this.createdAt = new Float64Array(plan.count).fill(Number.NaN)
    this.deliveredAt = new Float64Array(plan.count).fill(Number.NaN)
  }

  /**
   * Message `i` was handed to its source's router at `now`; `id` is the ID the router chose
   * (routers whose IDs carry a delivery proof cannot take the planned one).
   */
  sent(i: number, now: number, id?: string): void {
    if (id !== undefined) this.byId.set(id, i)
    this.createdAt[i] = now
    if (this.plan.counted[i] === 1) this.created++
  }

  /** Node `node`'s router delivered `id` at `now`. */
  delivered(node: number, id: string, now: number): void {
    const i = this.byId.get(id)
    if (i === undefined || this.plan.dst[i] !== node || Number.isNaN(this.createdAt[i]!)) {
      const key = `${node}/${id}`
      if (this.foreign.has(key)) this.duplicates++
      else {
        this.foreign.add(key)
        this.misdelivered++
      }
      return
    }
    if (!Number.isNaN(this.deliveredAt[i]!)) {
      this.duplicates++
      return
    }
    this.deliveredAt[i] = now
    this.deliveredSoFar++
  }

  /** The summary, with ratios rounded to 4 decimals and times to milliseconds. */
  finish(completed: boolean, simulatedMs: number): RouterMetrics {
    const latencies: number[] = []
    for (let i = 0; i < this.plan.count; i++) {
      if (this.plan.counted[i] !== 1) continue
      const d = this.deliveredAt[i]!
      if (!Number.isNaN(d)) latencies.push((d - this.createdAt[i]!) / 1000)
    }
    latencies.sort((x, y) => x - y)
    const delivered = latencies.length
    const per = (x: number) => (delivered === 0 ? null : round(x / delivered, 4))
    const p50 = percentile(latencies, 0.5)
    const p95 = percentile(latencies, 0.95)
    return {
      deliveryRatio: this.created === 0 ? 0 : round(delivered / this.created, 4),
      latencyP50: p50 === null ? null : round(p50, 3),
      latencyP95: p95 === null ? null : round(p95, 3),
      txPerDelivered: per(this.dataFrames),
      controlPerDelivered: per(this.controlFrames),
      bytesPerDelivered: per(this.bytesSent),
      peakStoredPerNode: this.peakStored,
      duplicatesDelivered: this.duplicates,
      created: this.created,
      delivered,
      dataFrames: this.dataFrames,
      controlFrames: this.controlFrames,
      bytesSent: this.bytesSent,
      framesLost: this.framesLost,
      framesAborted: this.framesAborted,
      oversize: this.oversize,
      noLink: this.noLink,
      misdelivered: this.misdelivered,
      sourceOffline: this.sourceOffline,
      routerErrors: this.routerErrors,
      attackFrames: this.attackFrames,
      events: this.events,
      completed,
      simulatedSeconds: round(simulatedMs / 1000, 3),
    }
  }
}
