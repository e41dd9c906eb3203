/**
 * The simulator's pending-event queue: a binary min-heap ordered by (time, insertion sequence),
 * so that events due at the same millisecond run in the order they were scheduled and every run
 * with the same inputs pops them in the same order.
 *
 * Events live in flat, growable typed arrays indexed by a slot number (four integer fields and
 * one object reference each); slots are recycled through a free list, so pushing and popping
 * allocate nothing once the arrays have grown to the run's high-water mark.
 */

/** A popped event; the queue overwrites this one object on every {@link EventQueue.pop}. */
export interface PoppedEvent {
  time: number
  type: number
  a: number
  b: number
  c: number
  d: number
  ref: unknown
}

/** A priority queue of simulator events. */
export class EventQueue {
  private capacity = 0
  private time = new Float64Array(0)
  private seq = new Float64Array(0)
  private type = new Uint8Array(0)
  private fa = new Int32Array(0)
  private fb = new Int32Array(0)
  private fc = new Int32Array(0)
  private fd = new Int32Array(0)
  private refs: unknown[] = []
  /** heap[0..size) holds slot numbers. */
  private heap = new Int32Array(0)
  private free = new Int32Array(0)
  private freeCount = 0
  private used = 0
  private nextSeq = 0
  /** Number of pending events. */
  size = 0
  /** The event most recently popped. */
  readonly current: PoppedEvent = { time: 0, type: 0, a: 0, b: 0, c: 0, d: 0, ref: undefined }

  constructor(initialCapacity = 1024) {
    this.grow(Math.max(16, initialCapacity))
  }

  private grow(capacity: number): void {
    const copyF64 = (old: Float64Array) => {
      const next = new Float64Array(capacity)
      next.set(old)
      return next
    }
    const copyI32 = (old: Int32Array) => {
      const next = new Int32Array(capacity)
      next.set(old)
      return next
    }
    this.time = copyF64(this.time)
    this.seq = copyF64(this.seq)
    const type = new Uint8Array(capacity)
    type.set(this.type)
    this.type = type
    this.fa = copyI32(this.fa)
    this.fb = copyI32(this.fb)
    this.fc = copyI32(this.fc)
    this.fd = copyI32(this.fd)
    this.heap = copyI32(this.heap)
    this.free = copyI32(this.free)
    this.refs.length = capacity
    this.capacity = capacity
  }

  /** True when slot `x` is due before slot `y`. */
  private less(x: number, y: number): boolean {
    const tx = this.time[x]!
    const ty = this.time[y]!
    return tx < ty || (tx === ty && this.seq[x]! < this.seq[y]!)
  }

  /** Schedules an event; `time` in milliseconds. */
  push(time: number, type: number, a: number, b = 0, c = 0, d = 0, ref?: unknown): void {
    let slot: number
    if (this.freeCount > 0) {
      slot = this.free[--this.freeCount]!
    } else {
      if (this.used === this.capacity) this.grow(this.capacity * 2)
      slot = this.used++
    }
    this.time[slot] = time
    this.seq[slot] = this.nextSeq++
    this.type[slot] = type
    this.fa[slot] = a
    this.fb[slot] = b
    this.fc[slot] = c
    this.fd[slot] = d
    this.refs[slot] = ref
    // sift up
    const heap = this.heap
    let i = this.size++
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = heap[parent]!
      if (!this.less(slot, p)) break
      heap[i] = p
      i = parent
    }
    heap[i] = slot
  }

  /** The time of the next event, or Infinity when none is pending. */
  peekTime(): number {
    return this.size === 0 ? Number.POSITIVE_INFINITY : this.time[this.heap[0]!]!
  }

  /** Removes the next event into {@link current}; false when the queue is empty. */
  pop(): boolean {
    if (this.size === 0) return false
    const heap = this.heap
    const top = heap[0]!
    const cur = this.current
    cur.time = this.time[top]!
    cur.type = this.type[top]!
    cur.a = this.fa[top]!
    cur.b = this.fb[top]!
    cur.c = this.fc[top]!
    cur.d = this.fd[top]!
    cur.ref = this.refs[top]
    this.refs[top] = undefined
    this.free[this.freeCount++] = top
    const last = heap[--this.size]!
    if (this.size > 0) {
      // sift down
      let i = 0
      const n = this.size
      for (;;) {
        const l = 2 * i + 1
        if (l >= n) break
        const r = l + 1
        let child = l
        if (r < n && this.less(heap[r]!, heap[l]!)) child = r
        if (!this.less(heap[child]!, last)) break
        heap[i] = heap[child]!
        i = child
      }
      heap[i] = last
    }
    return true
  }

  /** Drops every pending event. */
  clear(): void {
    for (let i = 0; i < this.used; i++) this.refs[i] = undefined
    this.size = 0
    this.used = 0
    this.freeCount = 0
  }
}
