/**
 * The node: one identity, its store, the mesh core, and libp2p links, behind one small API.
 *
 * @example
 * import { createNode } from 'talken'
 * const node = await createNode({ home: '/home/ada/.talken' })
 * await node.start()
 * const handle = node.send('Grace', 'hello')
 * handle.on('state', (s) => console.log(handle.id, s))
 * for await (const m of node.messages()) console.log(m.fromName, m.text)
 *
 * Everything the node accepts is persisted before `send` returns: a message handed to `send` is
 * in the outbox (and in the conversation, as `queued`) even if the process dies the next moment,
 * and goes out when the node next runs. Incoming messages are stored before they are announced,
 * and each is announced once, also across restarts.
 */
import { createHash, randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { openSessionStore, type SessionStore } from '../e2e/session-store.ts'
import { decodePrekeyBundle, type PrekeyBundle } from '../e2e/x3dh.ts'
import { isTalkenError, TalkenError } from '../errors.ts'
import { looksLikeRoomFrame } from '../groups/room-transport.ts'
import { CardExtension, cardExtension, decodeContactCard } from '../identity/contact-card.ts'
import { toContactLink } from '../identity/contact-link.ts'
import type { Identity } from '../identity/identity.ts'
import { readFileIfExists, writePrivateFile } from '../identity/key-file.ts'
import { Libp2pLinks, type LinkStats } from '../links/libp2p-links.ts'
import type { MdnsInit } from '../links/mdns.ts'
import type { MeshConfig } from '../mesh/config.ts'
import { createMeshRouter, type MeshCore, type MeshStats } from '../mesh/mesh-core.ts'
import { ACK_SECRET_LENGTH } from '../mesh/mesh-payload.ts'
import type { Delivery, Logger, MessageFiling, RouterHost, SendOptions, StateChange } from '../mesh/router.ts'
import { tagKey } from '../mesh/routing-table.ts'
import {
  decodeDirectMessage,
  encodeDirectMessage,
  encodeReadReceipt,
  encodeResendRequest,
  MAX_RECEIPT_IDS,
} from '../messaging/direct-message.ts'
import type { Contact, DeliveryState, Store } from '../store/store.ts'
import { bytesEqual } from '../wire/cbor.ts'
import { CardBook } from './card-book.ts'
import { acceptContactCard, findContact } from './contacts.ts'
import { loadIdentity, openHome } from './data-dir.ts'
import { destinationTag } from './destination-tag.ts'
import { refreshOwnCard } from './own-card.ts'
import {
  applyReceipt,
  RECEIPTS_CONVERSATION,
  receiptsEnabled,
  setReceiptsEnabled,
  unreadIncoming,
} from './receipts.ts'
import { NodeRooms, type RoomEntryEvent } from './rooms.ts'
import { SendHandle } from './send-handle.ts'

export { SendHandle }

/** The libp2p key file in the data directory: this device's network identity. */
export const PEER_KEY_FILE = 'peer.key'

/** Delivery states after which nothing more happens to a message (read may follow delivered). */
const FINAL_STATES: ReadonlySet<DeliveryState> = new Set(['delivered', 'read', 'expired', 'failed'])

/** Options of {@link createNode}. */
export interface NodeOptions {
  /** Data directory holding the identity and the SQLite store. */
  readonly home?: string
  /** Passphrase of an encrypted key file in `home`. */
  readonly passphrase?: string
  /** Bring your own store and identity instead of `home` (both are then required). */
  readonly store?: Store
  readonly identity?: Identity
  /** The libp2p key; default: read from (or created in) `home`, or a fresh one. */
  readonly peerKey?: PrivateKey
  /** Multiaddrs to listen on. Default `/ip4/0.0.0.0/tcp/0`. */
  readonly listen?: readonly string[]
  /** Multiaddrs to keep dialling; contacts' card addresses are added to these. */
  readonly bootstrap?: readonly string[]
  /** LAN discovery; default on. Switch off where multicast must not go. */
  readonly mdns?: boolean | MdnsInit
  /**
   * Which devices (libp2p peer IDs) this node may link with; default all. Others are neither
   * dialled nor accepted (see `LinksOptions.allowPeer`). Fixes the topology of a local mesh.
   */
  readonly allowPeer?: (peerId: string) => boolean
  readonly logger?: Logger
  /** Mesh tuning (see mesh/config.ts). */
  readonly mesh?: Partial<MeshConfig>
  /** How long a message may wait for delivery, in milliseconds. Default the mesh's (24 h). */
  readonly ttlMs?: number
}

/** A message someone sent us. */
export interface IncomingMessage {
  readonly id: string
  /** The sender's text ID (their conversation). */
  readonly from: string
  /** The sender as we name them. */
  readonly fromName: string
  readonly text: string
  /** Unix milliseconds, by the sender's clock. */
  readonly sentAt: number
  /** Unix milliseconds, by ours. */
  readonly receivedAt: number
  /** Hops the message travelled, when known. */
  readonly hops: number | undefined
}

/** A change in a sent message's delivery state. */
export interface MessageStateEvent {
  readonly id: string
  readonly conversation: string
  readonly state: DeliveryState
  readonly reason?: string | undefined
}

/** A mesh neighbour, for `talken peers`. */
export interface PeerInfo {
  readonly peerId: string
  readonly addresses: readonly string[]
  /** True when the mesh link is up. */
  readonly mesh: boolean
  /** The contact behind this device, when it said who it is and we know them. */
  readonly contact: string | undefined
}

/** A route, for `talken routes`. */
export interface RouteInfo {
  /** Destination tag (hex). */
  readonly destination: string
  /** The contact it belongs to, when known. */
  readonly contact: string | undefined
  readonly nextHop: string
  readonly metric: number
}

/** A summary for `talken status`. */
export interface NodeStatus {
  readonly id: string
  readonly name: string
  readonly peerId: string
  readonly addresses: readonly string[]
  readonly running: boolean
  readonly peers: number
  readonly routes: number
  readonly outbox: number
  readonly custody: { readonly count: number; readonly bytes: number }
  readonly mesh: MeshStats
  readonly links: LinkStats
  readonly rejected: number
}

/** The node's events. */
export interface NodeEvents {
  message: [IncomingMessage]
  state: [MessageStateEvent]
  'link:up': [string]
  'link:down': [string]
  /** An entry entered a room's history here (written or received). */
  'room:entry': [RoomEntryEvent]
  /** The node stopped. */
  stopped: []
  error: [Error]
}

const silent: Logger = () => {}

/** Where a message that failed verification is filed: remembered (so never delivered twice), never shown. */
const REJECTED: MessageFiling = { conversation: '.rejected', body: new Uint8Array(0) }

/** Creates a node; call {@link TalkenNode.start} to go online. */
export async function createNode(options: NodeOptions): Promise<TalkenNode> {
  let store: Store
  let identity: Identity
  let ownsStore = false
  if (options.store !== undefined || options.identity !== undefined) {
    if (options.store === undefined || options.identity === undefined) {
      throw new TalkenError('invalid_argument', 'pass both store and identity, or a home directory')
    }
    store = options.store
    identity = options.identity
  } else {
    if (options.home === undefined)
      throw new TalkenError('invalid_argument', 'createNode needs a home directory')
    identity = loadIdentity({ home: options.home, passphrase: options.passphrase })
    store = openHome({ home: options.home }).store
    ownsStore = true
  }
  try {
    const peerKey = options.peerKey ?? (await loadPeerKey(options.home))
    const listen = options.listen ?? (await defaultListen(store))
    return new TalkenNode({ ...options, listen }, store, identity, peerKey, ownsStore)
  } catch (err) {
    if (ownsStore) store.close()
    throw err
  }
}

/** kv namespace: per contact, the hash of our card as last delivered to them. */
const CARD_DELIVERED = 'card-delivered'

/** Where the node's TCP port is remembered, so its addresses (and links to it) stay valid. */
const PORT_KEY = ['node', 'tcp-port'] as const

/** Every IPv4 interface, on the port of the last run when it is still free, else a free one. */
async function defaultListen(store: Store): Promise<string[]> {
  const stored = store.kvGet(...PORT_KEY)
  const port = stored?.length === 2 ? (stored[0]! << 8) | stored[1]! : 0
  return [`/ip4/0.0.0.0/tcp/${port !== 0 && (await isPortFree(port)) ? port : 0}`]
}

function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => resolve(true)))
  })
}

