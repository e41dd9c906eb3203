/**
 * A baseline node's summary vector (Vahdat and Becker's term): the IDs of the messages it holds
 * or has had delivered, sent to each new neighbour so that it is not offered what it has. Each ID
 * is listed by its first {@link PREFIX_BYTES} bytes, as Talken's Summary lists them. Kept
 * as one growing byte array, appended to as messages arrive and rebuilt from the store only after
 * something left it, so that a summary costs one copy, not one operation per ID.
 */
import type { BaselineStore } from './baseline-store.ts'
import { PREFIX_BYTES } from './frames.ts'

/** The ID prefixes a summary lists, {@link PREFIX_BYTES} bytes each. */
export class SummaryVector {
  private ids = new Uint8Array(PREFIX_BYTES * 64)
  private count = 0
  private stale = true

  /** Appends the prefix of the ID at `bytes[offset…]` (a message stored or delivered). */
  append(bytes: Uint8Array, offset: number): void {
    if (this.stale) return // rebuilt before use anyway
    const at = this.count * PREFIX_BYTES
    if (at + PREFIX_BYTES > this.ids.length) {
      const bigger = new Uint8Array(this.ids.length * 2)
      bigger.set(this.ids.subarray(0, at))
      this.ids = bigger
    }
    for (let i = 0; i < PREFIX_BYTES; i++) this.ids[at + i] = bytes[offset + i]!
    this.count++
  }

  /** Something left the store: rebuild before the next use. */
  invalidate(): void {
    this.stale = true
  }

  /** The ID prefixes of `store`'s held and delivered messages; a view valid until the next change. */
  bytes(store: BaselineStore): Uint8Array {
    if (this.stale) {
      const n = store.messages.size + store.delivered.size
      if (this.ids.length < n * PREFIX_BYTES) this.ids = new Uint8Array(n * PREFIX_BYTES * 2)
      const ids = this.ids
      let at = 0
      for (const m of store.messages.values()) {
        const r = m.record
        for (let i = 0; i < PREFIX_BYTES; i++) ids[at + i] = r[i]!
        at += PREFIX_BYTES
      }
      for (const d of store.delivered.values()) {
        ids.set(d.id.subarray(0, PREFIX_BYTES), at)
        at += PREFIX_BYTES
      }
      this.count = n
      this.stale = false
    }
    return this.ids.subarray(0, this.count * PREFIX_BYTES)
  }
}
