/**
 * On-demand route discovery state: when to ask for a destination nobody advertised, which
 * requests were seen (and from where, for the reply), and a flood budget per origin.
 *
 * Requests for one destination back off exponentially, and their radius grows with each try
 * (2, 4, 8, … hops up to the hop limit): an expanding-ring search (RFC 3561 §6.4), so a nearby
 * destination is found without flooding the whole mesh.
 */
import { BoundedMap } from './bounded-map.ts'
import type { MeshConfig } from './config.ts'
import type { NeighbourId } from './router.ts'

/**
 * Requests taken from one neighbour per second, as a multiple of the per-origin budget: a relay
 * passes on requests of many origins, but one link cannot make us work for made-up ones without end.
 */
export const NEIGHBOUR_REQUEST_FACTOR = 4

/** Route request bookkeeping of one node. */
export class RouteDiscovery {
  readonly #cfg: MeshConfig
  /** Destination → when it may be asked for again, and how many times it was. */
  readonly #asked = new BoundedMap<string, { until: number; attempts: number }>(4096)
  /** origin:reqId → the neighbour the request came from ('' for our own). */
  readonly #seen = new BoundedMap<string, NeighbourId>(4096)
  #budget = new Map<string, number>()
  /** Requests taken from each neighbour this second (see {@link admit}). */
  #fromNeighbour = new Map<NeighbourId, number>()
  #second = -1
  #reqId = 0

  constructor(cfg: MeshConfig) {
    this.#cfg = cfg
  }

  /** If a request for `destKey` is due, records it and returns its ID and radius. */
  due(destKey: string, now: number): { reqId: number; hopLimit: number } | undefined {
    const asked = this.#asked.get(destKey)
    if (asked !== undefined && asked.until > now) return undefined
    const attempts = (asked?.attempts ?? 0) + 1
    const wait = Math.min(this.#cfg.routeRequestMaxMs, this.#cfg.routeRequestBaseMs * 2 ** (attempts - 1))
    this.#asked.set(destKey, { until: now + wait, attempts })
    this.#reqId = (this.#reqId + 1) >>> 0
    return { reqId: this.#reqId, hopLimit: Math.min(this.#cfg.hopLimit, 2 ** Math.min(attempts, 6)) }
  }

  /** When `destKey` may be asked for again; undefined when it never was (or was forgotten). */
  nextTry(destKey: string): number | undefined {
    return this.#asked.get(destKey)?.until
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
