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
 * and each is announced once, never again after a restart (copies that come again are known);
 * one stored just before the process died, before its event ran, is in the history (`inbox`,
 * `conversation`) but is not announced: an application that must see every message reads the
 * history when it starts.
 *
 * This file wires the parts together and runs them; direct messages live in direct-messages.ts,
 * rooms in rooms.ts.
 */
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { openSessionStore, type SessionStore } from '../e2e/session-store.ts'
import { TalkenError } from '../errors.ts'
import { looksLikeRoomFrame } from '../groups/room-transport.ts'
import { decodeContactCard } from '../identity/contact-card.ts'
import { toContactLink } from '../identity/contact-link.ts'
import type { Identity } from '../identity/identity.ts'
import { Libp2pLinks } from '../links/libp2p-links.ts'
import { checkMultiaddrs } from '../links/multiaddrs.ts'
import { createMeshRouter, type MeshCore } from '../mesh/mesh-core.ts'
import type { Logger, RouterHost } from '../mesh/router.ts'
import { tagKey } from '../mesh/routing-table.ts'
import type { Contact, Store } from '../store/store.ts'
import { bytesEqual } from '../wire/cbor.ts'
import { CardBook } from './card-book.ts'
import { contactDialAddresses } from './contacts.ts'
import { loadIdentity, openHome } from './data-dir.ts'
import { destinationTag } from './destination-tag.ts'
import { DirectMessages } from './direct-messages.ts'
import { emitToEach, oneError } from './emit-each.ts'
import { helloProof, verifyHelloProof } from './hello-proof.ts'
import { defaultListen, loadPeerKey, rememberPort } from './node-network.ts'
import type {
  IncomingMessage,
  NodeEvents,
  NodeOptions,
  NodeStatus,
  PeerInfo,
  RouteInfo,
} from './node-types.ts'
import { refreshOwnCard } from './own-card.ts'
import { NodeRooms } from './rooms.ts'
import type { SendHandle } from './send-handle.ts'
import { type StepFailure, Steps } from './steps.ts'

export { PEER_KEY_FILE } from './node-network.ts'
export type * from './node-types.ts'
export { SendHandle } from './send-handle.ts'

const silent: Logger = () => {}

/** How often a running node looks whether its signed prekey is due for rotation. */
const PREKEY_CHECK_MS = 24 * 3600_000

/** How long after a step that was undone the links are started again, at first and at most. */
const RESYNC_FIRST_DELAY_MS = 1_000
const RESYNC_MAX_DELAY_MS = 30_000

/** How long after a timer step that was undone the core's timer runs again, at first and at most. */
const TIMER_RETRY_FIRST_MS = 1_000
const TIMER_RETRY_MAX_MS = 30_000

