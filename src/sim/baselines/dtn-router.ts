/**
 * The machinery the three baseline routers share, modelled on The ONE simulator's ActiveRouter
 * (akeranen/the-one, `src/routing/ActiveRouter.java`): a drop-oldest buffer; messages expire by
 * lifetime (checked at most once a simulated minute, as The ONE does, and always before use);
 * on each link one message transfer at a time; messages destined to the neighbour go first, then
 * the others in random order; nothing is sent that the neighbour is known to hold.
 *
 * Where The ONE asks the other router directly, these routers ask and learn by frames:
 * - On link up each side sends a summary vector (its tag and the 8-byte prefixes of the IDs it
 *   holds or has had delivered); a node that stores a new message tells its neighbours with a
 *   HAVE. A neighbour is not offered what it is known to hold.
 * - A transfer starts with an OFFER of the message's ID, The ONE's `startTransfer` →
 *   `checkReceiving`: the receiver answers REFUSE if it holds the message or had it delivered
 *   (The ONE's DENIED_OLD), or if it is receiving it from another neighbour at that moment
 *   (TRY_LATER_BUSY: see {@link Receptions}); otherwise ACCEPT, and the message is then reserved
 *   for this sender. Only after ACCEPT do the DATA frames go out, so a message is never
 *   transferred to a node that has it, had it, or is already getting it (a node that two
 *   neighbours reach at the same instant receives one copy, as in The ONE). A refused sender
 *   counts the neighbour as holding the message; if a busy reception then fails, the receiver
 *   invites the senders it refused to offer again (WANT), as The ONE's would try again later.
 * - The receiver acknowledges a message (ACK) once it has it whole; the transfer is then complete.
 *   A transfer whose link goes down, or whose answer or ACK does not come within `retransmitMs`,
 *   is abandoned and may be tried again later.
 *
 * Where this differs from The ONE: The ONE's `checkReceiving` refuses any transfer while the
 * receiver takes part in another, on any of its connections (`isTransferring`), and a connection
 * carries one transfer in one direction at a time. Here, as the simulator's link model has it
 * (each link has its own bandwidth in each direction, no shared radio), a node may send and
 * receive on all its links at once, one transfer per link and direction; only a second copy of
 * the same message is refused. The handshake costs two control frames per transfer and a round
 * trip before the data: 2 ms a hop on the Helsinki trace (no link latency, a whole-millisecond
 * clock), two link latencies a hop elsewhere (10 ms on the default 5 ms links), where The ONE's
 * question costs nothing.
 *
 * A {@link DtnPolicy} decides what may be relayed and how copies are split.
 */
import { TalkenError } from '../../errors.ts'
import type { NeighbourId, Router, RouterHost, RouterLoad, SendOptions } from '../../mesh/router.ts'
import { toHex } from '../traffic.ts'
import { type BaselineStore, type HeldMessage, payloadSize, RECORD_PAYLOAD } from './baseline-store.ts'
import {
  DATA_HEADER,
  type DataFrame,
  decodeFrame,
  encodeData,
  encodeNotice,
  encodeSummary,
  FrameType,
  idKey,
  KEY_BYTES,
  PREFIX_BYTES,
  prefixKey,
  prefixOf,
  SUMMARY_HEADER,
} from './frames.ts'
import { MessageBuffer } from './message-buffer.ts'
import { Reassembly } from './reassembly.ts'
import { type Reception, Receptions } from './receptions.ts'
import { Slab } from './slab.ts'

/** What distinguishes one baseline from another. */
export interface DtnPolicy {
  /** Exchange summary vectors and HAVE notices (false: a hello with the tag only). */
  readonly summaries: boolean
  /** Hand messages to neighbours that are not their destination at all. */
  readonly relays: boolean
  /** Copies a new message starts with. */
  readonly initialCopies: number
  /** May `m` be handed to a neighbour that is not its destination now? */
  relayable(m: HeldMessage): boolean
  /** Copies the receiver gets when a message with `copies` is relayed. */
  copiesGiven(copies: number): number
  /** Copies the sender keeps after a completed transfer (The ONE applies this to deliveries too). */
  copiesKept(copies: number): number
  /** Forget a message once its destination acknowledged it. */
  readonly dropWhenDelivered: boolean
  /**
   * Copies are a budget split at each handover: relay a message on one link at a time, so that
   * the same copies are never handed to two neighbours at once (The ONE runs one transfer per
   * node at a time, which has the same effect).
   */
  readonly splitsCopies: boolean
}

