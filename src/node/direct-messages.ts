/**
 * Direct messages between two accounts, on top of the mesh core and the end-to-end sessions:
 * sending (sealed, with the delivery proof inside), receiving (opened, verified, filed exactly
 * once), delivery states, read receipts, and the repair of messages a recipient cannot open: first
 * contacts that collided on a one-time prekey (resend requests), and messages to a device that
 * lost its sessions (a re-install) and started a new one. The node wires it to its core and
 * announces what it reports once the core's step is stored.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { OpenedMessage, SessionStore } from '../e2e/session-store.ts'
import { decodePrekeyBundle, type PrekeyBundle } from '../e2e/x3dh.ts'
import { isStorageFailure, isTalkenError, TalkenError } from '../errors.ts'
import { CardExtension, type ContactCard, cardExtension } from '../identity/contact-card.ts'
import type { Identity } from '../identity/identity.ts'
import { toTextId } from '../identity/text-id.ts'
import { BoundedMap } from '../mesh/bounded-map.ts'
import type { MeshCore } from '../mesh/mesh-core.ts'
import { ACK_SECRET_LENGTH } from '../mesh/mesh-payload.ts'
import type { Delivery, Logger, MessageFiling, SendOptions, StateChange } from '../mesh/router.ts'
import {
  decodeDirectMessage,
  encodeDirectMessage,
  encodeIdList,
  type IdListKind,
  MAX_RECEIPT_IDS,
} from '../messaging/direct-message.ts'
import type { Contact, DeliveryState, MessageRecord, Store } from '../store/store.ts'
import { bytesEqual, decodeCbor, encodeCbor, FieldReader } from '../wire/cbor.ts'
import { type AskedParty, AskLimits } from './ask-limits.ts'
import type { CardBook } from './card-book.ts'
import { Carriers } from './carriers.ts'
import { acceptContactCard, findContact } from './contacts.ts'
import { destinationTag } from './destination-tag.ts'
import type { IncomingMessage, MessageStateEvent } from './node.ts'
import {
  applyReceipt,
  RECEIPTS_CONVERSATION,
  receiptsEnabled,
  setReceiptsEnabled,
  unreadIncoming,
} from './receipts.ts'
import { SendHandle } from './send-handle.ts'

/** kv namespace: per contact, the hash of our card as last delivered to them. */
const CARD_DELIVERED = 'card-delivered'
/** kv namespaces: messages in flight carrying our card, and prekey messages in flight (carriers.ts). */
const CARD_CARRIERS = 'dm/card-carriers'
const PREKEY_CARRIERS = 'dm/prekey-carriers'
/**
 * kv namespace: per peer device (hex), the earliest time, by that device's clock, at which it
 * sealed a message we opened (8 bytes, uint64 BE Unix ms). A first contact from it sealed later
 * shows that it held a session with us then and none when it sealed that one: it lost them.
 */
const HEARD_SINCE = 'dm/heard-since'

/** Where a message that failed verification is filed: remembered (so never delivered twice), never shown. */
const REJECTED: MessageFiling = { conversation: '.rejected', body: new Uint8Array(0) }

/** Delivery states after which nothing more happens to a message (read may follow delivered). */
const FINAL_STATES: ReadonlySet<DeliveryState> = new Set(['delivered', 'read', 'expired', 'failed'])
/** Delivery states of an own message still on its way (what may be sent again). */
const ON_ITS_WAY: ReadonlySet<DeliveryState> = new Set(['queued', 'sent', 'relayed'])
/**
 * Refused first-contact bodies remembered (by hash): the mesh hands a refused envelope over again
 * until it expires (nothing acknowledges it), and anyone who saw it can replay it: asked once.
 */
const REFUSED_FIRST_CONTACTS = 1024
/** Send handles kept after delivery, to hear of `read`. */
const DELIVERED_HANDLES = 1024

/** The end of the reason a message given up because it was sent again gives: "… sent again as ID". */
const RESENT_AS = /sent again as ([0-9a-f]{32})$/

/**
 * Why messages are sent again: the recipient asked (a resend request), or the device they were
 * sealed for started a new session, having lost the one they were sealed in (a re-install).
 */
type ResendCause = 'asked' | 'started-over'

/** The reason a message given up because it was sent again gives; {@link resentAs} reads it back. */
function resentReason(contactName: string, cause: ResendCause, newId: string): string {
  const why =
    cause === 'asked'
      ? 'could not open it (its first-contact prekey was taken)'
      : 'lost the session it was sealed in (their device started a new one)'
  return `${contactName} ${why}; sent again as ${newId}`
}

