/**
 * A scenario's network inputs as one time-ordered list: link contacts coming up and going down,
 * nodes leaving and returning (churn). The list is computed once per scenario and replayed
 * unchanged for every router, so every router sees identical contacts. (Messages have their own
 * sorted list, the {@link MessagePlan} in traffic.ts.)
 *
 * Events are kept in flat typed arrays (a 10,000-node random-waypoint run produces millions of
 * contact events). Order: by time; at equal times contacts first, then churn; within a class,
 * the order they were added in (a trace file's line order).
 */

/** What an input event does. */
export const InputKind = {
  /** A physical contact between nodes `a` and `b` begins. */
  linkUp: 0,
  /** The contact between `a` and `b` ends. */
  linkDown: 1,
  /** Node `a` leaves: its links go down and its router is discarded. */
  leave: 2,
  /** Node `a` returns with a new router over its old store. */
  return: 3,
} as const

/** One of the {@link InputKind} values. */
export type InputKind = (typeof InputKind)[keyof typeof InputKind]

/** Tie-break class of each kind: contacts, then churn. */
const KIND_CLASS = [0, 0, 1, 1] as const

/** A sorted, immutable list of input events. */
export interface Schedule {
  readonly length: number
  /** Milliseconds. */
  readonly time: Float64Array
  readonly kind: Uint8Array
  readonly a: Int32Array
  readonly b: Int32Array
}

/** Accumulates input events in any order and sorts them once. */
export class ScheduleBuilder {
  private n = 0
  private time = new Float64Array(1024)
  private kind = new Uint8Array(1024)
  private a = new Int32Array(1024)
  private b = new Int32Array(1024)

  /** Number of events added so far. */
  get length(): number {
    return this.n
  }

  /** Adds one event; `time` in integer milliseconds. */
  add(time: number, kind: InputKind, a: number, b = -1): void {
    if (this.n === this.time.length) {
      const cap = this.n * 2
      const t = new Float64Array(cap)
      t.set(this.time)
      this.time = t
      const k = new Uint8Array(cap)
      k.set(this.kind)
      this.kind = k
      const na = new Int32Array(cap)
      na.set(this.a)
      this.a = na
      const nb = new Int32Array(cap)
      nb.set(this.b)
      this.b = nb
    }
    this.time[this.n] = time
    this.kind[this.n] = kind
    this.a[this.n] = a
    this.b[this.n] = b
    this.n++
  }

  /** Sorts (stably) and returns the schedule; the builder should not be used afterwards. */
  build(): Schedule {
    const n = this.n
    const { time, kind } = this
    const before = (i: number, j: number): number =>
      time[i]! - time[j]! || KIND_CLASS[kind[i] as InputKind] - KIND_CLASS[kind[j] as InputKind] || i - j
    let sorted = true
    for (let i = 1; i < n && sorted; i++) if (before(i - 1, i) > 0) sorted = false
    if (sorted) {
      return {
        length: n,
        time: time.slice(0, n),
        kind: kind.slice(0, n),
        a: this.a.slice(0, n),
        b: this.b.slice(0, n),
      }
    }
    const order = new Uint32Array(n)
    for (let i = 0; i < n; i++) order[i] = i
    order.sort(before)
    const out = {
      length: n,
      time: new Float64Array(n),
      kind: new Uint8Array(n),
      a: new Int32Array(n),
      b: new Int32Array(n),
    }
    for (let i = 0; i < n; i++) {
      const j = order[i]!
      out.time[i] = time[j]!
      out.kind[i] = kind[j]!
      out.a[i] = this.a[j]!
      out.b[i] = this.b[j]!
    }
    return out
  }
}

/** Counts the contact (link up/down) events of a schedule, for scenario summaries. */
export function countContacts(schedule: Schedule): number {
  let n = 0
  for (let i = 0; i < schedule.length; i++) if (schedule.kind[i] === InputKind.linkUp) n++
  return n
}
