/**
 * Talken's mesh core: multi-hop routing and store-and-forward as one sans-IO state machine.
 *
 * - Neighbours say Hello on link-up; each one is a route of metric 1.
 * - Routes are learned by distance vector with Babel's feasibility condition (routing-table.ts)
 *   and, for destinations nobody advertised, by route requests flooded within a growing radius.
 * - An envelope with a route goes hop by hop as a single copy; each hop takes custody (persists it
 *   in the store, then acknowledges) before the previous one lets go.
 * - An envelope without a route stays with its holder, who hands half of its copy budget to each
 *   neighbour met that does not have it yet (binary spray-and-wait), until a route appears or
 *   the destination itself is met.
 * - The destination proves delivery with the ack secret hidden in the payload; the proof walks
 *   back the path, goes to whoever is known to hold a copy, and travels in an ack envelope to the
 *   source. Every holder that learns it drops its copy.
 *
 * Everything is injected through {@link RouterHost} and the {@link Store}: no clock, randomness,
 * timers or sockets of its own.
 *
 * The core holds the envelopes (held.ts persists them) and moves them; its parts: the neighbour
 * table (neighbour-table.ts), routes (route-agent.ts), the forwarding decision
 * (forwarding-policy.ts) and the pump that applies it (pump.ts), custody of what neighbours hand
 * us (custody.ts), local delivery and proofs (deliveries.ts), small links (fragmentation.ts).
 */
import { isStorageFailure, isTalkenError, TalkenError } from '../errors.ts'
import type { DeliveryState, Store } from '../store/store.ts'
import { bytesEqual } from '../wire/cbor.ts'
import { type Envelope, EnvelopeFlags, encodeEnvelope, messageIdHex } from '../wire/envelope.ts'
import { AckTags } from './ack-tags.ts'
import { BoundedMap } from './bounded-map.ts'
import { DEFAULT_MESH_CONFIG, type MeshConfig } from './config.ts'
import { Custody } from './custody.ts'
import { Deliveries, type Seen } from './deliveries.ts'
import { fragmentFrame, isFragment, MIN_FRAGMENT_MTU, Reassembler } from './fragmentation.ts'
import {
  decodeFrame,
  encodeFrame,
  type Frame,
  FrameKind,
  type HopAckStatusCode,
  MAX_SUMMARY_IDS,
  SUMMARY_ID_LENGTH,
} from './frames.ts'
import {
  datagramCharge,
  type Generations,
  type Held,
  HeldSet,
  LOCAL_ORIGIN,
  makeHeld,
  persistHeld,
  restoreHeld,
  retries,
  unpersistHeld,
} from './held.ts'
import { ACK_SECRET_LENGTH, decodeMeshPayload, encodeMeshPayload, proofId } from './mesh-payload.ts'
import { type Neighbour, NeighbourTable } from './neighbour-table.ts'
import { Pump } from './pump.ts'
import { RouteAgent } from './route-agent.ts'
import type { NeighbourId, Router, RouterHost, RouterLoad, SendOptions } from './router.ts'
import { tagKey } from './routing-table.ts'

/**
 * A Hello that changes what the pump reads (its encounters, say) makes it look at every envelope
 * held again; one link's Hellos do so once in this long at most. A neighbour says Hello when the
 * link comes up (and on a resync): more often is only work made for us. What a later one said is
 * kept at once, and counts for the pump (everything looked at again) when this long has passed.
 */
export const HELLO_CHANGE_INTERVAL_MS = 1_000

/** How long a link's Hello proof, checked once, is taken as checked when the same one comes again. */
export const HELLO_PROOF_MEMORY_MS = 10_000

/** A timer whose writes failed is run again after this long, doubling up to the max. */
const TIMER_RETRY_MS = 1_000
const TIMER_RETRY_MAX_MS = 60_000

/** Counters for tests, logs and the simulator. */
export interface MeshStats {
  framesIn: number
  framesOut: number
  malformed: number
  delivered: number
  duplicatesSuppressed: number
  custodyRefused: number
  /** Messages for us refused because they could not be stored (a full disk); their senders retry. */
  deliveriesRefused: number
  /** Messages for us the application could not open or verify: never acknowledged, not kept. */
  deliveriesUnopened: number
  routeRequestsSent: number
  routeRequestsForwarded: number
  proofsLearned: number
  /** Our own datagrams dropped at send: those waiting to go out were over their quota. */
  datagramsDropped: number
  /** Custody copies given up to make room for a neighbour holding fewer here (`custodyCount.total`). */
  custodyEvicted: number
}