/** Tunables shared by the baselines. */
export interface DtnOptions {
  /** Lifetime of messages sent without `ttlMs` (default: none). */
  readonly defaultTtlMs?: number
  /**
   * How long to wait for an answer to an OFFER, for an ACK, or for a neighbour's summary before
   * moving on. Default 2 s. A receiver holds a message it accepted for its sender twice as long.
   */
  readonly retransmitMs?: number
  /** Expired messages are purged at most this often. Default 60 s, The ONE's TTL check interval. */
  readonly ttlCheckMs?: number
}

/** Delivered IDs are remembered this long after their lifetime, to absorb clock drift along paths. */
const DELIVERED_GRACE_MS = 10 * 60 * 1000

interface Peer {
  readonly name: NeighbourId
  readonly mtu: number
  /** The neighbour's destination tag (hex), once its summary arrived. */
  tag: string | undefined
  /** Its summary is complete (or we gave up waiting): transfers may start. */
  ready: boolean
  readonly readyDeadline: number
  /**
   * Prefix keys ({@link prefixOf}) of the messages it holds, has had delivered, or is receiving,
   * as far as we know. By prefix, as summaries list them: a prefix shared by two messages counts
   * as holding both.
   */
  readonly knows: Set<string>
  /** Relay candidates in the order to try them. */
  queue: string[]
  cursor: number
  /** The message offered or being sent to it (one transfer at a time per link). */
  inflight: string | undefined
  /** Its DATA went out (the offer was accepted); before that only the OFFER did. */
  inflightSent: boolean
  /** The transfer in flight relays (rather than delivers) its message. */
  inflightRelay: boolean
  /** When to give up waiting for the answer to the OFFER, or for the ACK. */
  inflightDeadline: number
}

/** A baseline router: one {@link DtnPolicy} over the shared machinery. */
export class DtnRouter implements Router {
  private readonly host: RouterHost
  private readonly self: Uint8Array
  private readonly selfKey: string
  private readonly buffer: MessageBuffer
  private readonly policy: DtnPolicy
  private readonly defaultTtlMs: number
  private readonly retransmitMs: number
  private readonly ttlCheckMs: number
  private readonly peers = new Map<NeighbourId, Peer>()
  private readonly partials = new Reassembly()
  private readonly receptions: Receptions
  /** Messages with a relay transfer in flight, when the policy splits copies. */
  private readonly relaying = new Set<string>()
  private nextTtlCheck = Number.POSITIVE_INFINITY
  private armedAt = Number.POSITIVE_INFINITY
  /** Short-lived frames and long-lived message records come from separate slabs. */
  private readonly frames = new Slab()
  private readonly records = new Slab()
  private readonly frameAlloc = (n: number) => this.frames.alloc(n)
  /** Frames dropped as malformed or unexpected. */
  dropped = 0

  constructor(
    init: { readonly self: Uint8Array; readonly host: RouterHost; readonly store: BaselineStore },
    policy: DtnPolicy,
    options: DtnOptions = {},
  ) {
    if (init.self.length !== KEY_BYTES)
      throw new TalkenError('invalid_argument', 'self must be a 16-byte tag')
    this.host = init.host
    this.self = init.self.slice()
    this.selfKey = idKey(this.self)
    this.buffer = new MessageBuffer(init.store, (m) => policy.relays && policy.relayable(m))
    this.policy = policy
    this.defaultTtlMs = options.defaultTtlMs ?? Number.POSITIVE_INFINITY
    this.retransmitMs = options.retransmitMs ?? 2000
    this.ttlCheckMs = options.ttlCheckMs ?? 60_000
    this.receptions = new Receptions(2 * this.retransmitMs)
    if (!this.buffer.empty) {
      this.nextTtlCheck = this.host.now()
      this.arm()
    }
  }

