/**
 * Mesh links over libp2p: TCP, Noise, yamux, identify, ping, mDNS on every interface, and
 * bootstrap addresses.
 *
 * Every libp2p connection to a peer that speaks {@link MESH_PROTOCOL} becomes one mesh link.
 * Each side sends its frames on one outbound stream and reads the other side's frames from the
 * inbound stream, so neither side waits for the other to decide who opens what. The link is up
 * once our outbound stream is open; it goes down when the peer's last connection closes.
 *
 * Peers that spoke the mesh protocol are remembered in the store with the addresses they listen
 * on, and redialled, like the bootstrap addresses, with a capped exponential backoff. A peer that
 * breaks the framing has its stream aborted; a peer opening many streams meets the per-connection
 * stream limits; neither touches other links.
 */
import '../platform/node-shims.ts'
import { identify } from '@libp2p/identify'
import type { Connection, ConnectionGater, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import { mdns as libp2pMdns } from '@libp2p/mdns'
import { noise } from '@libp2p/noise'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { Uint8ArrayList } from 'uint8arraylist'
import { isTalkenError } from '../errors.ts'
import { DEFAULT_MESH_CONFIG } from '../mesh/config.ts'
import { MAX_FRAME_BYTES } from '../mesh/frames.ts'
import type { Logger } from '../mesh/router.ts'
import type { Store } from '../store/store.ts'
import { type DialTarget, DialTargets } from './dial-targets.ts'
import { encodeFrame, FrameDecoder, MAX_FRAMED_BYTES } from './framing.ts'
import { type MdnsInit, talkenMdns } from './mdns.ts'
import {
  isLoopback,
  isPlainTcp,
  isPlainTcpText,
  isUnspecified,
  peerOf,
  sameNetwork,
  stripPeer,
  withPeer,
} from './multiaddrs.ts'

/** The libp2p protocol that carries mesh frames. */
export const MESH_PROTOCOL = '/talken/mesh/1.0.0'

/** What the links report to whoever runs the mesh. */
export interface LinkHandlers {
  /** A mesh link to `peer` is up and carries frames of at most `mtu` bytes. */
  linkUp(peer: string, mtu: number): void
  linkDown(peer: string): void
  /** Frames that arrived together from `peer`, in order. */
  frames(peer: string, frames: readonly Uint8Array[]): void
}

/** Options of {@link Libp2pLinks.create}. */
export interface LinksOptions {
  /** The libp2p key: the device's network identity, separate from the account key. */
  readonly privateKey: PrivateKey
  /** Multiaddrs to listen on. Default `/ip4/0.0.0.0/tcp/0` (every IPv4 interface, a free port). */
  readonly listen?: readonly string[]
  /** Multiaddrs to keep dialling (with or without `/p2p/<peer>`). */
  readonly bootstrap?: readonly string[]
  /** LAN discovery by multicast DNS on every interface; `false` to switch it off. Default on. */
  readonly mdns?: boolean | MdnsInit
  readonly store: Store
  readonly handlers: LinkHandlers
  readonly log: Logger
  /** Redial backoff, milliseconds: first wait and cap. Defaults 1,000 and 60,000. */
  readonly redialMinMs?: number
  readonly redialMaxMs?: number
  /** Use `@libp2p/mdns` (default interface only) instead of Talken's per-interface mDNS; for interop tests. */
  readonly plainMdns?: boolean
  /**
   * Which peers (libp2p peer IDs) this node may link with; default every peer. A rejected peer is
   * never dialled (neither by peer ID nor by an address that names it) and its connections are
   * refused once the encryption handshake has proved who it is, both ways. Consulted at every
   * connection attempt, so it may read mutable state. For fixed topologies: demos, local meshes.
   */
  readonly allowPeer?: (peerId: string) => boolean
}

/** Counters for status output and tests. */
export interface LinkStats {
  framesIn: number
  framesOut: number
  /**
   * Frames dropped: a link's send buffer was full or the link was gone, or they arrived while
   * the link was opening, beyond what is held for it then.
   */
  framesDropped: number
  /** Streams aborted for breaking the framing. */
  badStreams: number
}

/** One connected libp2p peer, for `talken peers`. */
export interface ConnectedPeer {
  readonly peerId: string
  /** Remote addresses of the open connections. */
  readonly addresses: readonly string[]
  /** True when a mesh link to this peer is up. */
  readonly mesh: boolean
}

interface Outbound {
  stream: Stream
  /** Frames waiting to be written (until the end of this tick, or a drain), and their bytes. */
  readonly queue: Uint8Array[]
  queuedBytes: number
  /** True while a flush is scheduled. */
  flushing: boolean
  /** When the stream was reopened lately (see {@link MAX_REOPENS}). */
  readonly reopens: number[]
  /** The connection the stream is on. */
  connection: Connection | undefined
}

/**
 * Most bytes queued for one link (written at the end of the tick, or while its stream waits for a
 * drain); frames beyond are dropped, and the mesh sends them again once their hop acknowledgement
 * times out. Room for the mesh's whole sending window of the largest frames, which it may hand
 * over in one step, and as much again in control frames: what an honest mesh queues never meets
 * the bound, which is there for a stream that stops draining.
 */
const MAX_QUEUED_BYTES = (DEFAULT_MESH_CONFIG.window + 4) * MAX_FRAMED_BYTES
/** Mesh protocol streams one connection may open towards us; the honest number is one. */
const MAX_MESH_STREAMS = 2
/** How long the higher peer ID of a pair that discovered each other waits for the lower one to dial. */
const DISCOVERY_DIAL_DELAY_MS = 1_500
/** Frames held per peer while its link is still opening. */
const MAX_EARLY_FRAMES = 64
/** Bytes of those, at most: a Hello, a Summary and a little more fit; the sender retries the rest. */
const MAX_EARLY_BYTES = 256 * 1024
/** Stored peers redialled at start, most recently seen first. */
const REMEMBERED_PEERS = 64
/** Stored peers not seen for this long are not redialled. */
const FORGET_AFTER_MS = 7 * 24 * 3600_000
/**
 * Times our stream to a peer may close and be reopened within {@link REOPEN_WINDOW_MS}; beyond, the
 * link goes down and the connections to the peer are closed (redialled later, with backoff): a
 * peer that resets every stream we open would otherwise have us reopen without end.
 */
const MAX_REOPENS = 3
const REOPEN_WINDOW_MS = 60_000
export class Libp2pLinks {
  readonly stats: LinkStats = { framesIn: 0, framesOut: 0, framesDropped: 0, badStreams: 0 }
  readonly #node: Libp2p
  readonly #opts: LinksOptions
  readonly #out = new Map<string, Outbound>()
  readonly #opening = new Set<string>()
  /** Frames that arrived before our outbound stream to their sender was open. */
  readonly #early = new Map<string, Uint8Array[]>()
  readonly #targets: DialTargets
  #redialTimer: NodeJS.Timeout | undefined
  #stopped = false
  /** The protocol handler and event listeners are in place (once: a failed start may be retried). */
  #wired = false

  /** Addresses the operator gave (bootstrap, {@link dial}), without `/p2p/`: dialled whatever their kind. */
  readonly #given: Set<string>

  private constructor(node: Libp2p, opts: LinksOptions, given: Set<string>, targets: DialTargets) {
    this.#node = node
    this.#opts = opts
    this.#given = given
    this.#targets = targets
  }

  /** Builds (but does not start) the libp2p node. */
  static async create(opts: LinksOptions): Promise<Libp2pLinks> {
    const given = new Set((opts.bootstrap ?? []).map((a) => stripPeer(a)))
    // Set once the links exist: mDNS hears nothing before the node starts.
    let links: Libp2pLinks | undefined
    const targets = new DialTargets({ minMs: opts.redialMinMs ?? 1_000, maxMs: opts.redialMaxMs ?? 60_000 })
    const mdnsInit =
      opts.mdns === false ? undefined : opts.mdns === true || opts.mdns === undefined ? {} : opts.mdns
    const node = await createLibp2p({
      privateKey: opts.privateKey,
      start: false,
      addresses: { listen: [...(opts.listen ?? ['/ip4/0.0.0.0/tcp/0'])] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux({ maxInboundStreams: 64, maxOutboundStreams: 64 })],
      peerDiscovery:
        mdnsInit === undefined
          ? []
          : [
              opts.plainMdns
                ? libp2pMdns({ interval: mdnsInit.queryIntervalMs ?? 5_000 })
                : talkenMdns({
                    ...mdnsInit,
                    heard: (peer) => links?.heard(peer.id.toString(), peer.multiaddrs),
                  }),
            ],
      connectionManager: { maxConnections: 128, maxIncomingPendingConnections: 16 },
      connectionGater: gater(opts, given, targets),
      services: { identify: identify(), ping: ping() },
    })
    links = new Libp2pLinks(node, opts, given, targets)
    return links
  }

  get peerId(): string {
    return this.#node.peerId.toString()
  }

  /** The addresses we listen on, each ending in `/p2p/<peer>`. */
  addresses(): string[] {
    return this.#node.getMultiaddrs().map((a) => a.toString())
  }

  /** The libp2p node itself, for services the links do not wrap (identify and ping in tests). */
  get libp2p(): Libp2p {
    return this.#node
  }

  async start(): Promise<void> {
    await this.#wire()
    await this.#node.start()
    for (const address of this.#opts.bootstrap ?? []) this.#tryAddTarget(address, true)
    this.#guard(() => {
      const cutoff = Date.now() - FORGET_AFTER_MS
      // Oldest first: when they are more than the targets kept, the most recently seen stay.
      for (const peer of this.#opts.store.listPeers(REMEMBERED_PEERS).reverse()) {
        if (peer.lastSeen < cutoff || peer.peerId === this.peerId) continue
        // Recorded from others: plain TCP only (a store written before that rule may hold others).
        for (const a of peer.addresses) {
          if (isPlainTcpText(a.address)) this.#tryAddTarget(withPeer(a.address, peer.peerId))
        }
      }
    })
    this.#redialTimer = setInterval(() => this.#redial(), 500)
    this.#redial()
  }

  /** Installs the mesh protocol and the event listeners, once. */
  async #wire(): Promise<void> {
    if (this.#wired) return
    this.#wired = true
    const node = this.#node
    await node.handle(MESH_PROTOCOL, (stream, connection) => this.#onInbound(stream, connection), {
      maxInboundStreams: MAX_MESH_STREAMS,
      maxOutboundStreams: MAX_MESH_STREAMS,
    })
    await node.register(MESH_PROTOCOL, {
      onConnect: (peer, connection) => this.#ensureOutbound(peer, connection),
      onDisconnect: (peer) => this.#closeLink(peer.toString()),
    })
    // Also when the peer store never listed the protocol for the peer (its identify left it
    // out): no link, and no early frames, outlives the last connection.
    node.addEventListener('peer:disconnect', (event) => this.#closeLink(event.detail.toString()))
    node.addEventListener('peer:discovery', (event) => {
      const peer = event.detail.id
      this.#opts.log('debug', 'discovered a peer', {
        peer: peer.toString(),
        addresses: event.detail.multiaddrs.map(String),
      })
      if (node.getConnections(peer).length > 0) return
      // Both sides usually hear each other at once; if both dialled, every pair would hold two
      // connections. The lower peer ID dials now; the other waits and dials only if no
      // connection came (the first may not hear our announcements).
      if (this.peerId < peer.toString()) this.#dialPeer(peer)
      else {
        setTimeout(() => {
          if (!this.#stopped && node.getConnections(peer).length === 0) this.#dialPeer(peer)
        }, DISCOVERY_DIAL_DELAY_MS).unref()
      }
    })
    node.addEventListener('peer:identify', (event) => {
      const { peerId, protocols, listenAddrs, connection } = event.detail
      if (!protocols.includes(MESH_PROTOCOL)) return
      const now = Date.now()
      const id = peerId.toString()
      // A peer listening on every interface lists its loopback address first: of use only to a
      // peer on the same host. Addresses on the network we reached it by come first.
      const local = isLoopback(connection.remoteAddr)
      // Plain TCP only: a peer can list any address, `/unix/…` included.
      const dialable = listenAddrs
        .filter((a) => isPlainTcp(a) && !isUnspecified(a) && (local || !isLoopback(a)))
        .sort(
          (a, b) =>
            Number(sameNetwork(b, connection.remoteAddr)) - Number(sameNetwork(a, connection.remoteAddr)),
        )
      this.#guard(() => {
        if (dialable.length === 0) this.#opts.store.notePeer(id, now)
        for (const address of dialable) this.#opts.store.notePeer(id, now, address.toString())
      })
      // Keep redialling a mesh peer we have met, so a link that breaks comes back without
      // waiting for discovery.
      for (const address of dialable.slice(0, 4)) this.#tryAddTarget(withPeer(address.toString(), id))
    })
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#redialTimer)
    for (const peer of [...this.#out.keys()]) this.#closeLink(peer)
    await this.#node.stop()
  }

  /**
   * Sends one frame to `peer`. Returns false when it was dropped: no link, or the link's send
   * buffer is full. The mesh treats frames as lossy and retries what matters.
   */
  send(peer: string, frame: Uint8Array): boolean {
    const out = this.#out.get(peer)
    if (out === undefined || out.queuedBytes + frame.length > MAX_QUEUED_BYTES) {
      this.stats.framesDropped++
      return false
    }
    out.queue.push(frame)
    out.queuedBytes += frame.length
    // Frames sent in one step of the mesh leave together: one write, one Noise frame.
    if (!out.flushing) {
      out.flushing = true
      queueMicrotask(() => {
        out.flushing = false
        this.#flush(peer, out)
      })
    }
    return true
  }

  /** Dials an address now (and keeps it as a redial target). */
  async dial(address: string): Promise<void> {
    const target = this.#targets.add(address, true)
    this.#given.add(stripPeer(target.address))
    await this.#dialTarget(target)
  }

  /** Open connections, by peer. */
  connectedPeers(): ConnectedPeer[] {
    const byPeer = new Map<string, string[]>()
    for (const c of this.#node.getConnections()) {
      const id = c.remotePeer.toString()
      const list = byPeer.get(id) ?? []
      list.push(c.remoteAddr.toString())
      byPeer.set(id, list)
    }
    return [...byPeer].map(([peerId, addresses]) => ({ peerId, addresses, mesh: this.#out.has(peerId) }))
  }

  // ------------------------------------------------------------------------------------------

  /** Writes every queued frame as one chunk, unless the stream asks to wait for a drain. */
  #flush(peer: string, out: Outbound): void {
    if (out.queue.length === 0 || out.stream.writableNeedsDrain || this.#out.get(peer) !== out) return
    const frames = out.queue.splice(0)
    out.queuedBytes = 0
    const chunk = new Uint8ArrayList()
    for (const frame of frames) chunk.append(encodeFrame(frame))
    try {
      out.stream.send(chunk)
      this.stats.framesOut += frames.length
    } catch (err) {
      this.#opts.log('debug', 'mesh stream write failed', { peer, error: (err as Error).message })
      this.stats.framesDropped += frames.length
      // The stream is gone, whether or not its close was heard: reopen it, or take the link down.
      this.#onOutboundClosed(peer, out, out.stream)
    }
  }

  #ensureOutbound(peerId: PeerId, connection: Connection, retry = true): void {
    const peer = peerId.toString()
    this.#opts.log('debug', 'mesh peer connected', { peer, address: connection.remoteAddr.toString() })
    if (this.#stopped || this.#out.has(peer) || this.#opening.has(peer)) return
    this.#opening.add(peer)
    connection
      .newStream(MESH_PROTOCOL)
      .then((stream) => {
        this.#opening.delete(peer)
        if (this.#stopped) {
          stream.abort(new Error('stopping'))
          return
        }
        const known = this.#out.get(peer)
        const out: Outbound = known ?? {
          stream,
          queue: [],
          queuedBytes: 0,
          flushing: false,
          reopens: [],
          connection,
        }
        out.connection = connection
        this.#out.set(peer, out)
        if (known === undefined) {
          this.#opts.handlers.linkUp(peer, MAX_FRAME_BYTES)
          this.#deliverEarly(peer)
        } else {
          this.#flush(peer, out)
        }
        // After the link is up: a stream already gone takes it down again at once.
        this.#attach(peer, out, stream)
        this.#guard(() => this.#opts.store.notePeer(peer, Date.now()))
      })
      .catch((err: Error) => {
        this.#opening.delete(peer)
        this.#opts.log('debug', 'could not open a mesh stream', { peer, error: err.message })
        // Another open connection to the peer may do (this one closed while the stream opened);
        // else no link, and the frames the peer sent meanwhile go too.
        const other = retry ? this.#openConnection(peerId, connection) : undefined
        if (other !== undefined) this.#ensureOutbound(peerId, other, false)
        else if (!this.#out.has(peer)) this.#early.delete(peer)
      })
  }

  /** An open connection to `peer` other than `not`, if any. */
  #openConnection(peer: PeerId, not?: Connection): Connection | undefined {
    return this.#node.getConnections(peer).find((c) => c.status === 'open' && c !== not)
  }

  /** Makes `stream` the link's outbound stream. */
  #attach(peer: string, out: Outbound, stream: Stream): void {
    out.stream = stream
    stream.addEventListener('drain', () => this.#flush(peer, out))
    stream.addEventListener('close', () => this.#onOutboundClosed(peer, out, stream))
    // The peer only reads on this stream; anything it sends here is ignored and dropped.
    stream.addEventListener('message', () => {})
    // Closed (or reset) before its close could be heard: as if heard now.
    if (stream.status !== 'open' || stream.writeStatus !== 'writable') {
      queueMicrotask(() => this.#onOutboundClosed(peer, out, stream))
    }
  }

  /**
   * Our stream `stream` closed: reopen it on an open connection to the peer, or take the link
   * down. At most {@link MAX_REOPENS} times in {@link REOPEN_WINDOW_MS}; then the link goes down and
   * the peer's connections are closed (dialled again later, with backoff).
   */
  #onOutboundClosed(peer: string, out: Outbound, stream: Stream): void {
    if (this.#out.get(peer) !== out || out.stream !== stream || this.#opening.has(peer) || this.#stopped) {
      return
    }
    const now = Date.now()
    while (out.reopens.length > 0 && now - out.reopens[0]! > REOPEN_WINDOW_MS) out.reopens.shift()
    const peerId = peerIdFromString(peer)
    // Only a stream closed on a connection that stays open counts: a connection going away (a
    // flapping interface, a duplicate pruned) is no fault of the peer's.
    const peerClosedIt = out.connection?.status === 'open'
    if (peerClosedIt && out.reopens.length >= MAX_REOPENS) {
      this.#opts.log('warn', 'a peer keeps closing our mesh stream: hanging up', { peer })
      this.#closeLink(peer)
      this.#backOff(peer)
      this.#node.hangUp(peerId).catch(() => {})
      return
    }
    if (peerClosedIt) out.reopens.push(now)
    const reopen = (connection: Connection | undefined, retry: boolean): void => {
      if (connection === undefined) {
        this.#closeLink(peer)
        return
      }
      // Keep the link (and its queue) while a stream is reopened; if that fails the link goes down.
      this.#opening.add(peer)
      connection
        .newStream(MESH_PROTOCOL)
        .then((fresh) => {
          this.#opening.delete(peer)
          if (this.#out.get(peer) !== out || this.#stopped) {
            fresh.abort(new Error('link gone'))
            return
          }
          out.connection = connection
          this.#attach(peer, out, fresh)
          this.#flush(peer, out)
        })
        .catch(() => {
          this.#opening.delete(peer)
          if (this.#out.get(peer) !== out) return
          reopen(retry ? this.#openConnection(peerId, connection) : undefined, false)
        })
    }
    reopen(this.#openConnection(peerId), true)
  }

  /** Postpones redialling `peer` (its addresses count one more failure). */
  #backOff(peer: string): void {
    this.#targets.hungUp(peer, Date.now())
  }

  #deliverEarly(peer: string): void {
    const early = this.#early.get(peer)
    this.#early.delete(peer)
    if (early !== undefined && early.length > 0) this.#opts.handlers.frames(peer, early)
  }

  #closeLink(peer: string): void {
    this.#early.delete(peer)
    const out = this.#out.get(peer)
    if (out === undefined) return
    this.#out.delete(peer)
    this.stats.framesDropped += out.queue.length
    if (out.stream.status === 'open') out.stream.abort(new Error('link closed'))
    this.#opts.handlers.linkDown(peer)
  }

  #onInbound(stream: Stream, connection: Connection): void {
    const peer = connection.remotePeer.toString()
    const decoder = new FrameDecoder()
    stream.addEventListener('message', (event) => {
      let frames: Uint8Array[]
      try {
        frames = decoder.push(event.data)
      } catch (err) {
        this.stats.badStreams++
        this.#opts.log('warn', 'aborting a mesh stream that broke the framing', {
          peer,
          error: (err as Error).message,
        })
        stream.abort(err as Error)
        return
      }
      this.stats.framesIn += frames.length
      if (this.#out.has(peer)) {
        if (frames.length > 0) this.#opts.handlers.frames(peer, frames)
        return
      }
      // The peer's frames may arrive a moment before our own stream is open, and the mesh
      // takes frames only from links it knows: hold a few until the link is up.
      const early = this.#early.get(peer) ?? []
      let bytes = early.reduce((n, f) => n + f.byteLength, 0)
      for (const frame of frames) {
        if (early.length < MAX_EARLY_FRAMES && bytes + frame.byteLength <= MAX_EARLY_BYTES) {
          early.push(frame)
          bytes += frame.byteLength
        } else this.stats.framesDropped++
      }
      this.#early.set(peer, early)
      this.#ensureOutbound(connection.remotePeer, connection)
    })
    // We never write on the peer's stream: close our half so the peer sees a clean half-close.
    stream.close().catch(() => {})
  }

  // ------------------------------------------------------------------------------------------
  // dialling

  /**
   * {@link DialTargets.add} for addresses others gave us (a peer's identify, a contact's card, the
   * peers we remember): one that does not parse is logged and skipped, never fatal.
   */
  #tryAddTarget(address: string, pinned = false): void {
    try {
      this.#targets.add(address, pinned)
    } catch (err) {
      this.#opts.log('warn', 'skipping an address that is not a multiaddr', {
        address: address.slice(0, 300),
        error: (err as Error).message.slice(0, 300),
      })
    }
  }

  /**
   * mDNS heard `peer` answer from `addresses` (its own, plain TCP, at most once in 30 s: mdns.ts).
   * libp2p dials only peers new to its peer store, so a neighbour met before that comes back
   * (its addresses given up after failed dials meanwhile, or new ones) is dialled here, if we have
   * an address of it to redial (met through identify, remembered, or given). Public for
   * the mDNS component (and for tests that stand in for it).
   */
  heard(peer: string, addresses: readonly Multiaddr[]): void {
    if (this.#stopped || peer === this.peerId || this.#isConnected(peer)) return
    // A peer never met is libp2p's to dial (a new peer in its store): answers with made-up peer
    // IDs then cost one dial each, not a redial target each.
    if (!this.#targets.knowsPeer(peer)) return
    const now = Date.now()
    for (const address of addresses) {
      if (!isPlainTcp(address)) continue
      this.#targets.sighted(withPeer(address.toString(), peer), now)
    }
  }

  #redial(): void {
    if (this.#stopped) return
    for (const target of this.#targets.due(Date.now(), (peer) => this.#isConnected(peer))) {
      void this.#dialTarget(target).catch(() => {})
    }
  }

  async #dialTarget(target: DialTarget): Promise<void> {
    if (target.peer === this.peerId) return
    target.dialling = true
    try {
      const connection = await this.#node.dial(multiaddr(target.address), {
        signal: AbortSignal.timeout(10_000),
      })
      this.#targets.succeeded(target, connection.remotePeer.toString())
    } catch (err) {
      this.#targets.failed(target, Date.now())
      if (target.peer !== undefined) {
        const peer = target.peer
        this.#guard(() => {
          try {
            this.#opts.store.noteAddressFailure(peer, stripPeer(target.address))
          } catch (e) {
            // An address never recorded for the peer (a bootstrap or contact address): nothing to count.
            if (!isTalkenError(e, 'not_found')) throw e
          }
        })
      }
      throw err
    } finally {
      target.dialling = false
    }
  }

  #dialPeer(peer: PeerId): void {
    if (this.#stopped) return
    this.#node.dial(peer, { signal: AbortSignal.timeout(10_000) }).catch((err: Error) => {
      this.#opts.log('debug', 'dialling a discovered peer failed', {
        peer: peer.toString(),
        error: err.message,
      })
    })
  }

  #isConnected(peer: string): boolean {
    try {
      return this.#node.getConnections(peerIdFromString(peer)).length > 0
    } catch {
      return false
    }
  }

  /** Store writes about peers are bookkeeping: a failure is logged, never fatal to a link. */
  #guard(fn: () => void): void {
    try {
      fn()
    } catch (err) {
      this.#opts.log('warn', 'could not record peer addresses', { error: (err as Error).message })
    }
  }
}