/** The ID of the message that replaced one given up because it was sent again (from its state reason). */
export function resentAs(reason: string | undefined): string | undefined {
  return reason === undefined ? undefined : RESENT_AS.exec(reason)?.[1]
}

/** What {@link DirectMessages} needs from its node. */
export interface DirectHost {
  readonly store: Store
  readonly identity: Identity
  readonly e2e: SessionStore
  readonly cardBook: CardBook
  readonly core: Pick<MeshCore, 'send' | 'abandon' | 'settle' | 'ackTagFor'>
  readonly log: Logger
  /** Lifetime of a message, in milliseconds (default: the mesh's). */
  readonly ttlMs: number | undefined
  /** Our current contact card. */
  card(): Uint8Array
  /** Re-signs our card (fresh one-time prekeys after a first contact). */
  refreshCard(): void
  /** Runs `fn` once the core step under way (a delivery is always part of one) is stored. */
  afterStep(fn: () => void): void
  /** Runs `fn` as a step of its own: its writes land together, its announcements after. Whether they landed. */
  step(fn: () => void): boolean
  /**
   * Runs `fn` as a step of its own for a caller who waits on it: its writes land together, its
   * announcements after; if it is undone, its error is thrown. Returns what `fn` returned.
   */
  act<T>(fn: () => T): T
  stopped(): boolean
  /** A message arrived (announced after its step). */
  message(m: IncomingMessage): void
  /** One of our messages changed state. */
  state(e: MessageStateEvent): void
}

/** Why a resend request is sent (see {@link DirectMessages.deliver}'s refusals). */
type AskCause = 'first-contact' | 'session-gone' | 'chain'

/** Direct messages of one node. See the file comment. */
export class DirectMessages {
  readonly #host: DirectHost
  readonly #handles = new Map<string, SendHandle>()
  /** Receiving chains (tags) whose sender we asked to send again, for falling too far behind. */
  readonly #askedForChain = new BoundedMap<string, true>(256)
  /** Handles of delivered messages, until read (the newest {@link DELIVERED_HANDLES}). */
  readonly #deliveredHandles = new BoundedMap<string, SendHandle>(DELIVERED_HANDLES)
  /** Messages in flight that carry our card, to note when a contact has it. */
  readonly #cardCarriers: Carriers<{ contact: string; cardHash: Uint8Array }>
  /** Resend requests to send once the current step is stored, by contact ID. */
  readonly #resendAsks = new Map<string, string[]>()
  /** Prekey messages in flight (message ID → the session they belong to): see {@link #sendSealed}. */
  readonly #prekeyCarriers: Carriers<{ deviceKey: Uint8Array; baseKey: Uint8Array }>
  /** How many resend requests went to whom lately (ask-limits.ts). */
  readonly #asks: AskLimits
  /** Hashes of refused first-contact bodies we asked for ({@link REFUSED_FIRST_CONTACTS}). */
  readonly #refusedFirstContacts = new BoundedMap<string, true>(REFUSED_FIRST_CONTACTS)
  /** State changes reported while `send` is still recording the message. */
  #pending: StateChange[] | undefined
  #rejected = 0