  linkUp(neighbour: NeighbourId, mtu: number): void {
    if (this.peers.has(neighbour)) this.linkDown(neighbour)
    const peer: Peer = {
      name: neighbour,
      mtu,
      tag: undefined,
      ready: false,
      readyDeadline: this.host.now() + this.retransmitMs,
      knows: new Set(),
      queue: [],
      cursor: 0,
      inflight: undefined,
      inflightSent: false,
      inflightRelay: false,
      inflightDeadline: 0,
    }
    this.peers.set(neighbour, peer)
    this.sendSummary(peer)
    this.arm()
  }

  linkDown(neighbour: NeighbourId): void {
    const peer = this.peers.get(neighbour)
    if (peer === undefined) return
    this.peers.delete(neighbour)
    this.unacknowledged(peer)
    this.settle(peer)
    this.partials.forget(neighbour)
    for (const r of this.receptions.failed(this.host.now(), neighbour)) this.invite(r)
  }

  receive(neighbour: NeighbourId, frame: Uint8Array): void {
    const peer = this.peers.get(neighbour)
    const f = peer === undefined ? undefined : decodeFrame(frame)
    if (peer === undefined || f === undefined) {
      this.dropped++
      return
    }
    switch (f.type) {
      case FrameType.summary: {
        const tag = idKey(f.tag)
        if (peer.tag !== undefined && peer.tag !== tag) {
          this.dropped++
          return
        }
        peer.tag = tag
        for (let i = 0; i < f.ids.length; i += PREFIX_BYTES) peer.knows.add(prefixKey(f.ids, i))
        if (f.last && !peer.ready) this.becomeReady(peer)
        else this.pump(peer)
        return
      }
      case FrameType.have:
        peer.knows.add(prefixKey(f.id))
        return
      case FrameType.offer:
        this.answerOffer(peer, f.id)
        return
      case FrameType.accept: {
        const key = idKey(f.id)
        if (peer.inflight === key && !peer.inflightSent) this.sendData(peer, key)
        return
      }
      case FrameType.refuse:
      case FrameType.ack: {
        const key = idKey(f.id)
        peer.knows.add(prefixOf(key))
        if (peer.inflight !== key) return
        if (peer.inflightSent) {
          if (f.type !== FrameType.ack) return // a late answer to an earlier offer
          this.transferDone(peer, key)
        } else this.refused(peer, key)
        this.settle(peer)
        this.pump(peer)
        return
      }
      case FrameType.want: {
        // A reception it preferred to ours failed: it lacks the message after all.
        const key = idKey(f.id)
        peer.knows.delete(prefixOf(key))
        if (this.buffer.get(key) === undefined) return
        if (peer.ready && this.policy.relays) peer.queue.push(key)
        this.pump(peer)
        return
      }
      case FrameType.data:
        this.receiveData(peer, f)
        return
    }
  }

  timer(): void {
    const now = this.host.now()
    this.armedAt = Number.POSITIVE_INFINITY
    if (now >= this.nextTtlCheck) this.purgeExpired(now)
    for (const r of this.receptions.failed(now)) this.invite(r)
    for (const peer of this.peers.values()) {
      if (!peer.ready && now >= peer.readyDeadline) this.becomeReady(peer)
      if (peer.inflight !== undefined && now >= peer.inflightDeadline) {
        // No answer or no ACK: give up on this attempt; the message may be offered again later.
        this.unacknowledged(peer)
        if (this.policy.relays) peer.queue.push(peer.inflight)
        this.settle(peer)
        this.pump(peer)
      }
    }
    this.arm()
  }

