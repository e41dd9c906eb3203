/**
 * The link model: each link between two nodes has a one-way latency, a bandwidth per direction,
 * a frame loss probability and an MTU.
 *
 * Frames sent in one direction are serialised: a frame starts when the previous one in that
 * direction has left (or now, if the direction is idle), takes `bytes / bandwidth` to send, and
 * is delivered when its last byte arrives, `latency` later. If the link goes down before that
 * moment, the frame is lost (the transfer is aborted). A lost frame still used its airtime.
 * Sub-millisecond serialisation times accumulate exactly; delivery times are rounded up to the
 * clock's whole milliseconds.
 */
import { TalkenError } from '../errors.ts'
import { MIN_FRAGMENT_MTU } from '../mesh/fragmentation.ts'

/** Properties of one link. */
export interface LinkParams {
  /** One-way delay in milliseconds, added after the last byte is sent. */
  readonly latencyMs: number
  /** Bytes per second in each direction (Infinity: no serialisation delay). */
  readonly bandwidth: number
  /** Probability in [0, 1) that a frame is lost in transit. */
  readonly loss: number
  /** Largest frame in bytes; larger frames are dropped and counted as `oversize`. */
  readonly mtu: number
}

/**
 * Default link: Bluetooth-class throughput (250 kB/s, as The ONE's Helsinki scenario), 5 ms
 * latency, no loss, 16 KiB MTU (enough for a chat message in one frame; envelopes up to 64 KiB
 * must be fragmented by the router).
 */
export const DEFAULT_LINK: LinkParams = { latencyMs: 5, bandwidth: 250_000, loss: 0, mtu: 16 * 1024 }

/**
 * Smallest MTU the simulator accepts: Talken's smallest fragment (a frame header and some
 * payload). A Talken core refuses a link with less, so a run below it would deliver nothing and
 * say only that; the baselines get the same links.
 */
export const MIN_MTU = MIN_FRAGMENT_MTU

/** Throws `invalid_argument` unless `p` is a usable link description. */
export function checkLinkParams(p: LinkParams): LinkParams {
  const bad = (what: string) => new TalkenError('invalid_argument', `link ${what}`)
  if (!(p.latencyMs >= 0) || !Number.isFinite(p.latencyMs)) throw bad('latency must be a finite number ≥ 0')
  if (!(p.bandwidth > 0)) throw bad('bandwidth must be > 0 bytes/s')
  if (!(p.loss >= 0 && p.loss < 1)) throw bad('loss must be in [0, 1)')
  if (!Number.isInteger(p.mtu) || p.mtu < MIN_MTU) throw bad(`MTU must be an integer ≥ ${MIN_MTU}`)
  return p
}

/** The links currently up, in recycled slots of flat arrays. */
export class LinkTable {
  private readonly nodes: number
  private readonly bySlotKey = new Map<number, number>()
  private cap = 0
  /** Lower-numbered end of each slot's link. */
  a = new Int32Array(0)
  /** Higher-numbered end. */
  b = new Int32Array(0)
  /** Bumped every time the slot's link goes down, so frames in flight know they were cut. */
  epoch = new Int32Array(0)
  latency = new Float64Array(0)
  bandwidth = new Float64Array(0)
  loss = new Float64Array(0)
  mtu = new Int32Array(0)
  /** When each direction is next idle: index 2·slot for a→b, 2·slot+1 for b→a. */
  busyUntil = new Float64Array(0)
  private free: number[] = []
  private used = 0
  /** Links up right now. */
  size = 0

  constructor(nodes: number) {
    this.nodes = nodes
    this.grow(64)
  }

  private grow(cap: number): void {
    const i32 = (old: Int32Array, n: number) => {
      const x = new Int32Array(n)
      x.set(old)
      return x
    }
    const f64 = (old: Float64Array, n: number) => {
      const x = new Float64Array(n)
      x.set(old)
      return x
    }
    this.a = i32(this.a, cap)
    this.b = i32(this.b, cap)
    this.epoch = i32(this.epoch, cap)
    this.latency = f64(this.latency, cap)
    this.bandwidth = f64(this.bandwidth, cap)
    this.loss = f64(this.loss, cap)
    this.mtu = i32(this.mtu, cap)
    this.busyUntil = f64(this.busyUntil, cap * 2)
    this.cap = cap
  }

  /** A number unique to the unordered pair {x, y}. */
  pairKey(x: number, y: number): number {
    return x < y ? x * this.nodes + y : y * this.nodes + x
  }

  /** The slot of the link between x and y, or -1 when it is down. */
  find(x: number, y: number): number {
    return this.bySlotKey.get(this.pairKey(x, y)) ?? -1
  }

  /** Brings up the link x–y with `params`; returns its slot. The link must be down. */
  open(x: number, y: number, params: LinkParams): number {
    let slot = this.free.pop()
    if (slot === undefined) {
      if (this.used === this.cap) this.grow(this.cap * 2)
      slot = this.used++
    }
    this.a[slot] = Math.min(x, y)
    this.b[slot] = Math.max(x, y)
    this.latency[slot] = params.latencyMs
    this.bandwidth[slot] = params.bandwidth
    this.loss[slot] = params.loss
    this.mtu[slot] = params.mtu
    this.busyUntil[2 * slot] = 0
    this.busyUntil[2 * slot + 1] = 0
    this.bySlotKey.set(this.pairKey(x, y), slot)
    this.size++
    return slot
  }

  /** Takes the link in `slot` down; frames in flight on it will be dropped on arrival. */
  close(slot: number): void {
    this.bySlotKey.delete(this.pairKey(this.a[slot]!, this.b[slot]!))
    this.epoch[slot] = (this.epoch[slot]! + 1) | 0
    this.free.push(slot)
    this.size--
  }

  /**
   * Books airtime for `bytes` from node `from` on the link in `slot`, at time `now`; returns the
   * (integer) millisecond at which the frame's last byte arrives at the other end.
   */
  book(slot: number, from: number, bytes: number, now: number): number {
    const dir = 2 * slot + (from === this.a[slot] ? 0 : 1)
    const busy = this.busyUntil[dir]!
    const start = Math.max(busy, now)
    const finish = start + (bytes * 1000) / this.bandwidth[slot]!
    this.busyUntil[dir] = finish
    return Math.ceil(finish + this.latency[slot]!)
  }
}