/** Whether a held envelope carries an opaque message (its proof and source sealed in the body). */
function isOpaque(h: Held): boolean {
  try {
    return decodeMeshPayload(h.envelope.payload).kind === 3
  } catch {
    return false
  }
}

/** What {@link MeshCore} is made of. */
export interface MeshCoreInit {
  /** This node's 16-byte destination tag. */
  readonly self: Uint8Array
  readonly host: RouterHost
  readonly store: Store
  readonly config?: Partial<MeshConfig>
  /** Sent in our Hello: that our links speak for our tag's account (src/node/hello-proof.ts). */
  readonly helloProof?: Uint8Array
}

/** Talken's mesh router. See the file comment. */
export class MeshCore implements Router {
  readonly self: Uint8Array
  readonly #host: RouterHost
  readonly #store: Store
  readonly #cfg: MeshConfig
  readonly #routing: RouteAgent
  readonly #neighbours = new NeighbourTable()
  readonly #held = new HeldSet()
  /** Message ID → the neighbour it came from (for sending proofs back), exact and bounded. */
  readonly #seen: BoundedMap<string, Seen>
  /** Local delivery and delivery proofs. */
  readonly #deliveries: Deliveries
  /** Envelopes neighbours hand us, and their answers to those we hand them. */
  readonly #custody: Custody
  /** Links we have had, each counted as it comes up: a cheap centrality for spraying, sent in our Hello. */
  #encounters = 0
  readonly #reassembler: Reassembler
  /** Ack tags of our own opaque messages held (ack-tags.ts). */
  readonly #ackTags: AckTags
  #wakeAt = Number.POSITIVE_INFINITY
  /** What parked envelopes depend on (held.ts `park`): one parked under older ones is looked at again. */
  readonly #generations: Generations = { neighbourhood: 0, routes: 0 }
  /** Whether the routing table last had a route beyond the advertising radius. */
  #far = false
  /** When Hellos that changed something, held back (see {@link HELLO_CHANGE_INTERVAL_MS}), count. */
  #helloChangesAt = Number.POSITIVE_INFINITY
  /** Timers in a row whose writes failed. */
  #timerFailures = 0
  /** Hands held envelopes to neighbours (pump.ts). */
  readonly #pump: Pump
  /** Proofs to send at the end of the step, by neighbour (see {@link #sendProofs}). */
  readonly #proofsOut = new Map<NeighbourId, Uint8Array[]>()
  /** Sent in our Hello (see {@link MeshCoreInit.helloProof}). */
  readonly #helloProof: Uint8Array | undefined
  readonly stats: MeshStats = {
    framesIn: 0,
    framesOut: 0,
    malformed: 0,
    delivered: 0,
    duplicatesSuppressed: 0,
    custodyRefused: 0,
    deliveriesRefused: 0,
    deliveriesUnopened: 0,
    routeRequestsSent: 0,
    routeRequestsForwarded: 0,
    proofsLearned: 0,
    datagramsDropped: 0,
    custodyEvicted: 0,
  }