/**
 * A libp2p connection gater that lets only peers `allow` accepts link with us. The gater's
 * `deny*` hooks return true to refuse: dialling a peer, dialling an address naming a peer (one
 * with no `/p2p/` passes, and the dial is judged after the handshake), and encrypted connections
 * either way, the first point at which an inbound peer's ID is known.
 */
/**
 * What libp2p may dial and accept: only plain TCP addresses (`isPlainTcp`), besides those the
 * operator gave (`given`: bootstrap, {@link Libp2pLinks.dial}), whatever put an address in
 * libp2p's peer store (a peer's identify, an mDNS answer); only peers `allowPeer` lets through,
 * when given; and no peer we hung up on until its wait is over, in either direction.
 */
function gater(opts: LinksOptions, given: ReadonlySet<string>, targets: DialTargets): ConnectionGater {
  const allow = opts.allowPeer
  const deny = (peer: PeerId): boolean => allow !== undefined && !allow(peer.toString())
  // A peer we hung up on waits out its time, whichever side dials (dial-targets.ts `hungUp`).
  const waiting = (peer: PeerId): boolean => targets.waitUntil(peer.toString()) > Date.now()
  return {
    denyDialPeer: (peer) => deny(peer) || waiting(peer),
    denyDialMultiaddr: (address) => {
      if (!isPlainTcp(address) && !given.has(stripPeer(address.toString()))) return true
      const peer = peerOf(address)
      return peer !== undefined && allow !== undefined && !allow(peer)
    },
    denyInboundEncryptedConnection: (peer) => deny(peer) || waiting(peer),
    denyOutboundEncryptedConnection: (peer) => deny(peer) || waiting(peer),
  }
}
