/**
 * The addresses the links keep redialling, and when each is next due: bootstrap and contact
 * addresses (pinned: given to us), and those of mesh peers we have met (any peer can advertise
 * any address, so those are bounded and give way first). Bookkeeping only; the dialling itself
 * is the links' (libp2p-links.ts).
 */
import { parseMultiaddr, peerOf, withPeer } from './multiaddrs.ts'

/** One address to redial. */
export interface DialTarget {
  readonly address: string
  /** The peer behind it, when known. */
  readonly peer: string | undefined
  failures: number
  nextAt: number
  dialling: boolean
  /** Given to us (bootstrap, a contact's card, a dial): never pushed out by peers met on the way. */
  pinned: boolean
}

/** Backoff between failed dials of one address, from `minMs` doubling to `maxMs`. */
export interface RedialPace {
  readonly minMs: number
  readonly maxMs: number
}

/** Addresses kept for redialling. */
export const MAX_DIAL_TARGETS = 256
/**
 * Failed dials in a row after which an address someone else gave us is tried only every
 * {@link GIVEN_UP_DELAY_MS}: any peer can advertise any address, and a peer met once may be
 * back after a long while.
 */
export const MAX_TARGET_FAILURES = 8
export const GIVEN_UP_DELAY_MS = 30 * 60_000

/** The redial list, by address. */
export class DialTargets {
  readonly #targets = new Map<string, DialTarget>()
  readonly #pace: RedialPace

  constructor(pace: RedialPace) {
    this.#pace = pace
  }

  /** Adds `address` (or pins it, if known). Throws `invalid_argument` when it is not a multiaddr. */
  add(address: string, pinned = false): DialTarget {
    const ma = parseMultiaddr(address)
    const key = ma.toString()
    const known = this.#targets.get(key)
    if (known !== undefined) {
      known.pinned ||= pinned
      return known
    }
    const target: DialTarget = {
      address: key,
      peer: peerOf(ma),
      failures: 0,
      nextAt: 0,
      dialling: false,
      pinned,
    }
    this.#targets.set(key, target)
    // Bounded: the oldest target that was not given to us goes first, so that peers met on the
    // way never push out bootstrap or contact addresses.
    if (this.#targets.size > MAX_DIAL_TARGETS) {
      for (const [k, t] of this.#targets) {
        if (t.pinned) continue
        this.#targets.delete(k)
        break
      }
    }
    return target
  }

  /** Targets due at `now` that are not being dialled, skipping those whose peer `connected` says is. */
  due(now: number, connected: (peer: string) => boolean): DialTarget[] {
    const out: DialTarget[] = []
    for (const target of this.#targets.values()) {
      if (target.dialling || target.nextAt > now) continue
      if (target.peer !== undefined && connected(target.peer)) continue
      out.push(target)
    }
    return out
  }

  /** A dial of `target` reached `peer`: its failures are forgotten, and an address without a peer ID learns it. */
  succeeded(target: DialTarget, peer: string): void {
    target.failures = 0
    target.nextAt = 0
    if (target.peer !== undefined) return
    // So that the redial loop can skip it while connected.
    this.#targets.delete(target.address)
    this.add(withPeer(target.address, peer), target.pinned).failures = 0
  }

  /** A dial of `target` failed at `now`: it waits longer before the next. */
  failed(target: DialTarget, now: number): void {
    target.failures++
    target.nextAt = now + this.#delay(target.failures)
    // An address someone else gave us that keeps failing is tried rarely (ours keep their pace).
    if (!target.pinned && target.failures >= MAX_TARGET_FAILURES) target.nextAt = now + GIVEN_UP_DELAY_MS
  }

  /** Postpones every address of `peer`, each counting one more failure. */
  backOff(peer: string, now: number): void {
    for (const target of this.#targets.values()) {
      if (target.peer !== peer) continue
      target.failures++
      target.nextAt = now + this.#delay(target.failures)
    }
  }

  #delay(failures: number): number {
    return Math.min(this.#pace.maxMs, this.#pace.minMs * 2 ** Math.min(failures - 1, 16))
  }
}
