/**
 * The machinery the three baseline routers share, modelled on The ONE simulator's ActiveRouter
 * (akeranen/the-one, `src/routing/ActiveRouter.java`): a drop-oldest buffer; messages expire by
 * lifetime (checked at most once a simulated minute, as The ONE does, and always before use);
 * on each link one message transfer at a time; messages destined to the neighbour go first, then
 * the others in random order; nothing is sent that the neighbour is known to hold.
 *
 * Where The ONE asks the other router directly ("do you have this message?"), these routers
 * learn it from frames: on link up each side sends a summary vector (its tag and the IDs it holds
 * or has had delivered); a node that stores a new message tells its neighbours with a HAVE; the
 * receiver of a message acknowledges it. A transfer is complete when its ACK arrives; a transfer
 * whose link goes down, or whose ACK does not come within `retransmitMs`, is abandoned and may be
 * retried later. A {@link DtnPolicy} decides what may be relayed and how copies are split.
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
  SUMMARY_HEADER,
} from './frames.ts'
import { MessageBuffer } from './message-buffer.ts'
import { Reassembly } from './reassembly.ts'
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
  /** How long to wait for an ACK (or for a neighbour's summary) before moving on. Default 2 s. */
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
  /** Message IDs it holds or has had delivered, as far as we know. */
  readonly knows: Set<string>
  /** Relay candidates in the order to try them. */
  queue: string[]
  cursor: number
  inflight: string | undefined
  /** The transfer in flight relays (rather than delivers) its message. */
  inflightRelay: boolean
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
        for (let i = 0; i < f.ids.length; i += KEY_BYTES) peer.knows.add(idKey(f.ids, i))
        if (f.last && !peer.ready) this.becomeReady(peer)
        else this.pump(peer)
        return
      }
      case FrameType.have:
        peer.knows.add(idKey(f.id))
        return
      case FrameType.ack: {
        const key = idKey(f.id)
        peer.knows.add(key)
        if (peer.inflight === key) {
          this.transferDone(peer, key)
          this.settle(peer)
          this.pump(peer)
        }
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
    for (const peer of this.peers.values()) {
      if (!peer.ready && now >= peer.readyDeadline) this.becomeReady(peer)
      if (peer.inflight !== undefined && now >= peer.inflightDeadline) {
        // No ACK: give up on this attempt; the message may be offered again later.
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
    const per = KEY_BYTES * Math.min(0xffff, Math.max(1, Math.floor((peer.mtu - SUMMARY_HEADER) / KEY_BYTES)))
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

  /** Starts the next transfer to `peer` if it is ready and idle. */
  private pump(peer: Peer): void {
    if (!peer.ready || peer.inflight !== undefined) return
    const m = this.pick(peer)
    if (m === undefined) return
    const now = this.host.now()
    const copies = m.destKey === peer.tag ? m.copies : this.policy.copiesGiven(m.copies)
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
    peer.inflight = m.key
    peer.inflightRelay = m.destKey !== peer.tag
    if (peer.inflightRelay && this.policy.splitsCopies) this.relaying.add(m.key)
    peer.inflightDeadline = now + this.retransmitMs
    this.arm()
  }

  /**
   * The relay in flight to `peer` got no ACK (it timed out, or the link went down). The peer may
   * hold the message all the same (only the ACK was lost): the copies it would have taken count as
   * handed, so that a lost frame can only thin a spray, never give out more copies than its budget.
   */
  private unacknowledged(peer: Peer): void {
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
          if (m !== undefined && !peer.knows.has(key) && m.expiresAt > now) return m
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
      if (m === undefined || peer.knows.has(key) || m.destKey === peer.tag) continue
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
    if (m.destKey === peer.tag) {
      if (m.own) this.host.stateChanged({ id: toHex(m.record, 0, KEY_BYTES), state: 'delivered' })
      if (this.policy.dropWhenDelivered) this.buffer.remove(m)
    }
  }

  private receiveData(peer: Peer, f: DataFrame): void {
    let buf: Uint8Array
    const key = idKey(f.id)
    const whole = f.offset === 0 && f.chunk.length === f.total
    if (whole && this.buffer.knows(key)) {
      // A copy we already have: acknowledge so the sender stops offering it; keep nothing.
      peer.knows.add(key)
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
    peer.knows.add(key)
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
    for (const peer of this.peers.values()) {
      if (peer.knows.has(m.key)) continue
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
    let t = this.nextTtlCheck
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
