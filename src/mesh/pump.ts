/**
 * The pump: hands held envelopes to neighbours. Routed handoffs, deliveries to a destination
 * that is a neighbour, and spray (forwarding-policy.ts decides how many copies each neighbour
 * gets), fairly across origins and within each neighbour's window of unacknowledged handoffs;
 * and, for an envelope with no route, a route request when one may help.
 *
 * It visits every held envelope for every neighbour, so the core runs it only when something it
 * depends on changed ({@link Pump.due}), and envelopes with nothing to do are parked until their
 * neighbourhood or routes change (held.ts `park`).
 */
import type { MeshConfig } from './config.ts'
import { copiesToHand, fairHandoffs, hasCopyToHand } from './forwarding-policy.ts'
import { type Generations, type Held, type HeldSet, isParked, park } from './held.ts'
import type { Neighbour, NeighbourTable } from './neighbour-table.ts'
import type { NeighbourId } from './router.ts'

/** What {@link Pump} asks of the mesh core. */
export interface PumpIo {
  now(): number
  /** Links this node has had (its centrality, as its Hello says). */
  encounters(): number
  /** The next hop of the selected route to the destination whose hex tag is `destKey`, if any. */
  nextHopByKey(destKey: string): NeighbourId | undefined
  /** Asks route discovery for `dest` (a request goes out if one is due); false when it cannot help now. */
  ask(dest: Uint8Array, destKey: string): boolean
  /** When a request for `destKey` may go out again (undefined: at once). */
  retryAt(destKey: string): number | undefined
  /** Hands `copies` of `h` to `n`. */
  transmit(n: Neighbour, h: Held, copies: number, now: number): void
}

/** The pump of one mesh core. */
export class Pump {
  /**
   * Something the pump depends on changed since it last ran (held envelopes, their budgets and
   * flights, a neighbour's tag, summary or encounters, a selected route). Most frames change none
   * of these (route updates that select nothing new, requests, duplicate proofs).
   */
  due = true
  /** The last run left an envelope whose destination route discovery may still find. */
  #asking = false
  /** The earliest time a route request the last run waits on may go out again. */
  #askAt = Number.POSITIVE_INFINITY
  readonly #cfg: MeshConfig
  readonly #held: HeldSet
  readonly #neighbours: NeighbourTable
  readonly #generations: Generations
  readonly #io: PumpIo

  constructor(init: {
    cfg: MeshConfig
    held: HeldSet
    neighbours: NeighbourTable
    generations: Generations
    io: PumpIo
  }) {
    this.#cfg = init.cfg
    this.#held = init.held
    this.#neighbours = init.neighbours
    this.#generations = init.generations
    this.#io = init.io
  }

  /** True when the last run left envelopes waiting on route discovery (they are looked at again). */
  get asking(): boolean {
    return this.#asking
  }

  /** When the route request the last run waits on may go out again (+∞ when it waits on none). */
  get askAt(): number {
    return this.#asking ? this.#askAt : Number.POSITIVE_INFINITY
  }

  /** {@link run}, when something it depends on changed since it last ran. */
  runIfDue(): void {
    if (this.due) this.run()
  }

  /** Hands envelopes to neighbours: routed handoffs, deliveries and spray, fairly across origins. */
  run(): void {
    this.due = false
    this.#asking = false
    this.#askAt = Number.POSITIVE_INFINITY
    // Nobody to hand anything to (and nobody to ask): a pump now could do nothing.
    if (this.#held.size === 0 || this.#neighbours.named === 0) return
    const now = this.#io.now()
    // Each envelope's next hop, looked up once per pump rather than once per neighbour; only
    // envelopes with a copy left to hand are offered to neighbours (most held ones wait for an
    // acknowledgement, and a pump runs for nearly every frame).
    const nextHops = new Map<Held, NeighbourId | undefined>()
    // Envelopes looked at, and those with something to do: a copy for a neighbour, or a request.
    const looked: Held[] = []
    const busy = new Set<Held>()
    for (const h of this.#held.values()) {
      if (isParked(h, this.#generations)) continue
      looked.push(h)
      const sendable = hasCopyToHand(h)
      const destinationIsNeighbour = this.#neighbours.hasTag(h.destKey)
      if (!sendable && destinationIsNeighbour) continue // nothing to hand, no route to ask for
      const nextHop = this.#io.nextHopByKey(h.destKey)
      if (sendable) nextHops.set(h, nextHop)
      if (nextHop === undefined && !destinationIsNeighbour) {
        if (this.#io.ask(h.envelope.destination, h.destKey)) {
          busy.add(h)
          this.#asking = true
          this.#askAt = Math.min(this.#askAt, this.#io.retryAt(h.destKey) ?? now)
        }
      }
    }
    // Parking needs every named neighbour looked at: one with a full window was not.
    let everyNeighbour = true
    for (const n of this.#neighbours.values()) {
      if (n.tagKey === undefined) continue
      if (n.inflight >= this.#cfg.window) {
        everyNeighbour = false
        continue
      }
      const copiesFor = (h: Held) => {
        const k = this.#copiesFor(h, n, nextHops.get(h), now)
        if (k > 0) busy.add(h)
        return k
      }
      for (const [h, k] of fairHandoffs(nextHops.keys(), copiesFor, this.#cfg.window - n.inflight)) {
        this.#io.transmit(n, h, k, now)
      }
    }
    if (!everyNeighbour) return
    for (const h of looked) if (!busy.has(h)) park(h, this.#generations)
  }

  /** How many copies to hand `h` to neighbour `n` now (0: none); see forwarding-policy.ts. */
  #copiesFor(h: Held, n: Neighbour, routeNextHop: NeighbourId | undefined, now: number): number {
    if (n.tagKey === undefined) return 0
    return copiesToHand(h, {
      neighbour: n.id,
      neighbourTag: n.tagKey,
      neighbourHasIt: n.has.has(h.prefix),
      destinationIsNeighbour: this.#neighbours.hasTag(h.destKey),
      routeNextHop,
      neighbourEncounters: n.encounters,
      ourEncounters: this.#io.encounters(),
      sprayCentrality: this.#cfg.sprayCentrality,
      now,
    })
  }
}
