/**
 * The routing half of the mesh core: Hello and Routes frames feed the distance-vector table,
 * route requests and replies find destinations nobody advertised, and this node's own seqno
 * is kept (and persisted, so that it never goes backwards after a restart).
 *
 * Sans-IO like the core: time and sending come through {@link RouteAgentIo}.
 */
import type { Store } from '../store/store.ts'
import { bytesEqual } from '../wire/cbor.ts'
import type { MeshConfig } from './config.ts'
import { type Frame, FrameKind, INFINITY_METRIC, MAX_ROUTES_PER_FRAME } from './frames.ts'
import { RouteDiscovery } from './route-discovery.ts'
import type { NeighbourId } from './router.ts'
import { type Advert, type Route, RoutingTable, seqnoNewer, tagKey } from './routing-table.ts'

const KV_NAMESPACE = 'mesh'
const KV_SEQNO = 'seqno'

/** What the route agent needs from the core. */
export interface RouteAgentIo {
  now(): number
  /** Neighbours whose links are up. */
  neighbours(): Iterable<NeighbourId>
  hasNeighbour(id: NeighbourId): boolean
  send(neighbour: NeighbourId, frame: Frame): void
  /** The selected route to the destination whose hex tag is `destKey` changed. */
  routeChanged(destKey: string): void
  /** Whether something held goes to the destination whose hex tag is `destKey` (see route-discovery.ts). */
  wants?(destKey: string): boolean
}

/** Counters the agent adds to. */
export interface RouteAgentStats {
  routeRequestsSent: number
  routeRequestsForwarded: number
}

/** Routes of one node. */
export class RouteAgent {
  readonly #self: Uint8Array
  readonly #selfKey: string
  readonly #cfg: MeshConfig
  readonly #io: RouteAgentIo
  readonly #store: Store
  readonly #stats: RouteAgentStats
  readonly #table: RoutingTable
  readonly #discovery: RouteDiscovery
  #seqno: number
  #lastSeqnoBump = Number.NEGATIVE_INFINITY
  #nextUpdateAt = 0
  #flushAt = Number.POSITIVE_INFINITY