  send(destination: Uint8Array, payload: Uint8Array, options?: SendOptions): string {
    if (destination.length !== KEY_BYTES) {
      throw new TalkenError('invalid_argument', 'destination must be a 16-byte tag')
    }
    const id = new Uint8Array(KEY_BYTES)
    for (let i = 0; i < KEY_BYTES; i++) id[i] = Math.floor(this.host.random() * 256)
    const hex = toHex(id)
    const key = idKey(id)
    const now = this.host.now()
    const ttl = options?.ttlMs ?? this.defaultTtlMs
    const destKey = idKey(destination)
    if (destKey === this.selfKey) {
      if (!this.buffer.wasDelivered(key)) {
        this.buffer.markDelivered(key, id.slice(), now + ttl)
        this.host.deliver({ id: hex, payload, hops: 0 })
      }
      return hex
    }
    if (this.buffer.get(key) !== undefined) return hex
    this.host.stateChanged({ id: hex, state: 'queued' })
    const record = this.records.alloc(RECORD_PAYLOAD + payload.length)
    record.set(id, 0)
    record.set(destination, KEY_BYTES)
    record.set(payload, RECORD_PAYLOAD)
    this.add({
      record,
      key,
      destKey,
      expiresAt: now + ttl,
      copies: this.policy.initialCopies,
      hops: 0,
      own: true,
    })
    return hex
  }

  load(): RouterLoad {
    return { storedMessages: this.buffer.size, storedBytes: this.buffer.store.bytes }
  }

  // --- transfers -------------------------------------------------------------------------------

  private sendSummary(peer: Peer): void {
    const ids = this.policy.summaries ? this.buffer.summary() : new Uint8Array(0)
    const per =
      PREFIX_BYTES * Math.min(0xffff, Math.max(1, Math.floor((peer.mtu - SUMMARY_HEADER) / PREFIX_BYTES)))
    let i = 0
    do {
      const chunk = ids.subarray(i, i + per)
      i += per
      this.host.transmit(peer.name, encodeSummary(this.self, chunk, i >= ids.length), 'control')
    } while (i < ids.length)
  }

  private becomeReady(peer: Peer): void {
    peer.ready = true
    if (this.policy.relays) {
      const queue = this.buffer.relayableKeys()
      for (let i = queue.length - 1; i > 0; i--) {
        const j = Math.floor(this.host.random() * (i + 1))
        const t = queue[i]!
        queue[i] = queue[j]!
        queue[j] = t
      }
      peer.queue = queue
      peer.cursor = 0
    }
    this.pump(peer)
  }

  /** Starts the next transfer to `peer`, by offering its message, if `peer` is ready and idle. */
  private pump(peer: Peer): void {
    if (!peer.ready || peer.inflight !== undefined) return
    const m = this.pick(peer)
    if (m === undefined) return
    this.host.transmit(peer.name, encodeNotice(FrameType.offer, m.record, 0, this.frameAlloc), 'control')
    peer.inflight = m.key
    peer.inflightSent = false
    peer.inflightRelay = m.destKey !== peer.tag
    if (peer.inflightRelay && this.policy.splitsCopies) this.relaying.add(m.key)
    peer.inflightDeadline = this.host.now() + this.retransmitMs
    this.arm()
  }

  /** `peer` accepted the offer of `key`: sends the message's DATA frames. */
  private sendData(peer: Peer, key: string): void {
    const now = this.host.now()
    const m = this.buffer.get(key)
    if (m === undefined || m.expiresAt <= now) {
      // Dropped or expired since the offer: nothing to send (the peer's reservation runs out).
      this.settle(peer)
      this.pump(peer)
      return
    }
    const copies = peer.inflightRelay ? this.policy.copiesGiven(m.copies) : m.copies
    const chunk = peer.mtu - DATA_HEADER
    const size = payloadSize(m)
    let offset = 0
    do {
      this.host.transmit(
        peer.name,
        encodeData(m.record, m.expiresAt - now, copies, m.hops, offset, chunk, this.frameAlloc),
        'data',
      )
      offset += chunk
    } while (offset < size)
    peer.inflightSent = true
    peer.inflightDeadline = now + this.retransmitMs
    this.arm()
  }

