/**
 * Reassembly of messages a baseline router received in several DATA frames (payloads larger
 * than the link MTU allows). Chunks are kept per (neighbour, message) in a buffer laid out as
 * the stored record, `ID (16) | destination (16) | payload`, so that a completed message needs
 * no further copy. At most {@link MAX_PARTIALS} messages are in progress; the oldest is dropped
 * first, which bounds what forged chunk headers can make a node allocate.
 */
import { RECORD_PAYLOAD } from './baseline-store.ts'
import type { DataFrame } from './frames.ts'

/** Most messages in reassembly at once. */
export const MAX_PARTIALS = 64

interface Partial {
  readonly buf: Uint8Array
  readonly offsets: Set<number>
  bytes: number
}

/** Messages being reassembled, per neighbour. */
export class Reassembly {
  private readonly partials = new Map<string, Partial>()

  /**
   * Adds the chunk in `f` (message `key`) from `neighbour`. Returns the record buffer once every
   * byte has arrived (its ID and destination not yet filled in), `undefined` while incomplete,
   * and `null` when the chunks do not add up (overlapping offsets).
   */
  add(neighbour: string, key: string, f: DataFrame): Uint8Array | undefined | null {
    const pkey = `${neighbour}\n${key}`
    let part = this.partials.get(pkey)
    if (part === undefined || part.buf.length !== RECORD_PAYLOAD + f.total) {
      if (this.partials.size >= MAX_PARTIALS) {
        const oldest = this.partials.keys().next().value
        if (oldest !== undefined) this.partials.delete(oldest)
      }
      part = { buf: new Uint8Array(RECORD_PAYLOAD + f.total), offsets: new Set(), bytes: 0 }
      this.partials.set(pkey, part)
    }
    if (part.offsets.has(f.offset)) return undefined
    part.offsets.add(f.offset)
    part.buf.set(f.chunk, RECORD_PAYLOAD + f.offset)
    part.bytes += f.chunk.length
    if (part.bytes < f.total) return undefined
    this.partials.delete(pkey)
    return part.bytes === f.total ? part.buf : null
  }

  /** Drops everything in progress from `neighbour` (its link went down). */
  forget(neighbour: string): void {
    const prefix = `${neighbour}\n`
    for (const key of this.partials.keys()) if (key.startsWith(prefix)) this.partials.delete(key)
  }
}