/** Reads the device's libp2p key from `home`, creating it on first use. */
async function loadPeerKey(home: string | undefined): Promise<PrivateKey> {
  if (home === undefined) return generateKeyPair('Ed25519')
  const path = join(home, PEER_KEY_FILE)
  const bytes = readFileIfExists(path)
  if (bytes !== undefined) {
    try {
      return privateKeyFromProtobuf(bytes)
    } catch (err) {
      throw new TalkenError('malformed', `${path} is not a libp2p private key`, { cause: err })
    }
  }
  const key = await generateKeyPair('Ed25519')
  writePrivateFile(path, privateKeyToProtobuf(key))
  return key
}

/** A running (or stopped) Talken node. See the file comment. */
export class TalkenNode extends EventEmitter<NodeEvents> {
  readonly identity: Identity
  readonly store: Store
  readonly #options: NodeOptions
  readonly #ownsStore: boolean
  readonly #log: Logger
  readonly #tag: Uint8Array
  #card: Uint8Array
  readonly #e2e: SessionStore
  readonly #core: MeshCore
  /** The rooms this account holds. */
  readonly rooms: NodeRooms
  readonly #links: Promise<Libp2pLinks>
  #linksReady: Libp2pLinks | undefined
  readonly #handles = new Map<string, SendHandle>()
  readonly #cardBook: CardBook
  /** Messages in flight that carry our card, to note when a contact has it. */
  readonly #cardCarriers = new Map<string, { contact: string; cardHash: Uint8Array }>()
  /** Resend requests to send once the current step is stored, by contact ID. */
  readonly #resendAsks = new Map<string, string[]>()
  /** Prekey messages in flight (message ID → the session they belong to): see {@link #sendSealed}. */
  readonly #prekeyCarriers = new Map<string, { deviceKey: Uint8Array; baseKey: Uint8Array }>()
  #pool = { bytes: Buffer.alloc(0), offset: 0 }
  /** State changes reported while `send` is still recording the message. */
  #pending: StateChange[] | undefined
  #timer: NodeJS.Timeout | undefined
  #timerAt = Number.POSITIVE_INFINITY
  #running = false
  #stopped = false
  #rejected = 0
  /** Our messages read (by receipt) before their delivery acknowledgement arrived. */
  readonly #readBeforeAck = new Set<string>()
  /** Announcements of messages delivered during the current core step. */
  readonly #announce: Array<() => void> = []

