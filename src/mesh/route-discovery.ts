/**
 * On-demand route discovery state: when to ask for a destination nobody advertised, which
 * requests were seen (and from where, for the reply), and a flood budget per origin.
 *
 * Requests for one destination back off exponentially, and their radius grows with each try
 * (2, 4, 8, … hops up to the hop limit): an expanding-ring search (RFC 3561 §6.4), so a nearby
 * destination is found without flooding the whole mesh.
 *
 * Our own requests, all destinations together, also draw on one token bucket of
 * `routeRequestsPerSecond` a second (RFC 3561 RREQ_RATELIMIT, 10 a second): however many
 * destinations wait for a route (a neighbour can hand us thousands of small envelopes to made-up
 * ones), at most that many requests go out a second, and at most that many in one burst (one pump).
 * It is the budget every relay holds each origin to when forwarding ({@link RouteDiscovery.mayForward}):
 * requests beyond it would be dropped one hop further anyway.
 */
import { BoundedMap } from './bounded-map.ts'
import type { MeshConfig } from './config.ts'
import type { NeighbourId } from './router.ts'

/**
 * Requests taken from one neighbour per second, as a multiple of the per-origin budget: a relay
 * passes on requests of many origins, but one link cannot make us work for made-up ones without end.
 */
export const NEIGHBOUR_REQUEST_FACTOR = 4

/**
 * Backoff records are swept (those no longer backing off, for destinations nothing held goes to)
 * once there are this many, or twice as many as the last sweep left: a destination still waited
 * for keeps its record, so its backoff is never forgotten (and it never looks unasked).
 */
export const ASKED_SWEEP_FLOOR = 4096

/** Route request bookkeeping of one node. */
export class RouteDiscovery {
  readonly #cfg: MeshConfig
  /**
   * Destination → when it may be asked for again, and how many times it was. Not a bounded map:
   * one that forgot would let every destination beyond its capacity be asked for as if never
   * asked. Kept while something held goes to the destination ({@link #wanted}) or it backs off;
   * that is bounded by what is held, and by the budget times `routeRequestMaxMs`.
   */
  readonly #asked = new Map<string, { until: number; attempts: number }>()
  #sweepAt = ASKED_SWEEP_FLOOR
  /** Whether something held goes to a destination (its backoff record is kept). */
  readonly #wanted: (destKey: string) => boolean
  /** Tokens of the budget of our own requests (see the file comment), and when last filled. */
  #tokens: number
  #filledAt = Number.NEGATIVE_INFINITY
  /** origin:reqId → the neighbour the request came from ('' for our own). */
  readonly #seen = new BoundedMap<string, NeighbourId>(4096)
  #budget = new Map<string, number>()
  /** Requests taken from each neighbour this second (see {@link admit}). */
  #fromNeighbour = new Map<NeighbourId, number>()
  #second = -1
  #reqId = 0

  constructor(cfg: MeshConfig, wanted: (destKey: string) => boolean = () => false) {
    this.#cfg = cfg
    this.#wanted = wanted
    this.#tokens = this.#burst
  }

  /**
   * If a request for `destKey` is due (its backoff is over, and the budget has a token left),
   * records it and returns its ID and radius.
   */
  due(destKey: string, now: number): { reqId: number; hopLimit: number } | undefined {
    const asked = this.#asked.get(destKey)
    if (asked !== undefined && asked.until > now) return undefined
    this.#fill(now)
    if (this.#tokens < 1) return undefined
    this.#tokens--
    const attempts = (asked?.attempts ?? 0) + 1
    const wait = Math.min(this.#cfg.routeRequestMaxMs, this.#cfg.routeRequestBaseMs * 2 ** (attempts - 1))
    if (asked === undefined && this.#asked.size >= this.#sweepAt) this.#sweep(now)
    this.#asked.set(destKey, { until: now + wait, attempts })
    this.#reqId = (this.#reqId + 1) >>> 0
    return { reqId: this.#reqId, hopLimit: Math.min(this.#cfg.hopLimit, 2 ** Math.min(attempts, 6)) }
  }

  /**
   * When a request for `destKey` may go out (undefined: it may now): when its backoff ends, and
   * not before the budget, when spent, is full again (so that destinations waiting on the budget
   * are looked at again once a second, not once per token).
   */
  nextTry(destKey: string, now: number): number | undefined {
    const until = this.#asked.get(destKey)?.until
    this.#fill(now)
    if (this.#tokens >= 1) return until
    const full = now + Math.ceil(((this.#burst - this.#tokens) * 1000) / this.#rate)
    return until === undefined ? full : Math.max(until, full)
  }

  /** Own requests a second, and in one burst. */
  get #rate(): number {
    return Math.max(1, this.#cfg.routeRequestsPerSecond)
  }

  get #burst(): number {
    return this.#rate
  }

  #fill(now: number): void {
    if (!(now > this.#filledAt)) return
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#filledAt) * this.#rate) / 1000)
    this.#filledAt = now
  }

  /** Forgets backoffs that are over, of destinations nothing held goes to. */
  #sweep(now: number): void {
    for (const [key, a] of this.#asked) if (a.until <= now && !this.#wanted(key)) this.#asked.delete(key)
    this.#sweepAt = Math.max(ASKED_SWEEP_FLOOR, 2 * this.#asked.size)
  }

  /** Records a request; returns false when it was seen before (each request is handled once). */
  note(originKey: string, reqId: number, from: NeighbourId): boolean {
    const key = `${originKey}:${reqId}`
    if (this.#seen.has(key)) return false
    this.#seen.set(key, from)
    return true
  }

  /** The neighbour a request came from, to send its reply back. */
  backPath(originKey: string, reqId: number): NeighbourId | undefined {
    return this.#seen.get(`${originKey}:${reqId}`)
  }

  /**
   * Whether a request arriving from neighbour `from` is looked at at all: at most
   * {@link NEIGHBOUR_REQUEST_FACTOR} × `routeRequestsPerSecond` a second from one neighbour.
   * The per-origin budget of {@link mayForward} is keyed by what the frame says, which a sender
   * makes up at will; this one is keyed by the link it came on.
   */
  admit(from: NeighbourId, now: number): boolean {
    this.#tick(now)
    const used = this.#fromNeighbour.get(from) ?? 0
    if (used >= this.#cfg.routeRequestsPerSecond * NEIGHBOUR_REQUEST_FACTOR) return false
    this.#fromNeighbour.set(from, used + 1)
    return true
  }

  /** Whether one more request from `originKey` may be forwarded this second. */
  mayForward(originKey: string, now: number): boolean {
    this.#tick(now)
    const used = this.#budget.get(originKey) ?? 0
    if (used >= this.#cfg.routeRequestsPerSecond) return false
    this.#budget.set(originKey, used + 1)
    return true
  }

  #tick(now: number): void {
    const second = Math.floor(now / 1000)
    if (second === this.#second) return
    this.#second = second
    this.#budget = new Map()
    this.#fromNeighbour = new Map()
  }
}
