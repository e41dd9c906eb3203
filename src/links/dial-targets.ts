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
/**
 * A peer we hung up on (it kept closing our mesh stream) is not dialled for this long, doubling
 * with each hang-up up to {@link GIVEN_UP_DELAY_MS}: its dials succeed, so failures alone would
 * never slow them down.
 */
export const HANG_UP_DELAY_MS = 30_000
/** Hang-ups are forgotten after this long without another. */
export const HANG_UPS_FORGOTTEN_MS = 2 * 60 * 60_000
/** Peers whose hang-ups are remembered, at most (the oldest forgotten first). */
const MAX_HUNG_UP_PEERS = 1024

/** Hang-ups of one peer. */
interface HangUps {
  count: number
  /** The last one. */
  at: number
  /** No address of the peer is dialled before this. */
  until: number
}

/** The redial list, by address. */
export class DialTargets {
  readonly #targets = new Map<string, DialTarget>()
  readonly #pace: RedialPace
  /** Peers we hung up on lately, oldest first. */
  readonly #hungUp = new Map<string, HangUps>()

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

  /**
   * Targets due at `now` that are not being dialled, skipping those whose peer `connected` says is,
   * and those of a peer we hung up on until its wait is over.
   */
  due(now: number, connected: (peer: string) => boolean): DialTarget[] {
    const out: DialTarget[] = []
    for (const target of this.#targets.values()) {
      if (target.dialling || target.nextAt > now) continue
      if (target.peer !== undefined && (connected(target.peer) || this.#waiting(target.peer, now))) continue
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

  /** Whether some address of `peer` is kept for redialling. */
  knowsPeer(peer: string): boolean {
    for (const target of this.#targets.values()) if (target.peer === peer) return true
    return false
  }

  /**
   * `address` was just seen in use (its peer answered mDNS from it): added if new, and due at once
   * even if it had failed (it was given up, or backing off). The peer's hang-up wait still holds.
   */
  sighted(address: string, now: number): DialTarget {
    const target = this.add(address)
    target.failures = 0
    target.nextAt = now
    return target
  }

  /** A dial of `target` failed at `now`: it waits longer before the next. */
  failed(target: DialTarget, now: number): void {
    target.failures++
    target.nextAt = now + this.#delay(target.failures)
    // An address someone else gave us that keeps failing is tried rarely (ours keep their pace).
    if (!target.pinned && target.failures >= MAX_TARGET_FAILURES) target.nextAt = now + GIVEN_UP_DELAY_MS
  }

  /**
   * We hung up on `peer` at `now` (it kept closing our mesh stream): none of its addresses is
   * dialled for {@link HANG_UP_DELAY_MS}, doubling with each hang-up, also after dials that succeed.
   */
  hungUp(peer: string, now: number): void {
    const before = this.#hungUp.get(peer)
    const count = before !== undefined && now - before.at < HANG_UPS_FORGOTTEN_MS ? before.count + 1 : 1
    const wait = Math.min(GIVEN_UP_DELAY_MS, HANG_UP_DELAY_MS * 2 ** Math.min(count - 1, 16))
    this.#hungUp.delete(peer)
    this.#hungUp.set(peer, { count, at: now, until: now + wait })
    if (this.#hungUp.size > MAX_HUNG_UP_PEERS) this.#hungUp.delete(this.#hungUp.keys().next().value!)
  }

  /** When `peer` may be dialled again after our hang-ups (0: at once). */
  waitUntil(peer: string): number {
    return this.#hungUp.get(peer)?.until ?? 0
  }

  #waiting(peer: string, now: number): boolean {
    const h = this.#hungUp.get(peer)
    return h !== undefined && h.until > now
  }

  #delay(failures: number): number {
    return Math.min(this.#pace.maxMs, this.#pace.minMs * 2 ** Math.min(failures - 1, 16))
  }
}