/** Creates a node; call {@link TalkenNode.start} to go online. */
export async function createNode(options: NodeOptions): Promise<TalkenNode> {
  // The operator's own addresses fail here, loudly; those others gave us are skipped when bad.
  checkMultiaddrs(options.bootstrap ?? [], 'a bootstrap address')
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
    store = openHome({ home: options.home, durability: options.durability }).store
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
  readonly #direct: DirectMessages
  /** The rooms this account holds. */
  readonly rooms: NodeRooms
  readonly #links: Promise<Libp2pLinks>
  #linksReady: Libp2pLinks | undefined
  readonly #cardBook: CardBook
  #pool = { bytes: Buffer.alloc(0), offset: 0 }
  #timer: NodeJS.Timeout | undefined
  /** Looks daily whether the signed prekey is due for rotation (#rotatePrekeysIfDue). */
  #prekeyTimer: NodeJS.Timeout | undefined
  /** A resync is due (its timer), and how long the next one waits after a failure. */
  #resync: NodeJS.Timeout | undefined
  #resyncDelayMs = RESYNC_FIRST_DELAY_MS
  #timerAt = Number.POSITIVE_INFINITY
  /** Timer steps undone in a row, and until when the next one waits (see #timerStep). */
  #timerFailures = 0
  #timerHeldUntil = 0
  #running = false
  #stopped = false
  /** The start under way, if any. */
  #starting: Promise<void> | undefined
  /** Store transactions and what they announce (see {@link NodeEvents}). */
  readonly #steps: Steps
  /** Frames of the core's waiting for the writes under way to be stored (see #transmit). */
  readonly #outgoing: Array<[peer: string, frame: Uint8Array]> = []
  #flushDue = false

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
    this.#steps = new Steps(
      store,
      (err, what) => this.#failed(err, what),
      // The disk took a step's writes: a step undone later starts the backoff of #resyncSoon anew.
      () => {
        this.#resyncDelayMs = RESYNC_FIRST_DELAY_MS
      },
    )
    // The node's parts write through the steps' view of the store, which notes what they wrote.
    store = this.#steps.store
    const profile = store.getIdentity()
    if (profile === undefined) throw new TalkenError('no_identity', 'the store holds no profile')
    this.#card = profile.card
    this.#e2e = openSessionStore({
      store,
      device: identity.device,
      now: () => Date.now(),
      onUnreadable: (device, err) =>
        this.#log('error', 'a stored session could not be read: set aside, a new one will be started', {
          device: device.slice(0, 16),
          error: err instanceof Error ? err.message : String(err),
        }),
    })
    this.#cardBook = new CardBook(store)
    this.#refreshCard()
    this.#tag = destinationTag(identity.account.publicKey)
    const host: RouterHost = {
      now: () => Date.now(),
      random: () => this.#random(),
      transmit: (neighbour, frame) => this.#transmit(neighbour, frame),
      deliver: (delivery) => {
        if (!delivery.datagram) return this.#direct.deliver(delivery)
        if (looksLikeRoomFrame(delivery.payload)) this.rooms.receive(delivery.payload)
        return undefined
      },
      stateChanged: (change) => this.#direct.stateChanged(change),
      verifyHello: (neighbour, tag, proof) => this.#verifyHello(neighbour, tag, proof),
      wakeAt: (time) => this.#wakeAt(time),
      log: this.#log,
    }
    this.#core = createMeshRouter({
      self: this.#tag,
      host,
      store,
      helloProof: helloProof(identity.device, this.#tag, peerIdFromPrivateKey(peerKey).toString()),
      ...(options.mesh ? { config: options.mesh } : {}),
    })
    this.#direct = new DirectMessages({
      store,
      identity,
      e2e: this.#e2e,
      cardBook: this.#cardBook,
      core: this.#core,
      log: this.#log,
      ttlMs: options.ttlMs,
      card: () => this.#card,
      refreshCard: () => this.#refreshCard(),
      afterStep: (fn) => this.#steps.after(fn),
      step: (fn) => this.#step(fn),
      act: (fn) => this.#steps.act(fn),
      stopped: () => this.#stopped,
      message: (m) => this.#emitEach('message', m),
      state: (e) => this.#emitEach('state', e),
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
      act: (fn) =>
        this.#steps.act(() => {
          const result = fn()
          this.rooms.drain()
          return result
        }),
      card: () => this.#card,
      entry: (event) => this.#steps.after(() => this.#emitEach('room:entry', event)),
    })
    this.#links = Libp2pLinks.create({
      privateKey: peerKey,
      ...(options.listen ? { listen: options.listen } : {}),
      bootstrap: [...(options.bootstrap ?? []), ...contactDialAddresses(this.store.listContacts())],
      mdns: options.mdns ?? true,
      ...(options.allowPeer ? { allowPeer: options.allowPeer } : {}),
      store,
      log: this.#log,
      handlers: {
        linkUp: (peer, mtu) => {
          this.#log('info', 'link up', { peer })
          this.#step(() => this.#core.linkUp(peer, mtu))
          // Like every announcement: a listener that throws is reported, and stops nothing.
          this.#steps.after(() => this.#emitEach('link:up', peer))
        },
        linkDown: (peer) => {
          this.#log('info', 'link down', { peer })
          this.#step(() => this.#core.linkDown(peer))
          this.#steps.after(() => this.#emitEach('link:down', peer))
        },
        frames: (peer, frames) => this.#step(() => this.#core.receiveAll(peer, frames)),
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
    // One start at a time; stop() waits for it, so that nothing it starts outlives the node.
    this.#starting ??= this.#start().finally(() => {
      this.#starting = undefined
    })
    return this.#starting
  }

  async #start(): Promise<void> {
    const links = await this.#links
    this.#linksReady = links
    await links.start()
    if (this.#stopped) throw new TalkenError('closed', 'the node was stopped while it started')
    this.#running = true
    this.#rememberPort(links.addresses())
    // A rotation at start needs no re-signing of its own: the card is re-signed just after.
    this.#rotatePrekeysIfDue()
    this.#prekeyTimer = setInterval(() => {
      if (this.#rotatePrekeysIfDue()) this.#refreshCard()
    }, PREKEY_CHECK_MS)
    this.#prekeyTimer.unref?.()
    this.#refreshCard(links.addresses())
    this.#log('info', 'node started', { id: this.id, peerId: links.peerId, addresses: links.addresses() })
  }

  /** Goes offline and closes the store if the node opened it. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    this.#running = false
    clearTimeout(this.#timer)
    clearTimeout(this.#resync)
    clearInterval(this.#prekeyTimer)
    this.rooms.stop()
    this.#direct.stop()
    try {
      // A start under way finishes first (and then fails with `closed`): what it started stops here.
      await this.#starting?.catch(() => {})
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
    return this.#direct.send(contactQuery, text)
  }

  /**
   * Marks a contact's incoming messages read, and (unless turned off for that contact) tells them
   * with a read receipt. Returns how many messages were newly read.
   */
  markRead(contactQuery: string): number {
    return this.#direct.markRead(contactQuery)
  }

  /** Turns read receipts to a contact on or off (on by default). */
  setReadReceipts(contactQuery: string, on: boolean): void {
    this.#direct.setReadReceipts(contactQuery, on)
  }

  /**
   * Incoming messages as they arrive, from the moment of this call (not of the first `next()`),
   * until the node stops or the loop breaks.
   */
  messages(): AsyncIterableIterator<IncomingMessage> {
    const queue: IncomingMessage[] = []
    // Each `next()` not yet answered, first asked first: callers may ask again before an answer.
    const waiting: Array<(r: IteratorResult<IncomingMessage, undefined>) => void> = []
    let done = false
    const onMessage = (m: IncomingMessage): void => {
      const answer = waiting.shift()
      if (answer !== undefined) answer({ done: false, value: m })
      else queue.push(m)
    }
    const finish = (): void => {
      done = true
      this.off('message', onMessage)
      this.off('stopped', finish)
      for (const answer of waiting.splice(0)) answer({ done: true, value: undefined })
    }
    this.on('message', onMessage)
    this.on('stopped', finish)
    if (this.#stopped) finish()
    const iterator: AsyncIterableIterator<IncomingMessage> = {
      next: () => {
        const value = queue.shift()
        if (value !== undefined) return Promise.resolve({ done: false, value })
        if (done) return Promise.resolve({ done: true, value: undefined })
        return new Promise((resolve) => waiting.push(resolve))
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
    // Named only when the Hello proved it: anyone can claim a contact's tag.
    const tags = new Map(this.#core.neighbours().flatMap((n) => (n.verified ? [[n.id, n.tag]] : [])))
    const contacts = this.#contactsByTag()
    return (this.#linksReady?.connectedPeers() ?? []).map((p) => {
      const tag = tags.get(p.peerId)
      return { ...p, contact: tag === undefined ? undefined : contacts.get(tag)?.name }
    })
  }

  /** Whether a neighbour's Hello proves it speaks for a contact's account (hello-proof.ts). */
  #verifyHello(neighbour: string, tag: Uint8Array, proof: Uint8Array): boolean {
    const contact = this.#contactsByTag().get(tagKey(tag))
    if (contact === undefined) return false
    let devices: Uint8Array[]
    try {
      devices = this.#cardBook.verified(contact.card).devices.map((d) => d.deviceKey)
    } catch {
      return false // a stored card that no longer decodes proves nothing
    }
    return verifyHelloProof(devices, tag, neighbour, proof)
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
      rejected: this.#direct.rejected,
    }
  }

  /** Dials an address now, and keeps redialling it. */
  async dial(address: string): Promise<void> {
    const links = this.#linksReady
    if (links === undefined || this.#stopped) throw new TalkenError('closed', 'the node is not running')
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
    rememberPort(this.#steps.store, addresses)
  }

  /** Re-signs our card when its addresses (if given) or this device's prekeys changed. */
  #refreshCard(addresses?: readonly string[]): void {
    const fresh = refreshOwnCard(this.#steps.store, this.identity, this.#e2e.cardExtension(), addresses)
    if (fresh === undefined) return
    // Called in a step too (a first contact took a one-time prekey): undone with the step, the
    // card it stored is gone, and the one in memory goes back with it.
    const before = this.#card
    this.store.onRollback(() => {
      this.#card = before
    })
    this.#card = fresh.card
    this.#log('info', 'contact card re-signed', { addresses: fresh.addresses, prekeys: fresh.prekeysChanged })
  }

  /**
   * Replaces this device's signed prekey once it is a week old (PrekeyStore.rotateIfOlderThan);
   * the caller re-signs the card with the new bundle. The last four stay valid, so links handed
   * out in the last four weeks still work for a first contact. Returns whether it rotated.
   */
  #rotatePrekeysIfDue(): boolean {
    if (this.#stopped) return false
    try {
      if (this.#e2e.prekeys.rotateIfOlderThan() === undefined) return false
      this.#log('info', 'signed prekey rotated')
      return true
    } catch (err) {
      this.#log('warn', 'could not rotate the signed prekey', { error: (err as Error).message })
      return false
    }
  }

  /** Uniform in [0, 1) from the CSPRNG, drawn from a pool (one system call per 680 numbers). */
  #random(): number {
    if (this.#pool.offset + 6 > this.#pool.bytes.length) this.#pool = { bytes: randomBytes(4096), offset: 0 }
    const value = this.#pool.bytes.readUIntBE(this.#pool.offset, 6) / 2 ** 48
    this.#pool.offset += 6
    return value
  }

  #contactsByTag(): Map<string, Contact> {
    const map = new Map<string, Contact>()
    for (const c of this.store.listContacts()) map.set(tagKey(destinationTag(c.accountKey)), c)
    return map
  }

  /**
   * Sends a frame of the core's once the writes under way are stored, and never if the part of
   * them that sent it is undone: a hop acknowledgement or a delivery proof must not promise what
   * the disk did not keep (a commit can fail when the disk is full). Frames of one turn of the
   * event loop leave together, in order.
   */
  #transmit(neighbour: string, frame: Uint8Array): void {
    if (this.#stopped) return // its links are gone, and its store may be closed
    this.#steps.pushUnlessUndone(this.#outgoing, [neighbour, frame])
    if (this.#flushDue) return
    this.#flushDue = true
    // Store transactions are synchronous: by the microtask, each has committed or been undone.
    queueMicrotask(() => {
      this.#flushDue = false
      for (const [peer, f] of this.#outgoing.splice(0)) this.#linksReady?.send(peer, f)
    })
  }

  /**
   * Emits an event to each of its listeners: one that throws stops none of the others, and what
   * they threw is thrown after (announcements run in `Steps`, which reports it).
   */
  #emitEach<E extends 'message' | 'state' | 'room:entry' | 'link:up' | 'link:down'>(
    event: E,
    ...args: NodeEvents[E]
  ): void {
    const thrown = emitToEach(this, event, args)
    if (thrown.length > 0) throw oneError(thrown)
  }

  /** A step that was undone, or a listener that threw: logged, and emitted as `error`. */
  #failed(err: unknown, what: StepFailure): void {
    const message = err instanceof Error ? err.message : String(err)
    if (what === 'action') {
      // Its caller has the error (most often bad input: a name too long, a right the user lacks).
      this.#log('info', 'an action failed; its writes were undone', { error: message })
    } else {
      this.#log('error', what === 'announcement' ? 'a listener threw' : 'mesh step failed', {
        error: message,
      })
    }
    if (what !== 'announcement') this.#resyncSoon()
    // An action's caller has the error already.
    if (what !== 'action') this.#raise(err)
  }

  /**
   * After a step that was undone. Its writes and the frames it would have sent are gone, but the
   * mesh core's memory is not: it may believe it said Hello, a Summary or a route update that no
   * neighbour ever got, and wait for answers that never come. `resync` says all of that again to
   * every neighbour, keeping what they said to us. While steps keep being undone (the disk may
   * still be full), each resync waits twice as long as the one before, up to
   * {@link RESYNC_MAX_DELAY_MS}; the wait starts again from {@link RESYNC_FIRST_DELAY_MS} only once
   * a step that stored something has committed (`Steps`). A resync itself stores nothing, so its
   * commit says nothing of the disk: a timer step undone again just after it must not find the
   * backoff reset, or a full disk would cost a resync (a Summary, a Hello and the whole route
   * table to every neighbour) every second.
   */
  #resyncSoon(): void {
    if (this.#stopped || this.#resync !== undefined) return
    const delay = this.#resyncDelayMs
    this.#resyncDelayMs = Math.min(delay * 2, RESYNC_MAX_DELAY_MS)
    this.#resync = setTimeout(() => {
      this.#resync = undefined
      if (this.#stopped) return
      this.#step(() => this.#core.resync())
    }, delay)
    this.#resync.unref?.()
  }

  /**
   * Emits `err` as `error`; with no listener for that (or one that throws), throws on a later
   * tick instead, where an application sees it as an uncaught exception.
   */
  #raise(err: unknown): void {
    try {
      if (this.listenerCount('error') > 0) {
        this.emit('error', err as Error)
        return
      }
    } catch (thrown) {
      err = thrown
    }
    queueMicrotask(() => {
      throw err
    })
  }

  /**
   * Runs one step of the core (see steps.ts); room frames it delivered are handled at its end.
   * Returns whether its writes were kept.
   */
  #step(fn: () => void): boolean {
    return this.#steps.run(() => {
      fn()
      this.rooms.drain()
    })
  }

  /** The core asks to be woken at `time` (not before a timer step undone lets it: #timerStep). */
  #wakeAt(time: number): void {
    time = Math.max(time, this.#timerHeldUntil)
    if (this.#stopped || time >= this.#timerAt) return
    clearTimeout(this.#timer)
    this.#timerAt = time
    this.#timer = setTimeout(
      () => {
        this.#timerAt = Number.POSITIVE_INFINITY
        this.#timer = undefined
        if (this.#stopped) return
        this.#timerStep()
      },
      Math.max(0, Math.min(time - Date.now(), 2 ** 31 - 1)),
    )
    this.#timer.unref?.()
  }

  /**
   * Runs the core's timer as a step. When that step is undone at commit (a full disk), the core's
   * timer has returned already and knows nothing of it, while what it did (an expiry, a retry) is
   * due again at once: the next timer step waits, twice as long after each one undone, up to
   * {@link TIMER_RETRY_MAX_MS}, and until then the core's wake-ups wait too. One that commits
   * ends the wait.
   */
  #timerStep(): void {
    if (this.#step(() => this.#core.timer())) {
      this.#timerFailures = 0
      this.#timerHeldUntil = 0
      return
    }
    const delay = Math.min(TIMER_RETRY_MAX_MS, TIMER_RETRY_FIRST_MS * 2 ** this.#timerFailures++)
    this.#timerHeldUntil = Date.now() + delay
    // Woken then, and not before, whatever the undone step asked: what it did is due again.
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#timerAt = Number.POSITIVE_INFINITY
    this.#wakeAt(this.#timerHeldUntil)
  }
}