  /**
   * The answer to `peer`'s OFFER of `id` (The ONE's `checkReceiving`): REFUSE a message held here or
   * delivered here (DENIED_OLD), or one being received from another neighbour (TRY_LATER_BUSY);
   * otherwise ACCEPT, reserving it for `peer`.
   */
  private answerOffer(peer: Peer, id: Uint8Array): void {
    const key = idKey(id)
    peer.knows.add(prefixOf(key))
    const accept = !this.buffer.knows(key) && this.receptions.offer(key, id, peer.name, this.host.now())
    this.host.transmit(
      peer.name,
      encodeNotice(accept ? FrameType.accept : FrameType.refuse, id, 0, this.frameAlloc),
      'control',
    )
    if (accept) this.arm()
  }

  /** A reception failed: the neighbours refused while it was under way may offer the message again. */
  private invite(r: Reception): void {
    for (const name of r.waiting) {
      if (this.peers.has(name)) {
        this.host.transmit(name, encodeNotice(FrameType.want, r.id, 0, this.frameAlloc), 'control')
      }
    }
  }

  /**
   * The relay in flight to `peer` got no ACK (it timed out, or the link went down). The peer may
   * hold the message all the same (only the ACK was lost): the copies it would have taken count as
   * handed, so that a lost frame can only thin a spray, never give out more copies than its budget.
   */
  private unacknowledged(peer: Peer): void {
    if (!peer.inflightSent) return // only the offer went out: no copies were handed
    const m = peer.inflight !== undefined && peer.inflightRelay ? this.buffer.get(peer.inflight) : undefined
    if (m === undefined) return
    m.copies = this.policy.copiesKept(m.copies)
    this.buffer.refresh(m)
  }

  /** Ends the transfer in flight to `peer` (done or abandoned); frees its message for other links. */
  private settle(peer: Peer): void {
    const key = peer.inflight
    if (key === undefined) return
    peer.inflight = undefined
    peer.inflightSent = false
    if (peer.inflightRelay && this.relaying.delete(key)) {
      for (const other of this.peers.values()) if (other !== peer) this.pump(other)
    }
    peer.inflightRelay = false
  }

  /** The next message for `peer`: one destined to it first, then relay candidates in queue order. */
  private pick(peer: Peer): HeldMessage | undefined {
    const now = this.host.now()
    const buffer = this.buffer
    if (peer.tag !== undefined) {
      const forPeer = buffer.forDestination(peer.tag)
      if (forPeer !== undefined) {
        for (const key of forPeer) {
          const m = buffer.get(key)
          if (m !== undefined && !peer.knows.has(prefixOf(key)) && m.expiresAt > now) return m
        }
      }
    }
    if (!this.policy.relays) return undefined
    const queue = peer.queue
    const busy: string[] = [] // being relayed on another link: try again later
    let found: HeldMessage | undefined
    while (peer.cursor < queue.length) {
      const key = queue[peer.cursor++]!
      const m = buffer.get(key)
      if (m === undefined || peer.knows.has(prefixOf(key)) || m.destKey === peer.tag) continue
      if (m.expiresAt <= now || !this.policy.relayable(m)) continue
      if (this.relaying.has(key)) {
        busy.push(key)
        continue
      }
      found = m
      break
    }
    if (found === undefined) {
      peer.queue = []
      peer.cursor = 0
    } else this.compact(peer)
    for (const key of busy) peer.queue.push(key)
    return found
  }

  private compact(peer: Peer): void {
    if (peer.cursor > 1024 && peer.cursor * 2 > peer.queue.length) {
      peer.queue = peer.queue.slice(peer.cursor)
      peer.cursor = 0
    }
  }

  private transferDone(peer: Peer, key: string): void {
    const m = this.buffer.get(key)
    if (m === undefined) return
    m.copies = this.policy.copiesKept(m.copies)
    this.buffer.refresh(m)
    if (m.destKey === peer.tag) this.reachedDestination(m)
  }

  /** `peer` refused the offer of `key`: no copies were handed; its destination has it already. */
  private refused(peer: Peer, key: string): void {
    const m = this.buffer.get(key)
    if (m !== undefined && m.destKey === peer.tag) this.reachedDestination(m)
  }