  /** @internal Use {@link createNode}. */
  constructor(
    options: NodeOptions,
    store: Store,
    identity: Identity,
    peerKey: PrivateKey,
    ownsStore: boolean,
  ) {
    super()
    this.#options = options
    this.store = store
    this.identity = identity
    this.#ownsStore = ownsStore
    this.#log = options.logger ?? silent
    const profile = store.getIdentity()
    if (profile === undefined) throw new TalkenError('no_identity', 'the store holds no profile')
    this.#card = profile.card
    this.#e2e = openSessionStore({ store, device: identity.device, now: () => Date.now() })
    this.#cardBook = new CardBook(store)
    this.#refreshCard()
    this.#tag = destinationTag(identity.account.publicKey)
    const host: RouterHost = {
      now: () => Date.now(),
      random: () => this.#random(),
      transmit: (neighbour, frame) => {
        this.#linksReady?.send(neighbour, frame)
      },
      deliver: (delivery) => {
        if (!delivery.datagram) return this.#onDeliver(delivery)
        if (looksLikeRoomFrame(delivery.payload)) this.rooms.receive(delivery.payload)
        return undefined
      },
      stateChanged: (change) => this.#onStateChanged(change),
      wakeAt: (time) => this.#wakeAt(time),
      log: this.#log,
    }
    this.#core = createMeshRouter({
      self: this.#tag,
      host,
      store,
      ...(options.mesh ? { config: options.mesh } : {}),
    })
    this.rooms = new NodeRooms({
      store,
      identity,
      log: this.#log,
      send: (account, frame, ttlMs) => {
        if (this.#stopped) return
        this.#core.send(destinationTag(account), frame, { datagram: true, ttlMs })
      },
      distance: (account) => {
        const tag = destinationTag(account)
        return bytesEqual(tag, this.#tag) ? 0 : this.#core.metricTo(tag)
      },
      step: (fn) => this.#step(fn),
      card: () => this.#card,
      entry: (event) => this.#announce.push(() => this.emit('room:entry', event)),
    })
    this.#links = Libp2pLinks.create({
      privateKey: peerKey,
      ...(options.listen ? { listen: options.listen } : {}),
      bootstrap: [...(options.bootstrap ?? []), ...this.#contactAddresses()],
      mdns: options.mdns ?? true,
      ...(options.allowPeer ? { allowPeer: options.allowPeer } : {}),
      store,
      log: this.#log,
      handlers: {
        linkUp: (peer, mtu) => {
          this.#log('info', 'link up', { peer })
          this.#step(() => this.#core.linkUp(peer, mtu))
          this.emit('link:up', peer)
        },
        linkDown: (peer) => {
          this.#log('info', 'link down', { peer })
          this.#step(() => this.#core.linkDown(peer))
          this.emit('link:down', peer)
        },
        frames: (peer, frames) =>
          this.#step(() => {
            for (const frame of frames) this.#core.receive(peer, frame)
          }),
      },
    })
  }

  /** This account's text ID. */
  get id(): string {
    return this.identity.id
  }

  /** This account's contact link. */
  get link(): string {
    return toContactLink(decodeContactCard(this.#card))
  }

  /** This device's libp2p peer ID (empty until the links are built). */
  get peerId(): string {
    return this.#linksReady?.peerId ?? ''
  }

  /** Listening addresses, each with `/p2p/<peer>`. */
  addresses(): string[] {
    return this.#linksReady?.addresses() ?? []
  }

  get running(): boolean {
    return this.#running
  }

  /** Goes online: listens, discovers, dials. */
  async start(): Promise<void> {
    if (this.#stopped) throw new TalkenError('closed', 'this node was stopped; create a new one')
    if (this.#running) return
    const links = await this.#links
    this.#linksReady = links
    await links.start()
    this.#running = true
    this.#rememberPort(links.addresses())
    this.#refreshCard(links.addresses())
    this.#log('info', 'node started', { id: this.id, peerId: links.peerId, addresses: links.addresses() })
  }

  /** Goes offline and closes the store if the node opened it. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    this.#running = false
    clearTimeout(this.#timer)
    this.rooms.stop()
    try {
      await (await this.#links).stop()
    } finally {
      this.emit('stopped')
      if (this.#ownsStore) this.store.close()
    }
  }

  /**
   * Sends `text` to a contact (a name, text ID, or unique prefix). The message is persisted before
   * this returns. Throws `unknown_contact`, `ambiguous_contact`, `too_large`, `invalid_argument`.
   */
  send(contactQuery: string, text: string): SendHandle {
    if (this.#stopped) throw new TalkenError('closed', 'this node was stopped')
    const contact = findContact(this.store, contactQuery)
    const now = Date.now()
    // Our card rides along until a message that carried this version of it was delivered.
    const cardHash = createHash('sha256').update(this.#card).digest()
    const delivered = this.store.kvGet(CARD_DELIVERED, contact.id)
    const withCard = delivered === undefined || !bytesEqual(delivered, cardHash)
    const content = encodeDirectMessage(
      this.identity,
      withCard ? this.#card : new Uint8Array(0),
      contact.accountKey,
      text,
      now,
    )
    const changes: StateChange[] = []
    this.#pending = changes
    let id: string
    try {
      // Sealing advances the session: it commits with the outbox entry, or not at all.
      id = this.store.transaction(() =>
        this.#sendSealed(contact, content, now, {
          ...(this.#options.ttlMs === undefined ? {} : { ttlMs: this.#options.ttlMs }),
          filing: { conversation: contact.id, body: Buffer.from(text, 'utf8') },
        }),
      )
    } finally {
      this.#pending = undefined
    }
    if (withCard) this.#cardCarriers.set(id, { contact: contact.id, cardHash })
    const handle = new SendHandle(id, contact.id)
    this.#handles.set(id, handle)
    for (const change of changes) this.#onStateChanged(change)
    return handle
  }

  /**
   * Marks a contact's incoming messages read, and (unless turned off for that contact) tells them
   * with a read receipt. Returns how many messages were newly read.
   */
  markRead(contactQuery: string): number {
    if (this.#stopped) throw new TalkenError('closed', 'this node was stopped')
    const contact = findContact(this.store, contactQuery)
    const unread = unreadIncoming(this.store, contact.id)
    if (unread.length === 0) return 0
    const now = Date.now()
    const ids = unread.map((m) => m.id)
    this.store.transaction(() => {
      for (const id of ids) this.store.setMessageState(id, 'read', now)
      if (receiptsEnabled(this.store, contact.id)) this.#sendIdLists(contact, ids, encodeReadReceipt, now)
    })
    return ids.length
  }

  /** Turns read receipts to a contact on or off (on by default). */
  setReadReceipts(contactQuery: string, on: boolean): void {
    setReceiptsEnabled(this.store, findContact(this.store, contactQuery).id, on)
  }

  /**
   * Incoming messages as they arrive, from the moment of this call (not of the first `next()`),
   * until the node stops or the loop breaks.
   */
  messages(): AsyncIterableIterator<IncomingMessage> {
    const queue: IncomingMessage[] = []
    let wake: (() => void) | undefined
    let done = false
    const onMessage = (m: IncomingMessage): void => {
      queue.push(m)
      wake?.()
    }
    const finish = (): void => {
      done = true
      this.off('message', onMessage)
      this.off('stopped', finish)
      wake?.()
    }
    this.on('message', onMessage)
    this.on('stopped', finish)
    if (this.#stopped) finish()
    const iterator: AsyncIterableIterator<IncomingMessage> = {
      next: async () => {
        while (queue.length === 0 && !done) {
          await new Promise<void>((resolve) => {
            wake = resolve
          })
          wake = undefined
        }
        const value = queue.shift()
        return value === undefined ? { done: true, value: undefined } : { done: false, value }
      },
      return: async () => {
        finish()
        queue.length = 0
        return { done: true, value: undefined }
      },
      [Symbol.asyncIterator]: () => iterator,
    }
    return iterator
  }

  /** Connected devices and whether each is a mesh link. */
  peers(): PeerInfo[] {
    const tags = new Map(this.#core.neighbours().map((n) => [n.id, n.tag]))
    const contacts = this.#contactsByTag()
    return (this.#linksReady?.connectedPeers() ?? []).map((p) => {
      const tag = tags.get(p.peerId)
      return { ...p, contact: tag === undefined ? undefined : contacts.get(tag)?.name }
    })
  }

  /** The mesh's selected routes. */
  routes(): RouteInfo[] {
    const contacts = this.#contactsByTag()
    return this.#core.routes().map((r) => ({
      destination: r.dest,
      contact: contacts.get(r.dest)?.name,
      nextHop: r.nextHop,
      metric: r.metric,
    }))
  }

  status(): NodeStatus {
    const profile = this.store.getIdentity()
    const custody = this.store.custodyUsage()
    const links = this.#linksReady
    return {
      id: this.id,
      name: profile?.name ?? '',
      peerId: this.peerId,
      addresses: this.addresses(),
      running: this.#running,
      peers: links?.connectedPeers().length ?? 0,
      routes: this.#core.routes().length,
      outbox: this.store.outboxSize(),
      custody: { count: custody.count, bytes: custody.bytes },
      mesh: { ...this.#core.stats },
      links: { ...(links?.stats ?? { framesIn: 0, framesOut: 0, framesDropped: 0, badStreams: 0 }) },
      rejected: this.#rejected,
    }
  }

  /** Dials an address now, and keeps redialling it. */
  async dial(address: string): Promise<void> {
    const links = this.#linksReady
    if (links === undefined) throw new TalkenError('closed', 'the node is not running')
    await links.dial(address)
  }

  /** The libp2p links (for tests and tools that need the raw libp2p node). */
  get links(): Libp2pLinks | undefined {
    return this.#linksReady
  }

  // ------------------------------------------------------------------------------------------

  #rememberPort(addresses: readonly string[]): void {
    if (this.#options.listen?.[0] !== undefined && !this.#options.listen[0].startsWith('/ip4/0.0.0.0/'))
      return
    const port = Number(/\/tcp\/(\d+)\//.exec(addresses[0] ?? '')?.[1] ?? 0)
    if (port > 0 && port < 65536) this.store.kvSet(...PORT_KEY, new Uint8Array([port >> 8, port & 0xff]))
  }

  /** Re-signs our card when its addresses (if given) or this device's prekeys changed. */
  #refreshCard(addresses?: readonly string[]): void {
    const fresh = refreshOwnCard(this.store, this.identity, this.#e2e.cardExtension(), addresses)
    if (fresh === undefined) return
    this.#card = fresh.card
    this.#log('info', 'contact card re-signed', { addresses: fresh.addresses, prekeys: fresh.prekeysChanged })
  }

  /**
   * Seals `content` for `contact` with a fresh delivery proof inside, and hands it to the mesh
   * (in the caller's transaction). Returns the message ID.
   */
  #sendSealed(contact: Contact, content: Uint8Array, now: number, options: SendOptions): string {
    const peer = this.#sessionPeer(contact)
    // The mesh acknowledges the envelope only with this secret, which only the recipient reads.
    const ackSecret = randomBytes(ACK_SECRET_LENGTH)
    const sealed = this.#e2e.seal(peer, content, { sentAt: now, deliverySecret: ackSecret })
    const id = this.#core.send(destinationTag(contact.accountKey), sealed, { ...options, ackSecret })
    // A prekey message: once it is delivered, the peer holds the session and later messages can
    // be plain ratchet messages (no fresh X25519 key and no prekey header each time).
    const baseKey = this.#e2e.pendingBaseKey(peer.deviceKey)
    if (baseKey !== undefined) this.#prekeyCarriers.set(id, { deviceKey: peer.deviceKey, baseKey })
    return id
  }

  /**
   * Sends message IDs to `contact` as read receipts or resend requests, 64 to a message, filed out
   * of sight (in the caller's transaction).
   */
  #sendIdLists(
    contact: Contact,
    ids: readonly string[],
    encode: typeof encodeReadReceipt,
    now: number,
  ): void {
    for (let i = 0; i < ids.length; i += MAX_RECEIPT_IDS) {
      const content = encode(
        this.identity,
        new Uint8Array(0),
        contact.accountKey,
        ids.slice(i, i + MAX_RECEIPT_IDS),
        now,
      )
      this.#sendSealed(contact, content, now, {
        filing: { conversation: RECEIPTS_CONVERSATION, body: new Uint8Array(0) },
      })
    }
  }

  /** The device of `contact` to seal for, with its prekey bundle when no session exists yet. */
  #sessionPeer(contact: Contact): { deviceKey: Uint8Array; bundle?: PrekeyBundle } {
    const card = this.#cardBook.verified(contact.card)
    const withSession = card.devices.find((d) => this.#e2e.hasSession(d.deviceKey))
    if (withSession !== undefined) return { deviceKey: withSession.deviceKey }
    const extension = cardExtension(card, CardExtension.prekeys)
    if (extension === undefined) {
      throw new TalkenError(
        'unsupported_version',
        `${contact.name}'s link carries no prekeys (an older version): ask them for a fresh link`,
      )
    }
    const bundle = decodePrekeyBundle(extension)
    if (!card.devices.some((d) => bytesEqual(d.deviceKey, bundle.deviceKey))) {
      throw new TalkenError(
        'bad_signature',
        `the prekeys in ${contact.name}'s card belong to no device of theirs`,
      )
    }
    return { deviceKey: bundle.deviceKey, bundle }
  }

  /** Uniform in [0, 1) from the CSPRNG, drawn from a pool (one system call per 680 numbers). */
  #random(): number {
    if (this.#pool.offset + 6 > this.#pool.bytes.length) this.#pool = { bytes: randomBytes(4096), offset: 0 }
    const value = this.#pool.bytes.readUIntBE(this.#pool.offset, 6) / 2 ** 48
    this.#pool.offset += 6
    return value
  }

  #contactAddresses(): string[] {
    const out: string[] = []
    for (const contact of this.store.listContacts()) {
      try {
        out.push(...decodeContactCard(contact.card).addresses.filter((a) => a.startsWith('/')))
      } catch {
        // a stored card that no longer decodes has no addresses to offer
      }
    }
    return out
  }

  #contactsByTag(): Map<string, Contact> {
    const map = new Map<string, Contact>()
    for (const c of this.store.listContacts()) map.set(tagKey(destinationTag(c.accountKey)), c)
    return map
  }

  /** Called by the core inside its store transaction: file the message, announce it after. */
  #onDeliver(delivery: Delivery): MessageFiling {
    let message: ReturnType<typeof decodeDirectMessage>
    let ackSecret: Uint8Array
    try {
      // Decrypting advances the session inside the core's transaction, with the message record.
      const opened = this.#e2e.open(delivery.payload)
      ackSecret = opened.deliverySecret
      message = decodeDirectMessage(opened.content, this.identity.account.publicKey, (bytes) =>
        bytes.length === 0 ? this.#cardBook.ofDevice(opened.peerDeviceKey) : this.#cardBook.verified(bytes),
      )
      // The session's device must be one the sender's account certifies.
      if (!message.sender.devices.some((d) => bytesEqual(d.deviceKey, opened.peerDeviceKey))) {
        throw new TalkenError('bad_signature', "the sending device is not on the sender's card")
      }
      // A first contact used one of the one-time prekeys our card lists: list fresh ones. The
      // re-signed card rides inside every message we send, so contacts learn them through their
      // sessions; unused older prekeys stay valid for links already handed out.
      if (opened.firstContact) {
        this.#e2e.prekeys.replenishOneTimePrekeys()
        this.#refreshCard()
      }
    } catch (err) {
      this.#rejected++
      const reason = err instanceof TalkenError ? `${err.code}: ${err.message}` : String(err)
      this.#log('warn', 'refused an incoming message', { id: delivery.id, error: reason })
      this.#askToResend(err, delivery.id)
      return { ...REJECTED, refused: reason }
    }
    const receivedAt = Date.now()
    let contact: Contact
    try {
      const accepted = acceptContactCard(this.store, this.identity.account.publicKey, message.sender, {
        now: receivedAt,
      })
      contact = accepted.contact
      if (accepted.outcome === 'added') {
        // Someone we never added: they learn nothing about when we read until we say so.
        setReceiptsEnabled(this.store, contact.id, false)
        this.#log('info', 'a new contact wrote to you', { contact: contact.id })
      }
    } catch (err) {
      if (!isTalkenError(err) || err.code !== 'self_contact') throw err
      this.#rejected++
      this.#log('warn', 'refused a message that claims to come from this account', { id: delivery.id })
      return { ...REJECTED, refused: 'self_contact: it claims to come from this account' }
    }
    // Where the acknowledgement goes: the sender's tag, which relays never saw (mesh-payload.ts).
    const source = destinationTag(contact.accountKey)
    if (message.resendIds !== undefined) {
      const ids = message.resendIds
      this.#announce.push(() => this.#resend(contact, ids))
      return { conversation: RECEIPTS_CONVERSATION, body: new Uint8Array(0), ackSecret, source }
    }
    if (message.readIds !== undefined) {
      for (const { id, before } of applyReceipt(this.store, contact.id, message.readIds, receivedAt)) {
        if (before !== 'delivered') this.#readBeforeAck.add(id)
        this.#announce.push(() => this.#onStateChanged({ id, state: 'read' }, true))
      }
      return { conversation: RECEIPTS_CONVERSATION, body: new Uint8Array(0), ackSecret, source }
    }
    this.#announce.push(() =>
      this.emit('message', {
        id: delivery.id,
        from: contact.id,
        fromName: contact.name,
        text: message.text,
        sentAt: message.sentAt,
        receivedAt,
        hops: delivery.hops,
      }),
    )
    return { conversation: contact.id, body: Buffer.from(message.text, 'utf8'), ackSecret, source }
  }

  /**
   * A first message from a contact's device that we could not open because its one-time prekey
   * was taken already (a link shown to several people): ask that contact, in a session that works,
   * to send it again. Requests of one step go out together, once the step is stored.
   */
  #askToResend(err: unknown, id: string): void {
    const device = isTalkenError(err, 'not_found') ? err.details?.peerDevice : undefined
    if (typeof device !== 'string') return
    let contact: Contact | undefined
    try {
      const card = this.#cardBook.ofDevice(Buffer.from(device, 'hex'))
      contact = this.store.listContacts().find((c) => bytesEqual(c.accountKey, card.accountKey))
    } catch {
      return // not a contact's device: there is nobody to ask
    }
    if (contact === undefined) return
    const asks = this.#resendAsks.get(contact.id)
    if (asks !== undefined) {
      asks.push(id)
      return
    }
    this.#resendAsks.set(contact.id, [id])
    this.#announce.push(() => {
      const ids = this.#resendAsks.get(contact.id) ?? []
      this.#resendAsks.delete(contact.id)
      if (this.#stopped) return
      const now = Date.now()
      try {
        this.store.transaction(() => this.#sendIdLists(contact, ids, encodeResendRequest, now))
        this.#log('info', 'asked a contact to send again what we could not open', {
          contact: contact.id,
          messages: ids.length,
        })
      } catch (e) {
        this.#log('warn', 'could not ask a contact to send again', { error: (e as Error).message })
      }
    })
  }

  /**
   * A contact could not open some of our messages (their first-contact prekey was taken): send
   * each one still undelivered again, in the session the request came through, and give up the
   * old copy, saying which message replaced it.
   */
  #resend(contact: Contact, ids: readonly string[]): void {
    if (this.#stopped) return
    for (const id of ids) {
      const old = this.store.getMessage(id)
      if (old === undefined || old.direction !== 'out' || old.conversation !== contact.id) continue
      if (old.state !== 'queued' && old.state !== 'sent' && old.state !== 'relayed') continue
      try {
        const again = this.send(contact.id, Buffer.from(old.body).toString('utf8'))
        this.#core.abandon(
          id,
          `${contact.name} could not open it (its first-contact prekey was taken); sent again as ${again.id}`,
        )
        this.#log('info', 'sent a message again that its recipient could not open', {
          old: id,
          new: again.id,
        })
      } catch (e) {
        this.#log('warn', 'could not send a message again', { id, error: (e as Error).message })
      }
    }
  }

  /** Runs one step of the core, then announces what it delivered (once its records are stored). */
  #step(fn: () => void): void {
    try {
      // One transaction per step: a step's custody, outbox and state writes land together, and
      // cost one commit instead of one each.
      this.store.transaction(() => {
        fn()
        // Room frames delivered during the step are handled once the core has returned.
        this.rooms.drain()
      })
    } catch (err) {
      this.#announce.length = 0
      this.#log('error', 'mesh step failed', { error: (err as Error).message })
      this.emit('error', err as Error)
      return
    }
    const announce = this.#announce.splice(0)
    for (const a of announce) a()
  }

  #onStateChanged(change: StateChange, fromReceipt = false): void {
    if (this.#pending !== undefined) {
      this.#pending.push(change)
      return
    }
    const prekey = this.#prekeyCarriers.get(change.id)
    if (prekey !== undefined && FINAL_STATES.has(change.state)) {
      this.#prekeyCarriers.delete(change.id)
      if (change.state === 'delivered' || change.state === 'read') {
        this.#e2e.confirm(prekey.deviceKey, prekey.baseKey)
      }
    }
    if (!fromReceipt && this.#readBeforeAck.has(change.id)) {
      // The receipt came before the delivery acknowledgement: read stays read.
      if (change.state === 'delivered') this.store.setMessageState(change.id, 'read', Date.now())
      if (change.state === 'delivered' || change.state === 'expired' || change.state === 'failed') {
        this.#readBeforeAck.delete(change.id)
      }
      return
    }
    const handle = this.#handles.get(change.id)
    const conversation = handle?.to ?? this.store.getMessage(change.id)?.conversation
    if (conversation === undefined || conversation === RECEIPTS_CONVERSATION) return
    handle?.update(change.state, change.reason)
    const carrier = this.#cardCarriers.get(change.id)
    if (carrier !== undefined && (change.state === 'delivered' || change.state === 'read')) {
      this.store.kvSet(CARD_DELIVERED, carrier.contact, carrier.cardHash)
    }
    if (change.state === 'delivered' || change.state === 'expired' || change.state === 'failed') {
      this.#cardCarriers.delete(change.id)
    }
    if (change.state === 'delivered' || change.state === 'expired' || change.state === 'failed') {
      this.#handles.delete(change.id)
    }
    this.emit('state', {
      id: change.id,
      conversation,
      state: change.state,
      reason: change.reason,
    })
  }

  #wakeAt(time: number): void {
    if (this.#stopped || time >= this.#timerAt) return
    clearTimeout(this.#timer)
    this.#timerAt = time
    this.#timer = setTimeout(
      () => {
        this.#timerAt = Number.POSITIVE_INFINITY
        this.#timer = undefined
        if (this.#stopped) return
        this.#step(() => this.#core.timer())
      },
      Math.max(0, Math.min(time - Date.now(), 2 ** 31 - 1)),
    )
    this.#timer.unref?.()
  }
}