  constructor(host: DirectHost) {
    this.#host = host
    this.#asks = new AskLimits(host.store)
    this.#cardCarriers = new Carriers(host.store, CARD_CARRIERS, {
      encode: (c) => encodeCbor([c.contact, c.cardHash]),
      decode: (bytes) => {
        const r = new FieldReader(decodeCbor(bytes, 256, 'card carrier'), 'card carrier', 2)
        return { contact: r.text('contact', 128), cardHash: r.bytes('cardHash', 32) }
      },
    })
    this.#prekeyCarriers = new Carriers(host.store, PREKEY_CARRIERS, {
      encode: (c) => encodeCbor([c.deviceKey, c.baseKey]),
      decode: (bytes) => {
        const r = new FieldReader(decodeCbor(bytes, 256, 'prekey carrier'), 'prekey carrier', 2)
        return { deviceKey: r.bytes('deviceKey', 32), baseKey: r.bytes('baseKey', 32) }
      },
    })
  }

  /** The node stopped: whoever waits on a send handle stops waiting (`closed`). */
  stop(): void {
    for (const handle of this.#handles.values()) handle.close()
  }

  /** Incoming messages refused so far (not opened, not verified, or from this account). */
  get rejected(): number {
    return this.#rejected
  }

  /**
   * Sends `text` to a contact (a name, text ID, or unique prefix). The message is persisted before
   * this returns. Throws `unknown_contact`, `ambiguous_contact`, `too_large`, `invalid_argument`.
   */
  send(contactQuery: string, text: string): SendHandle {
    if (this.#host.stopped()) throw new TalkenError('closed', 'this node was stopped')
    return this.#sendText(findContact(this.#host.store, contactQuery), text)
  }

  /**
   * Sends `text` to `contact` (see {@link send}). `writtenAt` is when its author wrote it, what
   * the message says as its `sentAt` (default: now): a message sent again keeps the time of the
   * one it replaces. The sealed body says when it was sealed.
   */
  #sendText(contact: Contact, text: string, writtenAt?: number): SendHandle {
    const now = Date.now()
    // Our card rides along until a message that carried this version of it was delivered.
    const cardHash = createHash('sha256').update(this.#host.card()).digest()
    const delivered = this.#host.store.kvGet(CARD_DELIVERED, contact.id)
    const withCard = delivered === undefined || !bytesEqual(delivered, cardHash)
    // A prekey body carries the card as its introduction: not twice.
    const content = (introduced: boolean) =>
      encodeDirectMessage(
        withCard && !introduced ? this.#host.card() : new Uint8Array(0),
        text,
        writtenAt ?? now,
      )
    const changes: StateChange[] = []
    this.#pending = changes
    let id: string
    try {
      // Sealing advances the session: it commits with the outbox entry, or not at all.
      id = this.#host.store.transaction(() => {
        const sent = this.#sendSealed(contact, content, now, {
          ...(this.#host.ttlMs === undefined ? {} : { ttlMs: this.#host.ttlMs }),
          filing: { conversation: contact.id, body: Buffer.from(text, 'utf8') },
          // Sent again: filed in the place of the one it replaces.
          ...(writtenAt === undefined ? {} : { createdAt: writtenAt }),
        })
        if (withCard) this.#cardCarriers.set(sent, { contact: contact.id, cardHash })
        return sent
      })
    } finally {
      this.#pending = undefined
    }
    const handle = new SendHandle(id, contact.id)
    handle.hold((announce) => this.#host.afterStep(announce))
    this.#handles.set(id, handle)
    // Sent in a step of the caller's (a message sent again) that is then undone: nothing to follow.
    this.#host.store.onRollback(() => this.#handles.delete(id))
    for (const change of changes) this.stateChanged(change)
    return handle
  }

  /**
   * Marks a contact's incoming messages read, and (unless turned off for that contact) tells them
   * with a read receipt. Returns how many messages were newly read.
   */
  markRead(contactQuery: string): number {
    if (this.#host.stopped()) throw new TalkenError('closed', 'this node was stopped')
    const contact = findContact(this.#host.store, contactQuery)
    const unread = unreadIncoming(this.#host.store, contact.id)
    if (unread.length === 0) return 0
    const now = Date.now()
    const ids = unread.map((m) => m.id)
    // A step: what the receipts' sending changes (the pump may hand other messages over, and
    // they become `sent`) is announced once it is stored, not before.
    this.#host.act(() => {
      for (const id of ids) this.#host.store.setMessageState(id, 'read', now)
      if (receiptsEnabled(this.#host.store, contact.id)) this.#sendIdLists(contact, ids, 'read', now)
    })
    return ids.length
  }

  /** Turns read receipts to a contact on or off (on by default). */
  setReadReceipts(contactQuery: string, on: boolean): void {
    setReceiptsEnabled(this.#host.store, findContact(this.#host.store, contactQuery).id, on)
  }

  /**
   * Seals `content` for `contact` with a fresh delivery proof inside, and hands it to the mesh
   * (in the caller's transaction). Returns the message ID. A prekey body (no session yet, or one
   * the contact has not confirmed) carries our card as its introduction, so that a recipient who
   * cannot open it (its one-time prekey taken) can still ask us to send it again; `content` is
   * told whether it is one.
   */
  #sendSealed(
    contact: Contact,
    content: Uint8Array | ((introduced: boolean) => Uint8Array),
    now: number,
    options: SendOptions,
    automatic = false,
  ): string {
    const peer = this.#sessionPeer(contact)
    const introduced = this.#host.e2e.introduces(peer.deviceKey)
    // The mesh acknowledges the envelope only with this secret, which only the recipient reads.
    const ackSecret = randomBytes(ACK_SECRET_LENGTH)
    // The acknowledgement comes back with the tag, which relays cannot link to the message.
    const ackTag = this.#host.core.ackTagFor(ackSecret)
    const sealed = this.#host.e2e.seal(peer, typeof content === 'function' ? content(introduced) : content, {
      sentAt: now,
      deliverySecret: ackSecret,
      ackTag,
      ...(introduced ? { introduction: this.#host.card() } : {}),
      ...(automatic ? { automatic } : {}),
    })
    const id = this.#host.core.send(destinationTag(contact.accountKey), sealed, { ...options, ackSecret })
    // A prekey message: once it is delivered, the peer holds the session and later messages can
    // be plain ratchet messages (no fresh X25519 key and no prekey header each time).
    const baseKey = this.#host.e2e.pendingBaseKey(peer.deviceKey)
    if (baseKey !== undefined) this.#prekeyCarriers.set(id, { deviceKey: peer.deviceKey, baseKey })
    return id
  }

  /**
   * Sends message IDs to `contact` as read receipts or resend requests, 64 to a message, filed out
   * of sight (in the caller's transaction). Sent by the node, not written by the user: unless the
   * user verified the contact, they do not make its device answered (session-store.ts
   * MAX_SESSION_DEVICES), so a stranger who provokes them cannot keep its session for good.
   */
  #sendIdLists(contact: Contact, ids: readonly string[], list: IdListKind, now: number): void {
    for (let i = 0; i < ids.length; i += MAX_RECEIPT_IDS) {
      const content = encodeIdList(list, new Uint8Array(0), ids.slice(i, i + MAX_RECEIPT_IDS), now)
      this.#sendSealed(
        contact,
        content,
        now,
        { filing: { conversation: RECEIPTS_CONVERSATION, body: new Uint8Array(0) } },
        !contact.verified,
      )
    }
  }

  /** The device of `contact` to seal for, with its prekey bundle when no session exists yet. */
  #sessionPeer(contact: Contact): { deviceKey: Uint8Array; bundle?: PrekeyBundle } {
    const card = this.#host.cardBook.verified(contact.card)
    // A device bound to another account is not this contact's, whatever its card lists.
    const ours = (deviceKey: Uint8Array): boolean => {
      const bound = this.#host.cardBook.boundTo(deviceKey)
      return bound === undefined || bound === contact.id
    }
    const withSession = card.devices.find((d) => ours(d.deviceKey) && this.#host.e2e.hasSession(d.deviceKey))
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
    if (!ours(bundle.deviceKey)) {
      throw new TalkenError(
        'bad_signature',
        `the prekeys in ${contact.name}'s card belong to a device of another account`,
      )
    }
    return { deviceKey: bundle.deviceKey, bundle }
  }

  /** Called by the core inside its store transaction: file the message, announce it after. */
  deliver(delivery: Delivery): MessageFiling {
    let message: ReturnType<typeof decodeDirectMessage>
    let ackSecret: Uint8Array
    let ackTag: Uint8Array
    // The stored contact, when the message came without a card (the usual case): nothing to accept.
    let known: Contact | undefined
    // The sending device, when it started a new session having lost the one it held with us.
    let startedOver: Uint8Array | undefined
    try {
      // Decrypting advances the session inside the core's transaction, with the message record.
      // In a transaction of its own within it: a message refused after it opened (its card does
      // not verify, or names another account) leaves no session, no prekey used and no replay
      // record behind, so junk from strangers costs nothing that stays.
      const filed = this.#host.store.transaction(() => {
        let opened: OpenedMessage
        try {
          opened = this.#host.e2e.open(delivery.payload)
        } catch (err) {
          // Refused, but the session took the ratchet step the message asked for: that write
          // stays (session-store.ts, tryOpen), and the refusal is raised once it is kept.
          if (isTalkenError(err, 'too_large') && err.details?.stepped === true) return err
          throw err
        }
        const content = decodeDirectMessage(opened.content, (bytes) => {
          if (bytes.length > 0) return this.#host.cardBook.verified(bytes)
          // A prekey body: the card came as its introduction.
          if (opened.introduction !== undefined) return this.#host.cardBook.verified(opened.introduction)
          const found = this.#host.cardBook.ofDevice(opened.peerDeviceKey)
          known = found.contact
          return found.card
        })
        // The session authenticates the sending device (X3DH bound its identity key); this binds
        // that device to the account the card names. Messages carry no signature of their own.
        if (!content.sender.devices.some((d) => bytesEqual(d.deviceKey, opened.peerDeviceKey))) {
          throw new TalkenError('bad_signature', "the sending device is not on the sender's card")
        }
        if (bytesEqual(content.sender.accountKey, this.#host.identity.account.publicKey)) {
          throw new TalkenError('self_contact', 'it claims to come from this account')
        }
        // The device named this account itself: what it sends without a card is this account's,
        // whichever other cards list its key (card-book.ts).
        if (known === undefined)
          this.#host.cardBook.bind(opened.peerDeviceKey, toTextId(content.sender.accountKey))
        // A first contact used one of the one-time prekeys our card lists: list fresh ones. The
        // re-signed card rides inside every message we send, so contacts learn them through their
        // sessions; unused older prekeys stay valid for links already handed out.
        if (opened.firstContact) {
          this.#host.e2e.prekeys.replenishOneTimePrekeys()
          this.#host.refreshCard()
        }
        const over = this.#heardFrom(opened) ? opened.peerDeviceKey : undefined
        return { message: content, ackSecret: opened.deliverySecret, ackTag: opened.ackTag, over }
      })
      if (filed instanceof TalkenError) throw filed
      ;({ message, ackSecret, ackTag, over: startedOver } = filed)
    } catch (err) {
      // A write that did not fit is not the message's fault: the mesh refuses it, and it comes again.
      if (isStorageFailure(err)) throw err
      this.#rejected++
      const reason = err instanceof TalkenError ? `${err.code}: ${err.message}` : String(err)
      this.#host.log('warn', 'refused an incoming message', { id: delivery.id, error: reason })
      this.#askToResend(err, delivery)
      return { ...REJECTED, refused: reason }
    }
    const receivedAt = Date.now()
    const contact = known ?? this.#acceptSender(message.sender, receivedAt)
    if (contact === undefined) {
      this.#rejected++
      this.#host.log('warn', 'refused a message that claims to come from this account', { id: delivery.id })
      return { ...REJECTED, refused: 'self_contact: it claims to come from this account' }
    }
    // Where the acknowledgement goes: the sender's tag, which relays never saw (mesh-payload.ts).
    const source = destinationTag(contact.accountKey)
    // Before whatever this message asks: a resend request in it finds those sent again already.
    if (startedOver !== undefined) this.#resendToNewSession(contact, startedOver)
    if (message.resendIds !== undefined) {
      const ids = message.resendIds
      this.#host.afterStep(() => this.#resend(contact, ids, 'asked'))
      return { conversation: RECEIPTS_CONVERSATION, body: new Uint8Array(0), ackSecret, ackTag, source }
    }
    if (message.readIds !== undefined) {
      for (const { id, before } of applyReceipt(this.#host.store, contact.id, message.readIds, receivedAt)) {
        // A receipt proves delivery as well (only the recipient can send it, in its session): a
        // message still in flight is settled as read and leaves the outbox; the core says so.
        if (before !== 'delivered' && this.#host.core.settle(id)) continue
        this.#host.afterStep(() => this.stateChanged({ id, state: 'read' }))
      }
      return { conversation: RECEIPTS_CONVERSATION, body: new Uint8Array(0), ackSecret, ackTag, source }
    }
    this.#host.afterStep(() =>
      this.#host.message({
        id: delivery.id,
        from: contact.id,
        fromName: contact.name,
        text: message.text,
        sentAt: message.sentAt,
        receivedAt,
        hops: delivery.hops,
      }),
    )
    return { conversation: contact.id, body: Buffer.from(message.text, 'utf8'), ackSecret, ackTag, source }
  }

  /**
   * Notes that we opened a message from a device (in the caller's transaction), and says whether
   * it started a new session having lost the one it held with us. A device seals a first contact
   * only when it holds no session with ours (session-store.ts `seal`), and it never drops one it
   * wrote in. So a first contact sealed later, by its own clock, than a message it sent before
   * means it lost its sessions since (a re-install that kept the key file): what we sealed in the
   * old ones it can no longer open, and refuses without a word. Two devices that write first to
   * each other at once are not taken for that: each sealed its first contact before it held any
   * session, so everything else from it was sealed later. Nor is a contact's new device (nothing
   * heard from it before). A device whose clock went back since is missed (nothing is sent again).
   */
  #heardFrom(opened: OpenedMessage): boolean {
    const key = Buffer.from(opened.peerDeviceKey).toString('hex')
    const stored = this.#host.store.kvGet(HEARD_SINCE, key)
    const since = stored?.length === 8 ? Number(Buffer.from(stored).readBigUInt64BE()) : undefined
    if (since === undefined || opened.sentAt < since) {
      const value = Buffer.alloc(8)
      value.writeBigUInt64BE(BigInt(opened.sentAt))
      this.#host.store.kvSet(HEARD_SINCE, key, value)
    }
    return opened.firstContact && since !== undefined && since < opened.sentAt
  }

  /**
   * `device` of `contact` lost its sessions with us and started a new one (see {@link #heardFrom}):
   * our messages to the contact still on their way were sealed in the old ones, which it refuses.
   * Sends each again in the new session, oldest first, giving up the old copy (as a resend request
   * would), once the step is stored. They can never be opened there, so it gets each one once. Our
   * card rides along again: with its store, it lost what we had delivered.
   */
  #resendToNewSession(contact: Contact, device: Uint8Array): void {
    let sealedFor: Uint8Array
    try {
      sealedFor = this.#sessionPeer(contact).deviceKey
    } catch {
      return // nothing we can seal for: nothing was sealed for it either
    }
    // Our messages went to another device of the contact's, which still opens them.
    if (!bytesEqual(sealedFor, device)) return
    this.#host.store.kvDelete(CARD_DELIVERED, contact.id)
    const ids: string[] = []
    for (const entry of this.#host.store.listOutboxDue(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)) {
      const m = this.#host.store.getMessage(entry.messageId)
      if (m?.direction === 'out' && m.conversation === contact.id && ON_ITS_WAY.has(m.state)) ids.push(m.id)
    }
    this.#host.log('info', "a contact's device started a new session: sending again what it lost", {
      contact: contact.id,
      messages: ids.length,
    })
    if (ids.length > 0) this.#host.afterStep(() => this.#resend(contact, ids, 'started-over'))
  }

  /** The contact a card names, added (unverified) if new; undefined if it is this account's. */
  #acceptSender(card: ContactCard, now: number): Contact | undefined {
    try {
      const accepted = acceptContactCard(this.#host.store, this.#host.identity.account.publicKey, card, {
        now,
        stranger: true,
      })
      if (accepted.outcome === 'added') {
        // Someone we never added: they learn nothing about when we read until we say so.
        setReceiptsEnabled(this.#host.store, accepted.contact.id, false)
        this.#host.log('info', 'a new contact wrote to you', { contact: accepted.contact.id })
      }
      return accepted.contact
    } catch (err) {
      if (isTalkenError(err, 'self_contact')) return undefined
      throw err
    }
  }

  /**
   * A first message that we could not open because its one-time prekey was taken already (a link
   * shown to several people), or a message of a chain that fell too far behind: ask its sender, in
   * a session that works, to send it again. The sender is a contact's device, or someone new whose
   * card came as the message's introduction (authenticated by its identity key: see session.ts),
   * who becomes a contact as if the message had opened. Requests of one step go out together, once
   * the step is stored.
   *
   * A first message is asked for only when something binds it to its sender: its introduction,
   * whose tag only the holder of the sender's identity key could make (every prekey message we
   * seal carries one), or its having opened once (its session since forgotten). The identity
   * signature alone never changes, and every device the sender ever wrote to first holds it: with
   * it anyone could name a contact's device as the sender of junk, and have us ask that contact
   * to send again. Each body is asked for once, and every ask counts against limits
   * ({@link #contactOfDevice}).
   */
  #askToResend(err: unknown, delivery: Delivery): void {
    if (!isTalkenError(err, 'not_found') && !isTalkenError(err, 'too_large')) return
    const device = err.details?.peerDevice
    if (typeof device !== 'string') return
    const introduction = err.details?.introduction
    let cause: AskCause
    let remember: (() => void) | undefined
    if (err.code === 'too_large') {
      // Our receiving chain fell too far behind (the sender's messages before this one all lost).
      // Our answer, the first of our newest sending chain, makes the sender start a new chain,
      // taken whatever came before. Once per chain: asking again would not help.
      const chain = err.details?.chain
      if (typeof chain !== 'string' || this.#askedForChain.has(chain)) return
      cause = 'chain'
      remember = () => this.#host.store.onRollback(this.#askedForChain.setUndoably(chain, true))
    } else {
      const body = createHash('sha256').update(delivery.payload).digest('hex')
      if (this.#refusedFirstContacts.has(body)) return
      cause = err.details?.seen === true ? 'session-gone' : 'first-contact'
      if (cause === 'first-contact' && typeof introduction !== 'string') {
        this.#host.log('warn', 'not asking for a first message again: nothing binds it to its sender', {
          id: delivery.id,
        })
        return
      }
      remember = () => this.#host.store.onRollback(this.#refusedFirstContacts.setUndoably(body, true))
    }
    const contact = this.#contactOfDevice(Buffer.from(device, 'hex'), introduction, cause)
    if (contact === undefined) return
    remember()
    const id = delivery.id
    let asks = this.#resendAsks.get(contact.id)
    if (asks === undefined) {
      asks = []
      this.#resendAsks.set(contact.id, asks)
    }
    const list = asks
    list.push(id)
    // Undone with its part of the step (the failed delivery comes again), the ask goes too.
    this.#host.store.onRollback(() => {
      const i = list.lastIndexOf(id)
      if (i >= 0) list.splice(i, 1)
      if (list.length === 0 && this.#resendAsks.get(contact.id) === list) this.#resendAsks.delete(contact.id)
    })
    // One announcement per ask, so that each ask that stays has one; the first sends them all.
    this.#host.afterStep(() => this.#sendResendAsks(contact))
  }

  /** Sends `contact` the resend requests gathered for them, if any are left. */
  #sendResendAsks(contact: Contact): void {
    const ids = this.#resendAsks.get(contact.id)
    this.#resendAsks.delete(contact.id)
    if (ids === undefined || ids.length === 0 || this.#host.stopped()) return
    const now = Date.now()
    try {
      // A step, as in markRead: what sending changes is announced once stored.
      this.#host.act(() => this.#sendIdLists(contact, ids, 'resend', now))
      this.#host.log('info', 'asked a contact to send again what we could not open', {
        contact: contact.id,
        messages: ids.length,
      })
    } catch (e) {
      this.#host.log('warn', 'could not ask a contact to send again', { error: (e as Error).message })
    }
  }

  /**
   * The contact a device belongs to, known or (from a verified introduction) new, to be asked to
   * send again for `cause`; undefined if there is none, or the ask would exceed a limit
   * (ask-limits.ts: per device, and shared by anyone unverified, or by verified contacts' first
   * messages). Someone unverified: someone new, an unverified contact (anyone with our link is one
   * after writing once), or the sender of a first message whose session is gone.
   */
  #contactOfDevice(device: Uint8Array, introduction: unknown, cause: AskCause): Contact | undefined {
    const now = Date.now()
    const key = Buffer.from(device).toString('hex')
    let known: Contact | undefined
    try {
      known = this.#host.cardBook.ofDevice(device).contact
    } catch {
      // not a contact's device
    }
    if (known !== undefined) {
      const party: AskedParty =
        !known.verified || cause === 'session-gone'
          ? 'unverified'
          : cause === 'first-contact'
            ? 'verified-first-contact'
            : 'verified-chain'
      if (!this.#mayAsk(now, key, party)) return undefined
      this.#asks.take(now, key, party)
      return known
    }
    if (typeof introduction !== 'string') return undefined // nobody to ask
    // Someone new: asking costs a contact, a session we write in and a request kept for a day,
    // and anyone holding our link can send such messages under fresh accounts. A few an hour.
    if (!this.#mayAsk(now, key, 'unverified')) return undefined
    let card: ContactCard
    try {
      card = this.#host.cardBook.verified(Buffer.from(introduction, 'hex'))
    } catch (e) {
      this.#host.log('warn', 'an undecryptable first message came with a card that does not verify', {
        error: (e as Error).message,
      })
      return undefined
    }
    if (!card.devices.some((d) => bytesEqual(d.deviceKey, device))) return undefined
    this.#asks.take(now, key, 'unverified')
    return this.#acceptSender(card, now)
  }

  /** Whether an ask to `device` (hex) of `party` is within the limits (ask-limits.ts); logged if not. */
  #mayAsk(now: number, device: string, party: AskedParty): boolean {
    const within = this.#asks.check(now, device, party)
    if (within === true) return true
    this.#host.log('warn', 'not asking for a message again: too many such requests lately', { ...within })
    return false
  }

  /**
   * A contact cannot open some of our messages (`cause`): send each one still undelivered again,
   * in the session we now write in, and give up the old copy, saying which message replaced it.
   * In the order they were written, whatever order they are named in (a request names them as
   * they came, and the mesh may reorder), and each new copy keeps the time of the one it replaces.
   */
  #resend(contact: Contact, ids: readonly string[], cause: ResendCause): void {
    if (this.#host.stopped()) return
    const olds: MessageRecord[] = []
    for (const id of new Set(ids)) {
      const old = this.#host.store.getMessage(id)
      if (old === undefined || old.direction !== 'out' || old.conversation !== contact.id) continue
      if (ON_ITS_WAY.has(old.state)) olds.push(old)
    }
    // As the conversation lists them (store.ts): by time, then ID.
    olds.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    for (const old of olds) {
      const id = old.id
      // The new copy and the old one given up land together, or neither: never two live copies.
      let again: SendHandle | undefined
      let refused: unknown
      let settled = false
      const kept = this.#host.step(() => {
        // The announcements of the steps before ran listeners, which may have changed things.
        settled = !ON_ITS_WAY.has(this.#host.store.getMessage(id)?.state ?? 'failed')
        if (settled) return
        try {
          if (this.#host.stopped()) throw new TalkenError('closed', 'this node was stopped')
          const current = findContact(this.#host.store, contact.id)
          again = this.#sendText(current, Buffer.from(old.body).toString('utf8'), old.createdAt)
        } catch (e) {
          refused = e
          return
        }
        this.#host.core.abandon(id, resentReason(contact.name, cause, again.id))
      })
      if (settled) continue
      if (kept && again !== undefined) {
        this.#host.log('info', 'sent a message again that its recipient could not open', {
          old: id,
          new: again.id,
        })
      } else {
        const error = refused instanceof Error ? refused.message : 'its step was not stored'
        this.#host.log('warn', 'could not send a message again', { id, error })
      }
    }
  }

  stateChanged(change: StateChange): void {
    if (this.#pending !== undefined) {
      this.#pending.push(change)
      return
    }
    const prekey = this.#prekeyCarriers.get(change.id)
    if (prekey !== undefined && FINAL_STATES.has(change.state)) {
      this.#prekeyCarriers.forget(change.id)
      if (change.state === 'delivered' || change.state === 'read') {
        this.#host.e2e.confirm(prekey.deviceKey, prekey.baseKey)
      }
    }
    const handle = this.#handles.get(change.id) ?? this.#deliveredHandles.get(change.id)
    const conversation = handle?.to ?? this.#host.store.getMessage(change.id)?.conversation
    if (conversation === undefined || conversation === RECEIPTS_CONVERSATION) return
    // Listeners hear of the state once it is stored (in a step: when the step commits).
    if (handle !== undefined) this.#host.afterStep(() => handle.update(change.state, change.reason))
    this.#host.afterStep(() =>
      this.#host.state({ id: change.id, conversation, state: change.state, reason: change.reason }),
    )
    const carrier = this.#cardCarriers.get(change.id)
    if (carrier !== undefined && (change.state === 'delivered' || change.state === 'read')) {
      this.#host.store.kvSet(CARD_DELIVERED, carrier.contact, carrier.cardHash)
    }
    if (FINAL_STATES.has(change.state)) {
      this.#cardCarriers.forget(change.id)
      this.#forgetUnlessUndone(this.#handles, change.id)
      // A delivered message may be read later: its handle hears that too, for a while.
      if (change.state === 'delivered' && handle !== undefined) {
        this.#host.store.onRollback(this.#deliveredHandles.setUndoably(change.id, handle))
      } else if (this.#deliveredHandles.has(change.id)) {
        const kept = this.#deliveredHandles.get(change.id)!
        this.#deliveredHandles.delete(change.id)
        this.#host.store.onRollback(() => this.#deliveredHandles.set(change.id, kept))
      }
    }
  }

  /**
   * Deletes `key` from `map`, and puts it back if the step under way is undone: the state change
   * comes again, and whatever waits on the message (a send handle, say) must still be there.
   */
  #forgetUnlessUndone<V>(map: Map<string, V>, key: string): void {
    const value = map.get(key)
    if (value === undefined) return
    map.delete(key)
    this.#host.store.onRollback(() => map.set(key, value))
  }
}
