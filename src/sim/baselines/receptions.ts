/**
 * The messages a baseline node is receiving right now, and from whom: its side of The ONE's
 * `ActiveRouter.checkReceiving`, which refuses a transfer while one is under way (TRY_LATER_BUSY),
 * so that two neighbours that got a message at the same moment do not both send it here.
 *
 * A reception opens when the node accepts an OFFER and closes when the message arrives whole, when
 * the sender's link goes down, or `holdMs` after the ACCEPT (the sender has given up by then). A
 * neighbour refused because the message was already on its way here is remembered as waiting: if
 * the reception fails, it is invited to offer again (WANT), as The ONE's sender would simply try
 * again at its next update. Bookkeeping only; the router sends the frames.
 */
import type { NeighbourId } from '../../mesh/router.ts'

/** One message on its way to this node. */
export interface Reception {
  /** The message ID (16 bytes, a copy). */
  readonly id: Uint8Array
  /** The neighbour sending it. */
  from: NeighbourId
  /** After this moment (host clock, ms) the sender has given up; the reception has failed. */
  until: number
  /** Neighbours refused while it was under way, to be invited again if it fails. */
  readonly waiting: NeighbourId[]
}

/** Receptions in progress, by message key. */
export class Receptions {
  private readonly open = new Map<string, Reception>()
  private readonly holdMs: number

  /** `holdMs`: how long an accepted offer keeps the message reserved for its sender. */
  constructor(holdMs: number) {
    this.holdMs = holdMs
  }

  /**
   * An offer of a message this node lacks (key `key`, ID bytes `id`) from `from` at `now`: true to
   * accept it (the reception opens, or is renewed for the same sender, or taken over from a sender
   * whose time ran out), false when another neighbour is sending it (`from` now waits).
   */
  offer(key: string, id: Uint8Array, from: NeighbourId, now: number): boolean {
    const r = this.open.get(key)
    if (r === undefined) {
      this.open.set(key, { id: id.slice(), from, until: now + this.holdMs, waiting: [] })
      return true
    }
    if (r.from === from || r.until <= now) {
      r.from = from
      r.until = now + this.holdMs
      const i = r.waiting.indexOf(from)
      if (i >= 0) r.waiting.splice(i, 1)
      return true
    }
    if (!r.waiting.includes(from)) r.waiting.push(from)
    return false
  }

  /** The message arrived whole (kept or not): whoever waits on it needs nothing more. */
  arrived(key: string): void {
    this.open.delete(key)
  }

  /**
   * Closes and returns the receptions that failed: those from `from` when given (its link went
   * down), and every one whose time ran out by `now`. In the order they were opened.
   */
  failed(now: number, from?: NeighbourId): Reception[] {
    const out: Reception[] = []
    for (const [key, r] of this.open) {
      if (r.from === from || r.until <= now) {
        this.open.delete(key)
        out.push(r)
      }
    }
    return out
  }

  /** When the next reception runs out of time (Infinity when none is open). */
  nextDeadline(): number {
    let t = Number.POSITIVE_INFINITY
    for (const r of this.open.values()) if (r.until < t) t = r.until
    return t
  }

  /** Receptions open. */
  get size(): number {
    return this.open.size
  }
}