  constructor(init: {
    self: Uint8Array
    cfg: MeshConfig
    io: RouteAgentIo
    store: Store
    stats: RouteAgentStats
  }) {
    this.#self = init.self
    this.#selfKey = tagKey(init.self)
    this.#cfg = init.cfg
    this.#io = init.io
    this.#store = init.store
    this.#stats = init.stats
    // A route longer than the advertising radius can only have been learned at its edge (or from
    // a route reply): the mesh extends beyond what distance vector tells us.
    this.#table = new RoutingTable({
      maxDestinations: init.cfg.maxDestinations,
      farMetric: init.cfg.advertiseRadius + 1,
      onChange: (key) => init.io.routeChanged(key),
      forgetAfterMs: init.cfg.routeHoldMs,
    })
    this.#discovery = new RouteDiscovery(init.cfg, (key) => init.io.wants?.(key) ?? false)
    const stored = init.store.kvGet(KV_NAMESPACE, KV_SEQNO)
    // A restart starts a new seqno: neighbours that still hold a route to us from before (which
    // their feasibility condition now holds us to) accept the fresh one at once, rather than only
    // after a route request makes us bump it.
    this.#seqno =
      stored?.length === 4 ? (new DataView(stored.buffer, stored.byteOffset).getUint32(0) + 1) >>> 0 : 1
    const b = new Uint8Array(4)
    new DataView(b.buffer).setUint32(0, this.#seqno)
    init.store.kvSet(KV_NAMESPACE, KV_SEQNO, b)
  }

  /** This node's routing seqno (sent in Hello). */
  get seqno(): number {
    return this.#seqno
  }

  /** The selected route to `dest`, if any. */
  lookup(dest: Uint8Array): Route | undefined {
    return this.#table.lookup(dest)
  }

  /** The next hop towards the destination whose hex tag is `destKey`, if a route is selected. */
  nextHopByKey(destKey: string): NeighbourId | undefined {
    return this.#table.nextHopByKey(destKey)
  }

  /** True when some selected route reaches beyond the advertising radius (see {@link ask}). */
  hasFar(): boolean {
    return this.#table.hasFar()
  }

  /** Every selected route, nearest first. */
  adverts(): Advert[] {
    return this.#table.adverts()
  }

  /** A link came up: tell the neighbour our routes, and start periodic dumps if they were idle. */
  linkUp(neighbour: NeighbourId): void {
    this.#sendRoutes(neighbour, false)
    const now = this.#io.now()
    if (this.#nextUpdateAt <= now) this.#nextUpdateAt = now + this.#cfg.updateIntervalMs
  }

  /** A link went down: routes through it are gone. */
  linkDown(neighbour: NeighbourId): void {
    if (this.#table.dropNeighbour(neighbour).length > 0) this.#trigger()
  }

  /** A neighbour's Hello: it is a destination of metric 1 (`proved`: its Hello proved its tag). */
  hello(neighbour: NeighbourId, tag: Uint8Array, seqno: number, proved = false): void {
    if (this.#table.update(tag, neighbour, seqno, 0, Number.MAX_SAFE_INTEGER, proved)) this.#trigger()
    // A neighbour we have no route to, though it is right here, because its seqno is older than
    // our feasibility distance's (its store was lost and its seqno began again, say): ask it, and
    // only it, for a newer one (RFC 8966 §3.8.2.2), rather than wait for traffic to it to ask.
    const fd = this.#table.feasibilitySeqno(tag)
    if (this.#table.lookup(tag) !== undefined || fd === undefined || !seqnoNewer(fd, seqno)) return
    const due = this.#discovery.due(tagKey(tag), this.#io.now())
    if (due !== undefined) this.#request(tag, due.reqId, 1, [neighbour])
  }

  /** The route through `neighbour` that its Hello for `tag` made is gone (the Hello was a false claim). */
  forgetHello(neighbour: NeighbourId, tag: Uint8Array): void {
    if (this.#table.update(tag, neighbour, 0, INFINITY_METRIC, 0)) this.#trigger()
  }

  /** Handles a Routes, RouteReq or RouteRep frame. */
  handle(neighbour: NeighbourId, frame: Extract<Frame, { kind: 4 | 5 | 7 }>): void {
    if (frame.kind === FrameKind.routes) {
      const expires = this.#io.now() + this.#cfg.routeHoldMs
      let changed = false
      for (const r of frame.routes) {
        if (bytesEqual(r.dest, this.#self)) continue
        if (this.#table.update(r.dest, neighbour, r.seqno, r.metric, expires)) changed = true
      }
      if (changed) this.#trigger()
    } else if (frame.kind === FrameKind.routeRequest) {
      this.#onRequest(neighbour, frame)
    } else {
      this.#onReply(neighbour, frame)
    }
  }

  /** Periodic work: expiry, full dumps, batched triggered updates. */
  tick(): void {
    const now = this.#io.now()
    if (this.#table.expire(now).length > 0) this.#trigger()
    const neighbours = [...this.#io.neighbours()]
    if (now >= this.#nextUpdateAt && neighbours.length > 0) {
      for (const id of neighbours) this.#sendRoutes(id, false)
      this.#nextUpdateAt = now + this.#cfg.updateIntervalMs
    }
    if (now >= this.#flushAt) {
      this.#flushAt = Number.POSITIVE_INFINITY
      for (const id of neighbours) this.#sendRoutes(id, true)
      this.#table.clearDirty()
    }
  }

  /** When {@link tick} next has work. */
  nextWake(haveNeighbours: boolean): number {
    return haveNeighbours ? Math.min(this.#flushAt, this.#nextUpdateAt) : this.#flushAt
  }

  /** When a request for `destKey` may go out again (undefined: at once). */
  retryAt(destKey: string): number | undefined {
    return this.#discovery.nextTry(destKey, this.#io.now())
  }

  /**
   * Floods a route request for `dest` if one is due (expanding ring, backing off) and may find
   * something distance vector cannot. Returns false when discovery cannot help with `dest` now
   * (so asking again later is pointless until routes change).
   */
  ask(dest: Uint8Array, destKey = tagKey(dest)): boolean {
    // Within the advertising radius distance vector already lists every reachable destination,
    // so a request for a destination never heard of can only help when the mesh reaches beyond
    // the radius. A destination the table knows may be unreachable only for want of a newer
    // seqno (its routes unfeasible here or upstream), which a request obtains. In a sparse,
    // delay-tolerant mesh most destinations are never heard of, and those floods are saved.
    if (!this.#table.hasFar() && !this.#table.knows(destKey)) return false
    const neighbours = [...this.#io.neighbours()]
    if (neighbours.length === 0) return true
    const due = this.#discovery.due(destKey, this.#io.now())
    if (due !== undefined) this.#request(dest, due.reqId, due.hopLimit, neighbours)
    return true
  }

  /** Sends our route request `reqId` for `dest` to `neighbours`, to go `hopLimit` hops at most. */
  #request(dest: Uint8Array, reqId: number, hopLimit: number, neighbours: readonly NeighbourId[]): void {
    this.#discovery.note(this.#selfKey, reqId, '')
    this.#stats.routeRequestsSent++
    const frame: Frame = {
      kind: FrameKind.routeRequest,
      dest,
      origin: this.#self,
      originSeqno: this.#seqno,
      reqId,
      hops: 0,
      hopLimit,
      wantSeqno: this.#wantSeqno(dest),
    }
    for (const id of neighbours) this.#io.send(id, frame)
  }

  #onRequest(from: NeighbourId, f: Extract<Frame, { kind: 5 }>): void {
    if (bytesEqual(f.origin, this.#self)) return
    const now = this.#io.now()
    if (!this.#discovery.admit(from, now)) return
    if (!this.#discovery.note(tagKey(f.origin), f.reqId, from)) return
    if (this.#table.update(f.origin, from, f.originSeqno, f.hops, now + this.#cfg.routeHoldMs))
      this.#trigger()
    if (bytesEqual(f.dest, this.#self)) {
      // Above the seqno asked for (RFC 8966 §3.8.1.2): routes to us that are unfeasible somewhere
      // on the way, however far ahead their feasibility distance got (our seqno restarted with a
      // lost store, say, or a forged one went round), become feasible again.
      // Once a second at most, also when asked for more (made-up requests asking one more each
      // time would have every one of them sent to every neighbour, and on through the mesh).
      const behind = f.wantSeqno !== 0 && seqnoNewer(f.wantSeqno, this.#seqno)
      if (now - this.#lastSeqnoBump >= 1000) this.#bumpSeqno(now, behind ? f.wantSeqno : undefined)
      const reply = { kind: FrameKind.routeReply, dest: this.#self, seqno: this.#seqno, metric: 0 } as const
      this.#io.send(from, { ...reply, origin: f.origin, reqId: f.reqId })
      return
    }
    const route = this.#table.lookup(f.dest)
    const fresh = route !== undefined && (f.wantSeqno === 0 || !seqnoNewer(f.wantSeqno, route.seqno))
    if (route !== undefined && fresh && route.nextHop !== from) {
      this.#io.send(from, {
        kind: FrameKind.routeReply,
        dest: route.dest,
        seqno: route.seqno,
        metric: route.metric,
        origin: f.origin,
        reqId: f.reqId,
      })
      return
    }
    if (f.hopLimit <= 1 || !this.#discovery.mayForward(tagKey(f.origin), now)) return
    this.#stats.routeRequestsForwarded++
    // What this node needs to take the route too: a seqno above its own feasibility distance.
    const want = this.#wantSeqno(f.dest)
    const wantSeqno = f.wantSeqno === 0 || (want !== 0 && seqnoNewer(want, f.wantSeqno)) ? want : f.wantSeqno
    // Never further than our own hop limit, whatever the request asked for (the wire allows 64).
    const hopLimit = Math.min(f.hopLimit, this.#cfg.hopLimit) - 1
    const next = { ...f, hops: f.hops + 1, hopLimit, wantSeqno }
    for (const other of this.#io.neighbours()) if (other !== from) this.#io.send(other, next)
  }

  #onReply(from: NeighbourId, f: Extract<Frame, { kind: 7 }>): void {
    if (bytesEqual(f.dest, this.#self)) return
    if (this.#table.update(f.dest, from, f.seqno, f.metric, this.#io.now() + this.#cfg.routeHoldMs))
      this.#trigger()
    if (bytesEqual(f.origin, this.#self)) return
    const back = this.#discovery.backPath(tagKey(f.origin), f.reqId)
    const route = this.#table.lookup(f.dest)
    if (back === undefined || route === undefined || !this.#io.hasNeighbour(back) || back === route.nextHop)
      return
    this.#io.send(back, { ...f, seqno: route.seqno, metric: route.metric })
  }

  /** Sends our routes (all, or only the changed ones) to one neighbour. */
  #sendRoutes(neighbour: NeighbourId, onlyChanged: boolean): void {
    const adverts = onlyChanged
      ? this.#table.peekDirty()
      : [{ dest: this.#self, seqno: this.#seqno, metric: 0, nextHop: '' }, ...this.#table.adverts()]
    // Split horizon, and a scope: routes longer than the advertising radius are not offered, so
    // tables stay bounded by the neighbourhood; farther destinations are found by route requests.
    // (They are not retracted either: a retraction would also erase routes that requests found.)
    const radius = this.#cfg.advertiseRadius
    const routes = adverts
      .filter((a) => a.nextHop !== neighbour && (a.metric <= radius || a.metric === INFINITY_METRIC))
      .map(({ dest, seqno, metric }) => ({ dest, seqno, metric }))
    for (let i = 0; i < routes.length; i += MAX_ROUTES_PER_FRAME) {
      this.#io.send(neighbour, { kind: FrameKind.routes, routes: routes.slice(i, i + MAX_ROUTES_PER_FRAME) })
    }
  }

  #trigger(): void {
    const at = this.#io.now() + this.#cfg.triggerDelayMs
    if (at < this.#flushAt) this.#flushAt = at
  }

  /**
   * The seqno to ask `dest` for: one newer than our feasibility distance holds, so that a route
   * that is only unfeasible here (stale) is refreshed by the destination (RFC 8966 §3.8.1.2); 0
   * (any) when we hold none.
   */
  #wantSeqno(dest: Uint8Array): number {
    const fd = this.#table.feasibilitySeqno(dest)
    return fd === undefined ? 0 : (fd + 1) >>> 0 || 1
  }

  /** Takes our seqno one further, or to `atLeast` when that is further still, and says so. */
  #bumpSeqno(now: number, atLeast?: number): void {
    const next = (this.#seqno + 1) >>> 0
    this.#seqno = atLeast !== undefined && seqnoNewer(atLeast, next) ? atLeast : next
    this.#lastSeqnoBump = now
    const b = new Uint8Array(4)
    new DataView(b.buffer).setUint32(0, this.#seqno)
    this.#store.kvSet(KV_NAMESPACE, KV_SEQNO, b)
    for (const id of this.#io.neighbours()) {
      this.#io.send(id, {
        kind: FrameKind.routes,
        routes: [{ dest: this.#self, seqno: this.#seqno, metric: 0 }],
      })
    }
  }
}