  private reachedDestination(m: HeldMessage): void {
    if (m.own) this.host.stateChanged({ id: toHex(m.record, 0, KEY_BYTES), state: 'delivered' })
    if (this.policy.dropWhenDelivered) this.buffer.remove(m)
  }

  private receiveData(peer: Peer, f: DataFrame): void {
    let buf: Uint8Array
    const key = idKey(f.id)
    const whole = f.offset === 0 && f.chunk.length === f.total
    if (whole && this.buffer.knows(key)) {
      // A copy we already have (sent unasked, or late): acknowledge so the sender stops; keep nothing.
      this.receptions.arrived(key)
      peer.knows.add(prefixOf(key))
      this.host.transmit(peer.name, encodeNotice(FrameType.ack, f.id, 0, this.frameAlloc), 'control')
      return
    }
    if (whole) {
      buf = this.records.alloc(2 * KEY_BYTES + f.total)
      buf.set(f.chunk, 2 * KEY_BYTES)
    } else {
      const done = this.partials.add(peer.name, key, f)
      if (done === null) this.dropped++
      if (!done) return
      buf = done
    }
    buf.set(f.id, 0)
    buf.set(f.destination, KEY_BYTES)
    this.receptions.arrived(key)
    peer.knows.add(prefixOf(key))
    this.host.transmit(peer.name, encodeNotice(FrameType.ack, buf, 0, this.frameAlloc), 'control')
    if (f.remainingMs <= 0) return // expired on the way
    const now = this.host.now()
    const destKey = idKey(buf, KEY_BYTES)
    if (destKey === this.selfKey) {
      if (!this.buffer.wasDelivered(key)) {
        const id = buf.slice(0, KEY_BYTES)
        this.buffer.markDelivered(key, id, now + f.remainingMs)
        this.host.deliver({ id: toHex(id), payload: buf.subarray(RECORD_PAYLOAD), hops: f.hops + 1 })
        this.scheduleTtlCheck(now + f.remainingMs + DELIVERED_GRACE_MS)
      }
      return
    }
    if (this.buffer.knows(key)) return
    this.add({
      record: buf,
      key,
      destKey,
      expiresAt: now + f.remainingMs,
      copies: f.copies,
      hops: f.hops + 1,
      own: false,
    })
  }

  // --- buffer ----------------------------------------------------------------------------------

  private add(m: HeldMessage): void {
    if (!this.buffer.add(m)) return
    this.scheduleTtlCheck(m.expiresAt)
    const prefix = prefixOf(m.key)
    for (const peer of this.peers.values()) {
      if (peer.knows.has(prefix)) continue
      if (this.policy.summaries) {
        this.host.transmit(peer.name, encodeNotice(FrameType.have, m.record, 0, this.frameAlloc), 'control')
      }
      if (peer.ready && this.policy.relays) peer.queue.push(m.key)
      this.pump(peer)
    }
  }

  private purgeExpired(now: number): void {
    const next = this.buffer.purge(now, DELIVERED_GRACE_MS, (m) => {
      if (m.own) this.host.stateChanged({ id: toHex(m.record, 0, KEY_BYTES), state: 'expired' })
    })
    this.nextTtlCheck = Number.POSITIVE_INFINITY
    this.scheduleTtlCheck(Math.max(next, now + this.ttlCheckMs))
  }

  private scheduleTtlCheck(at: number): void {
    if (at < this.nextTtlCheck) {
      this.nextTtlCheck = at
      this.arm()
    }
  }

  /** Asks the host for a wake-up at the earliest moment something is due. */
  private arm(): void {
    let t = Math.min(this.nextTtlCheck, this.receptions.nextDeadline())
    for (const peer of this.peers.values()) {
      if (!peer.ready && peer.readyDeadline < t) t = peer.readyDeadline
      if (peer.inflight !== undefined && peer.inflightDeadline < t) t = peer.inflightDeadline
    }
    if (t === Number.POSITIVE_INFINITY) return
    if (t < this.armedAt || this.armedAt <= this.host.now()) {
      this.armedAt = t
      this.host.wakeAt(t)
    }
  }
}