  constructor(init: MeshCoreInit) {
    this.self = new Uint8Array(init.self)
    this.#host = init.host
    this.#store = init.store
    this.#cfg = { ...DEFAULT_MESH_CONFIG, ...init.config }
    this.#helloProof = init.helloProof === undefined ? undefined : new Uint8Array(init.helloProof)
    this.#seen = new BoundedMap<string, Seen>(this.#cfg.seenCapacity)
    this.#pump = new Pump({
      cfg: this.#cfg,
      held: this.#held,
      neighbours: this.#neighbours,
      generations: this.#generations,
      io: {
        now: () => this.#host.now(),
        encounters: () => this.#encounters,
        nextHopByKey: (destKey) => this.#routing.nextHopByKey(destKey),
        ask: (dest, destKey) => this.#routing.ask(dest, destKey),
        retryAt: (destKey) => this.#routing.retryAt(destKey),
        transmit: (n, h, copies, now) => this.#transmitEnvelope(n, h, copies, now),
      },
    })
    this.#routing = new RouteAgent({
      self: this.self,
      cfg: this.#cfg,
      store: this.#store,
      stats: this.stats,
      io: {
        now: () => this.#host.now(),
        neighbours: () => this.#neighbours.ids(),
        hasNeighbour: (id) => this.#neighbours.has(id),
        send: (id, frame) => this.#sendFrame(id, frame),
        wants: (destKey) => this.#held.goesTo(destKey),
        routeChanged: (destKey) => {
          // A route beyond the advertising radius, found or lost, changes which destinations a
          // request can help with: every parked envelope looks again.
          const far = this.#routing.hasFar()
          if (far !== this.#far) {
            this.#far = far
            this.#generations.routes++
          }
          if (!this.#held.goesTo(destKey)) return
          this.#pump.due = true
          this.#generations.routes++
        },
      },
    })
    this.#reassembler = new Reassembler({ now: () => this.#host.now(), timeoutMs: 30_000 })
    this.#ackTags = new AckTags(this.#store, (n) => this.#randomBytes(n))
    this.#deliveries = new Deliveries({
      self: this.self,
      host: this.#host,
      store: this.#store,
      cfg: this.#cfg,
      stats: this.stats,
      seen: this.#seen,
      neighbours: this.#neighbours,
      ackTags: this.#ackTags,
      io: {
        held: (key) => this.#held.get(key),
        hold: (h) => this.#hold(h),
        forget: (h) => this.#forget(h),
        remove: (h) => this.#remove(h),
        setState: (h, state) => this.#setState(h, state),
        sendProofs: (neighbour, secrets) => this.#sendProofs(neighbour, secrets),
        randomBytes: (n) => this.#randomBytes(n),
        nextHopByKey: (destKey) => this.#routing.nextHopByKey(destKey),
      },
    })
    this.#custody = new Custody({
      self: this.self,
      host: this.#host,
      store: this.#store,
      cfg: this.#cfg,
      stats: this.stats,
      held: this.#held,
      seen: this.#seen,
      deliveries: this.#deliveries,
      neighbours: this.#neighbours,
      io: {
        encounters: () => this.#encounters,
        nextHopByKey: (destKey) => this.#routing.nextHopByKey(destKey),
        hopAck: (neighbour, id, status) => this.#hopAck(neighbour, id, status),
        sendProofs: (neighbour, secrets) => this.#sendProofs(neighbour, secrets),
        hold: (h) => this.#hold(h),
        forget: (h) => this.#forget(h),
        remove: (h) => this.#remove(h),
        setState: (h, state) => this.#setState(h, state),
        pumpDue: () => {
          this.#pump.due = true
        },
      },
    })
    const restored = restoreHeld(this.#store, this.#host.now())
    for (const u of restored.unreadable) {
      this.#host.log(
        'error',
        u.own
          ? 'gave up a message whose stored envelope could not be read'
          : 'dropped a copy in custody that could not be read',
        {
          id: u.key,
          error: u.error instanceof Error ? u.error.message : String(u.error),
        },
      )
    }
    for (const h of restored.held) {
      if (h.own && !h.datagram && isOpaque(h)) this.#tagOwn(h)
      this.#hold(h)
      if (!h.own) this.#seen.set(h.key, { from: h.origin, at: h.receivedAt })
    }
    this.#schedule()
  }

  // ------------------------------------------------------------------------------------------
  // Router interface

  linkUp(neighbour: NeighbourId, mtu: number): void {
    if (!(mtu >= MIN_FRAGMENT_MTU)) {
      this.#host.log('warn', 'ignoring a link whose MTU is too small to carry fragments', { neighbour, mtu })
      return
    }
    this.#neighbours.add(neighbour, mtu)
    this.#generations.neighbourhood++
    // The Hello says how many links we have had, this one included (the neighbour's own count
    // includes it too): whom to spray copies to is settled without another round trip.
    this.#encounters++
    this.#greet(neighbour)
    this.#schedule()
  }

  /**
   * Says again to every neighbour what the start of a link says (a Summary, a Hello, the whole
   * route table), keeping all we know of them. For a host whose step was undone after the core
   * ran it (its writes rolled back, its frames never sent): the core's memory may hold that it
   * said things no neighbour got. What the neighbours said to us stays true, so nothing of theirs
   * is forgotten (taking the links down and up would forget their Hellos, and with them every
   * route through them, until they happened to say Hello again).
   */
  resync(): void {
    for (const id of this.#neighbours.ids()) this.#greet(id)
    this.#pump.due = true
    this.#pump.runIfDue()
    this.#schedule()
  }

  /** Our Summary, Hello and route table to `neighbour`, as at the start of a link. */
  #greet(neighbour: NeighbourId): void {
    // The Summary goes first: a neighbour that holds something we already have learns it before
    // our Hello makes it hand that over.
    this.#sendSummary(neighbour)
    this.#sendFrame(neighbour, {
      kind: FrameKind.hello,
      node: this.self,
      seqno: this.#routing.seqno,
      encounters: this.#encounters,
      ...(this.#helloProof === undefined ? {} : { proof: this.#helloProof }),
    })
    this.#routing.linkUp(neighbour)
  }

  linkDown(neighbour: NeighbourId): void {
    if (this.#neighbours.remove(neighbour) === undefined) return
    this.#generations.neighbourhood++
    this.#reassembler.forget(neighbour)
    for (const h of this.#held.values()) h.inflight.delete(neighbour)
    this.#routing.linkDown(neighbour)
    this.#pump.run()
    this.#schedule()
  }

  receive(neighbour: NeighbourId, bytes: Uint8Array): void {
    this.#take(neighbour, bytes)
    this.#pump.runIfDue()
    this.#schedule()
  }

  /**
   * Frames that arrived together from `neighbour`, in order: as {@link receive} for each, but the
   * pump (which looks at every held envelope) and the wake-up are worked out once, at the end.
   */
  receiveAll(neighbour: NeighbourId, frames: readonly Uint8Array[]): void {
    for (const bytes of frames) this.#take(neighbour, bytes)
    this.#pump.runIfDue()
    this.#schedule()
  }

  /** Takes one frame in; the caller pumps and schedules. */
  #take(neighbour: NeighbourId, bytes: Uint8Array): void {
    const n = this.#neighbours.get(neighbour)
    if (n === undefined) return
    this.stats.framesIn++
    try {
      let whole: Uint8Array | undefined = bytes
      if (isFragment(bytes)) whole = this.#reassembler.accept(neighbour, bytes)
      if (whole !== undefined) this.#handle(n, decodeFrame(whole))
    } catch (err) {
      // A store that failed is not the frame's fault: the step is undone, and the frame comes again.
      if (!isTalkenError(err) || isStorageFailure(err)) throw err
      this.stats.malformed++
      this.#host.log('debug', 'dropped a bad frame', { neighbour, code: err.code })
    }
  }

  timer(): void {
    const now = this.#host.now()
    this.#wakeAt = Number.POSITIVE_INFINITY
    let failed = true
    try {
      this.#due(now)
      failed = false
      this.#timerFailures = 0
    } finally {
      // A store that failed (a full disk) undoes the step; what was due is due again, a little
      // later each time, so that the core neither stops waking nor spins.
      if (failed) {
        const delay = Math.min(TIMER_RETRY_MAX_MS, TIMER_RETRY_MS * 2 ** this.#timerFailures++)
        this.#schedule(now + delay)
      }
    }
  }

  /** What {@link timer} does: expiries, overdue hop acknowledgements, retries, route work. */
  #due(now: number): void {
    this.#routing.tick()
    if (this.#helloChangesAt <= now) {
      this.#helloChangesAt = Number.POSITIVE_INFINITY
      this.#pump.due = true
      this.#generations.neighbourhood++
    }
    for (const h of [...this.#held.values()]) {
      if (h.expiresAtMs <= now) {
        this.#expire(h)
        continue
      }
      if (h.refusedUntil.size > 0) {
        this.#pump.due = true
        for (const [nid, until] of h.refusedUntil) if (until <= now) h.refusedUntil.delete(nid)
      }
      for (const [nid, f] of h.inflight) {
        if (now - f.sentAt >= this.#cfg.hopAckTimeoutMs) {
          this.#pump.due = true
          h.inflight.delete(nid)
          this.#neighbours.settle(nid)
        }
      }
      // Not delivered by the retry time: try again, whoever holds copies (one we handed may have
      // been lost further on), also when we kept some of our own.
      if (retries(h) && h.inflight.size === 0 && now >= h.nextRetryAt) {
        h.copies = Math.max(1, h.copies)
        h.attempts++
        h.holders.clear()
        h.nextRetryAt = now + this.#backoff(h.attempts)
        persistHeld(this.#store, h)
        this.#pump.due = true
      }
    }
    this.#reassembler.expire()
    // Route requests back off in time, so envelopes still waiting for one are looked at again.
    if (this.#pump.asking) this.#pump.due = true
    this.#pump.runIfDue()
    this.#schedule()
  }

  send(destination: Uint8Array, payload: Uint8Array, options: SendOptions = {}): string {
    const now = this.#host.now()
    const { datagram = false, ackSecret: sealedSecret } = options
    // Its record would be the outgoing message under the same ID: it could never be delivered.
    if (bytesEqual(destination, this.self)) {
      throw new TalkenError('invalid_argument', 'a message to this node itself')
    }
    if (sealedSecret !== undefined && (datagram || sealedSecret.length !== ACK_SECRET_LENGTH)) {
      throw new TalkenError(
        'invalid_argument',
        `an ack secret is ${ACK_SECRET_LENGTH} bytes, and datagrams have none`,
      )
    }
    // The ID commits to the ack secret, so only the recipient can prove delivery (mesh-payload.ts).
    // A datagram is never acknowledged: its ID commits to a secret nobody learns.
    const ackSecret = sealedSecret ?? this.#randomBytes(ACK_SECRET_LENGTH)
    const id = proofId(ackSecret)
    const ttl = options.ttlMs ?? this.#cfg.ttlMs
    const envelope: Envelope = {
      id,
      destination,
      hopLimit: this.#cfg.hopLimit,
      expires: Math.ceil((now + ttl) / 1000),
      copies: datagram ? 1 : this.#cfg.copies,
      flags: datagram ? 0 : EnvelopeFlags.ackRequested,
      // Opaque unless the caller has no end-to-end layer to carry the secret and the source.
      payload: encodeMeshPayload(
        sealedSecret !== undefined || datagram
          ? { kind: 3, body: payload }
          : { kind: 1, source: this.self, ackSecret, body: payload },
      ),
    }
    const key = messageIdHex(id)
    const h = makeHeld(envelope, {
      own: true,
      origin: LOCAL_ORIGIN,
      receivedAt: now,
      nextRetryAt: options.datagram ? Number.POSITIVE_INFINITY : now + this.#cfg.retryBaseMs,
    })
    // A datagram is recorded nowhere (persistHeld and #setState skip it too).
    if (!options.datagram) {
      this.#store.transaction(() => {
        this.#store.addMessage({
          id: key,
          conversation: options.filing?.conversation ?? tagKey(destination),
          direction: 'out',
          body: options.filing?.body ?? payload,
          createdAt: options.createdAt ?? now,
          state: 'queued',
          updatedAt: now,
        })
        persistHeld(this.#store, h)
      })
    }
    h.threshold = this.#encounters
    if (
      datagram &&
      this.#held.ownDatagramBytes + datagramCharge(envelope.payload.length) > this.#cfg.datagramQuota.ownBytes
    ) {
      // Best-effort, and what waits already is more than the links are taking: dropped, as a
      // lossy link would. (A member's sync can ask for the whole history of a room.)
      this.stats.datagramsDropped++
      this.#host.log('warn', 'dropped a datagram: too many of ours waiting to go out', {
        bytes: payload.length,
      })
      return key
    }
    if (sealedSecret !== undefined) {
      h.ackSecret = new Uint8Array(sealedSecret)
      this.#tagOwn(h)
    }
    this.#hold(h)
    // Sent in the caller's transaction, which may still be undone (a full disk at commit): then
    // the message never existed, and must not go out later from memory alone.
    this.#store.onRollback(() => this.#forget(h))
    this.#setState(h, 'queued', undefined, false) // recorded as queued just above
    this.#pump.run()
    this.#schedule()
    return key
  }

  load(): RouterLoad {
    return { storedMessages: this.#held.size, storedBytes: this.#held.bytes }
  }

  /**
   * The ack tag of the message an ack secret proves: seal it in the body beside the secret (see
   * ack-tags.ts), and send with {@link SendOptions.ackSecret}.
   */
  ackTagFor(ackSecret: Uint8Array): Uint8Array {
    return this.#ackTags.tagOf(proofId(ackSecret))
  }

  // ------------------------------------------------------------------------------------------
  // Introspection

  /** Selected routes: destination tag (hex), next hop, metric. */
  routes(): Array<{ dest: string; nextHop: NeighbourId; metric: number }> {
    return this.#routing
      .adverts()
      .map((r) => ({ dest: tagKey(r.dest), nextHop: r.nextHop, metric: r.metric }))
  }

  /** The next hop towards `dest`, if a route is selected. */
  nextHop(dest: Uint8Array): NeighbourId | undefined {
    return this.#routing.lookup(dest)?.nextHop
  }

  /** Hops to `dest` by the selected route; undefined when none is selected. */
  metricTo(dest: Uint8Array): number | undefined {
    return this.#routing.lookup(dest)?.metric
  }

  /** Links that are up: link ID, the destination tag (hex) its Hello named, and whether it proved it. */
  neighbours(): Array<{ id: NeighbourId; tag: string | undefined; verified: boolean }> {
    return [...this.#neighbours.values()].map((n) => ({ id: n.id, tag: n.tagKey, verified: n.verified }))
  }

  /** IDs (hex) of the envelopes held. */
  heldIds(): string[] {
    return [...this.#held.keys()]
  }

  /**
   * Gives up one of our own messages not yet delivered: it becomes `failed` with `reason` and
   * leaves the outbox (copies that relays hold expire on their own). Returns false when `id` is
   * not an own message still held.
   */
  abandon(id: string, reason: string): boolean {
    return this.#finishOwn(id, 'failed', reason)
  }

  /**
   * One of our messages known to be delivered by other means (a read receipt, which only its
   * recipient can send, came before the delivery proof): it becomes `read`, for good, and leaves
   * the outbox. Returns false when `id` is not an own message still held.
   */
  settle(id: string): boolean {
    return this.#finishOwn(id, 'read')
  }

  /** Ends one of our own held messages in `state`, out of the outbox; false when there is none. */
  #finishOwn(id: string, state: 'failed' | 'read', reason?: string): boolean {
    const h = this.#held.get(id)
    if (h === undefined || !h.own || h.datagram) return false
    this.#store.transaction(() => {
      this.#setState(h, state, reason)
      this.#remove(h)
    })
    this.#schedule()
    return true
  }

  // ------------------------------------------------------------------------------------------
  // Frames

  #handle(n: Neighbour, frame: Frame): void {
    switch (frame.kind) {
      case FrameKind.hello:
        this.#onHello(n, frame.node, frame.seqno, frame.encounters, frame.proof)
        return
      case FrameKind.data:
        this.#custody.onData(n, frame.envelope)
        return
      case FrameKind.hopAck:
        this.#custody.onHopAck(n, messageIdHex(frame.id), frame.status)
        return
      case FrameKind.proofs:
        for (const s of frame.secrets) this.#deliveries.learn(s, n.id)
        return
      case FrameKind.routes:
      case FrameKind.routeRequest:
      case FrameKind.routeReply:
        this.#routing.handle(n.id, frame)
        return
      case FrameKind.summary: {
        const has = new Set(frame.ids.map((id) => Buffer.from(id).toString('hex')))
        this.#takeSummary(n, has)
        const secrets = this.#deliveries.proofs.proofsFor(n.has)
        if (secrets.length > 0) this.#sendProofs(n.id, secrets)
        return
      }
    }
  }

  /**
   * A neighbour's Summary: what it has. Of what the pump reads, it changes only whether the
   * neighbour has the envelopes whose ID prefixes it added or dropped, so only those are looked
   * at again (parked ones unparked); a Summary that repeats the last one changes nothing. Every
   * other held envelope's verdict stands: a Summary costs a pass over the envelopes held, not a
   * pump of every one of them for every neighbour.
   */
  #takeSummary(n: Neighbour, has: Set<string>): void {
    const before = n.has
    n.has = has
    const changed = new Set<string>()
    for (const p of has) if (!before.has(p)) changed.add(p)
    for (const p of before) if (!has.has(p)) changed.add(p)
    if (changed.size === 0) return
    for (const h of this.#held.values()) {
      if (!changed.has(h.prefix)) continue
      h.parked = undefined
      this.#pump.due = true
    }
  }

  /**
   * Whether `proof` proves that link `n` speaks for `tag` (the host checks it against the
   * contact's devices, which costs a look through the contacts). A link's Hello that repeats the
   * tag and proof it last sent within {@link HELLO_PROOF_MEMORY_MS} is answered as before, without
   * asking again: a neighbour saying Hello over and over costs little. (Not for longer: the
   * contacts may have changed since, and with them the answer.)
   */
  #helloProved(n: Neighbour, key: string, tag: Uint8Array, proof: Uint8Array): boolean {
    const now = this.#host.now()
    const last = n.lastProof
    if (
      last !== undefined &&
      now - last.at < HELLO_PROOF_MEMORY_MS &&
      last.tagKey === key &&
      bytesEqual(last.proof, proof)
    ) {
      return last.verified
    }
    const verified = this.#host.verifyHello?.(n.id, tag, proof) === true
    n.lastProof = { tagKey: key, proof: Uint8Array.from(proof), verified, at: now }
    return verified
  }

  #onHello(n: Neighbour, tag: Uint8Array, seqno: number, encounters: number, proof?: Uint8Array): void {
    if (bytesEqual(tag, this.self)) return
    const key = tagKey(tag)
    const verified = proof !== undefined && this.#helloProved(n, key, tag, proof)
    const before = this.#neighbours.byTag(key)
    // What the pump reads of this Hello: the link's tag, whether it proved it, its encounters, and
    // which link the tag leads to. A Hello that repeats the last one changes none of them.
    const same = n.tagKey === key && n.verified === verified && n.encounters === encounters && before === n
    n.encounters = encounters
    if (!this.#neighbours.name(n, tag, key, verified)) {
      // Another link proved this tag: this one only claims it, and stays unnamed (no copies for the
      // destination, no route to it through here from its Hello).
      this.#host.log('info', 'a neighbour claims the tag another link proved', { neighbour: n.id })
      return
    }
    // A proved Hello takes the tag from a link that only claimed it: that link is not it.
    if (verified && before !== undefined && before !== n && !before.verified) {
      this.#neighbours.unname(before)
      this.#routing.forgetHello(before.id, tag)
    }
    if (!same) {
      const now = this.#host.now()
      if (now - n.helloChangedAt >= HELLO_CHANGE_INTERVAL_MS) {
        n.helloChangedAt = now
        this.#pump.due = true
        this.#generations.neighbourhood++
      } else {
        this.#helloChangesAt = Math.min(this.#helloChangesAt, n.helloChangedAt + HELLO_CHANGE_INTERVAL_MS)
      }
    }
    this.#routing.hello(n.id, tag, seqno, verified)
  }

  // ------------------------------------------------------------------------------------------
  // Moving envelopes

  #transmitEnvelope(n: Neighbour, h: Held, copies: number, now: number): void {
    const bytes = encodeEnvelope({ ...h.envelope, hopLimit: h.envelope.hopLimit - 1, copies })
    h.inflight.set(n.id, { copies, sentAt: now })
    this.#held.markTimed(h)
    n.inflight++
    // An acknowledgement envelope counts as data too: it is relayed hop by hop as a message is.
    this.#sendFrame(n.id, { kind: FrameKind.data, envelope: bytes }, 'data')
    if (h.own && h.state === 'queued') this.#setState(h, 'sent')
  }

  // ------------------------------------------------------------------------------------------
  // Held envelopes and their persistence

  /** Notes the ack tag that will acknowledge our own opaque message `h`. */
  #tagOwn(h: Held): void {
    const tag = Buffer.from(this.#ackTags.tagOf(h.envelope.id)).toString('hex')
    h.ackTag = tag
    this.#ackTags.remember(tag, h.key)
  }

  #hold(h: Held): void {
    this.#held.add(h)
    this.#pump.due = true
  }

  #remove(h: Held): void {
    unpersistHeld(this.#store, h)
    this.#forget(h)
    // Removed in writes that are undone: the store holds it again, and so does memory (its
    // flights are over; the pump or a retry sends it again).
    this.#store.onRollback(() => {
      if (this.#held.get(h.key) !== undefined) return
      if (h.ackTag !== undefined) this.#ackTags.remember(h.ackTag, h.key)
      this.#hold(h)
    })
  }

  /** Drops a held envelope from memory only. */
  #forget(h: Held): void {
    if (this.#held.get(h.key) !== h) return
    if (h.ackTag !== undefined) this.#ackTags.forget(h.ackTag)
    this.#held.delete(h)
    this.#pump.due = true
    for (const nid of h.inflight.keys()) this.#neighbours.settle(nid)
    h.inflight.clear()
  }

  #expire(h: Held): void {
    if (h.own && h.state !== 'delivered') this.#setState(h, 'expired', 'its lifetime ran out before delivery')
    this.#remove(h)
  }

  #setState(h: Held, state: DeliveryState, reason?: string, record = true): void {
    // Read is final: a late proof or an expiry does not take it back.
    if (h.state === state || h.state === 'read') return
    const announce = h.own && !h.datagram
    // The store first: a write that fails leaves memory as it was.
    if (announce && record) this.#store.setMessageState(h.key, state, this.#host.now(), reason)
    const before = h.state
    h.state = state
    this.#store.onRollback(() => {
      h.state = before
    })
    if (!announce) return
    this.#host.stateChanged(reason === undefined ? { id: h.key, state } : { id: h.key, state, reason })
  }

  // ------------------------------------------------------------------------------------------
  // Plumbing

  #sendFrame(neighbour: NeighbourId, frame: Frame, kind: 'data' | 'control' = 'control'): void {
    const n = this.#neighbours.get(neighbour)
    if (n === undefined) return
    const bytes = encodeFrame(frame)
    const parts = bytes.length <= n.mtu ? [bytes] : fragmentFrame(bytes, n.mtu, this.#randomBytes(8))
    for (const p of parts) {
      this.stats.framesOut++
      this.#host.transmit(neighbour, p, kind)
    }
  }

  #hopAck(neighbour: NeighbourId, id: Uint8Array, status: HopAckStatusCode): void {
    this.#sendFrame(neighbour, { kind: FrameKind.hopAck, id, status })
  }

  /**
   * Proofs for `neighbour`: sent at the end of the step, with every other proof for it, 64 to a
   * frame (a destination handed many messages in one read answers them in one frame or a few).
   */
  #sendProofs(neighbour: NeighbourId, secrets: readonly Uint8Array[]): void {
    let pending = this.#proofsOut.get(neighbour)
    if (pending === undefined) {
      pending = []
      this.#proofsOut.set(neighbour, pending)
    }
    const at = pending.length
    pending.push(...secrets)
    // Undone with its part of the step: a proof must not promise what the disk did not keep.
    const list = pending
    this.#store.onRollback(() => list.splice(at, secrets.length))
  }

  /** Sends the proofs of this step (see {@link #sendProofs}). */
  #flushProofs(): void {
    if (this.#proofsOut.size === 0) return
    const out = [...this.#proofsOut]
    this.#proofsOut.clear()
    for (const [neighbour, secrets] of out) {
      for (let i = 0; i < secrets.length; i += 64) {
        this.#sendFrame(neighbour, { kind: FrameKind.proofs, secrets: secrets.slice(i, i + 64) })
      }
    }
  }

  /**
   * Tells a neighbour what not to hand us: the envelopes we hold, then the messages most recently
   * delivered here (newest first). A holder of a copy of one of those learns that we have it
   * before it would send it, and our answer to its Summary brings it the proof.
   */
  #sendSummary(neighbour: NeighbourId): void {
    const ids: Uint8Array[] = []
    for (const h of this.#held.values()) {
      if (ids.length >= MAX_SUMMARY_IDS) break
      ids.push(h.envelope.id.subarray(0, SUMMARY_ID_LENGTH))
    }
    for (const prefix of this.#deliveries.proofs.recentlyReceived()) {
      if (ids.length >= MAX_SUMMARY_IDS) break
      ids.push(prefix)
    }
    if (ids.length > 0) this.#sendFrame(neighbour, { kind: FrameKind.summary, ids })
  }

  #backoff(attempts: number): number {
    return Math.min(this.#cfg.retryMaxMs, this.#cfg.retryBaseMs * 2 ** attempts)
  }

  #randomBytes(n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i += 4) {
      const r = Math.floor(this.#host.random() * 0x100000000)
      for (let j = 0; j < 4 && i + j < n; j++) out[i + j] = (r >>> (8 * j)) & 0xff
    }
    return out
  }

  /** Asks the host for a wake-up at the earliest time something is due (not before `earliest`). */
  #schedule(earliest?: number): void {
    // Every step ends here: what it had to say in proofs goes out now.
    this.#flushProofs()
    let at = this.#routing.nextWake(this.#neighbours.size > 0)
    // An envelope waits for a route request that backs off: wake when the next one may go out.
    at = Math.min(at, this.#pump.askAt)
    at = Math.min(at, this.#helloChangesAt)
    at = Math.min(at, this.#held.nextDue(this.#cfg.hopAckTimeoutMs))
    const fragments = this.#reassembler.nextExpiry()
    if (fragments !== undefined) at = Math.min(at, fragments)
    if (at === Number.POSITIVE_INFINITY) return
    const now = this.#host.now()
    at = Math.max(at, earliest ?? now)
    if (at < this.#wakeAt || this.#wakeAt <= now) {
      this.#wakeAt = at
      this.#host.wakeAt(at)
    }
  }
}

/** Creates a mesh router (a {@link RouterFactory} for the simulator and the node). */
export function createMeshRouter(init: MeshCoreInit): MeshCore {
  return new MeshCore(init)
}
