/**
 * Sessions with every peer device, persisted in the store, behind two calls: {@link
 * SessionStore.seal} turns content into a sealed body for one peer device, {@link
 * SessionStore.open} turns a sealed body back into content and the device it came from.
 *
 * Sessions live in kv namespace `e2e-session`, one record per peer device (key: the device's
 * Ed25519 key in hex; value: {@link encodeSessionRecord}), up to three sessions per device with the
 * active one first (two devices that start sessions with each other at once both keep working).
 * Prekeys live in `e2e-prekeys` ({@link PrekeyStore}). Every call is transactional: it computes
 * on copies, writes in one store transaction, and only then updates its memory, so input that
 * fails leaves the store and the sessions exactly as they were.
 *
 * @example
 * const e2e = openSessionStore({ store, device: identity.device, now: Date.now })
 * const card = makeContactCard(identity, { name, extensions: [e2e.cardExtension()], now })
 * const payload = e2e.seal({ deviceKey, bundle }, content, { deliverySecret, ackTag })   // to an envelope
 * const { peerDeviceKey, content, deliverySecret, ackTag } = e2e.open(payload)          // from an envelope
 */
import { isTalkenError, TalkenError } from '../errors.ts'
import { CardExtension, type CardExtensionEntry } from '../identity/contact-card.ts'
import type { SigningKeyPair } from '../identity/ed25519.ts'
import type { Store } from '../store/store.ts'
import { PrekeyStore } from './prekey-store.ts'
import { bufferedRandom, type RandomSource, sha256, systemRandom } from './primitives.ts'
import { type BodyFailure, ENCRYPTED_HEADER_LENGTH, type MAX_GAP, RATCHET_OVERHEAD } from './ratchet.ts'
import {
  ACK_TAG_LENGTH,
  checkSealed,
  DELIVERY_SECRET_LENGTH,
  decodeSealedPlaintext,
  encodeSealedPlaintext,
  openSealedPrekey,
  paddedPlaintextLength,
  SEALED_VERSION,
  sealPrekeyMessage,
  sealRatchetMessage,
} from './sealed.ts'
import {
  acceptSession,
  createInitiatorSession,
  decodePrekeyMessage,
  decrypt,
  encrypt,
  type Session,
  stepToNextChain,
  tryDecrypt,
  verifyIntroduction,
} from './session.ts'
import { decodeSessionRecord, encodeSessionRecord, MAX_SESSIONS_PER_DEVICE } from './session-codec.ts'
import {
  type E2eIdentity,
  e2eIdentity,
  encodePrekeyBundle,
  type PrekeyBundle,
  verifyIdentityDh,
} from './x3dh.ts'

/** The kv namespace of sessions. */
export const SESSION_NAMESPACE = 'e2e-session'

const AD = Uint8Array.of(SEALED_VERSION)
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0

/** Options of {@link openSessionStore}. */
export interface SessionStoreOptions {
  readonly store: Store
  /** This device's Ed25519 key (its seed derives the identity DH key). */
  readonly device: SigningKeyPair
  /** Unix milliseconds. */
  readonly now: () => number
  readonly random?: RandomSource
  /** Devices with sessions kept, at most (see {@link MAX_SESSION_DEVICES}). */
  readonly maxDevices?: number
  /**
   * Told of each stored session record that cannot be read, and so was set aside (see
   * {@link UNREADABLE_SESSION_NAMESPACE}); by default nothing is told.
   */
  readonly onUnreadable?: (peerDeviceKey: string, err: unknown) => void
}

/**
 * Where a stored session record that cannot be read is set aside when the store opens, under the
 * same key: one bad record (damaged on disk, or written by a version with a defect) must not keep
 * the device from starting. That device's next first-contact message starts a new session; the
 * record is kept for inspection, and replaced by the next one set aside for the same device.
 */
export const UNREADABLE_SESSION_NAMESPACE = 'e2e-session-unreadable'

/**
 * Devices with sessions kept, at most. Beyond it, the least recently used device we never
 * answered (a stranger who wrote first) is forgotten: anyone with a contact link can start
 * sessions under fresh keys, and every incoming body is tried against every session's header
 * keys, so without a bound strangers could make each message cost more and more. A device is
 * answered once we sealed for it a message that was not {@link SealOptions.automatic}: what the
 * node sends by itself (a resend request, a receipt) to someone the user never wrote to does not
 * count, or a stranger could provoke one and keep its session for good. Answered devices' sessions
 * are never dropped.
 */
export const MAX_SESSION_DEVICES = 2048

/**
 * The kv namespace of devices we wrote to only automatically ({@link SealOptions.automatic}): key
 * the device's key in hex, value empty. Beside the session records, so that those keep their
 * format: a record stored before this namespace existed, with messages sent in it, counts as
 * answered, as it did; a version that does not know the namespace ignores it.
 */
export const UNANSWERED_NAMESPACE = 'e2e-session-unanswered'

/** True when we have sent a message in session `s` (whether or not automatically). */
function wroteIn(s: Session): boolean {
  return s.ratchet.ns !== 0 || s.ratchet.pn !== 0
}

/** Headers remembered as failed (see `failedHeaders` in {@link openSessionStore}). */
export const MAX_FAILED_BODIES = 1024
/**
 * How long a header seen failing is remembered, in milliseconds: what it remembers (the message
 * key its header led to) must not outlive the message by much, for forward secrecy.
 */
export const FAILED_BODY_MEMORY_MS = 10 * 60_000

/** A sealed body, opened. */
export interface OpenedMessage {
  /** The sending device's Ed25519 key: check that a contact's card certifies it. */
  readonly peerDeviceKey: Uint8Array
  readonly peerIdentityDh: Uint8Array
  readonly content: Uint8Array
  /** Unix milliseconds, by the sender's clock. */
  readonly sentAt: number
  /** The secret that proves delivery of the envelope that carried this body (its ID is the hash). */
  readonly deliverySecret: Uint8Array
  /** What the acknowledgement goes back with instead of the secret (mesh/ack-tags.ts). */
  readonly ackTag: Uint8Array
  /** True when this message started a new session (first contact from that device). */
  readonly firstContact: boolean
  /** The sender's introduction (its contact card), verified, when it came in a prekey body that had one. */
  readonly introduction?: Uint8Array
}

/** Options of {@link SessionStore.seal}. */
export interface SealOptions {
  /** Unix milliseconds (default: now). */
  readonly sentAt?: number
  /**
   * The mesh acknowledgement secret of the envelope that will carry the body
   * ({@link DELIVERY_SECRET_LENGTH} bytes; default: random).
   */
  readonly deliverySecret?: Uint8Array
  /** Its ack tag ({@link ACK_TAG_LENGTH} bytes, `MeshCore.ackTagFor`; default: random). */
  readonly ackTag?: Uint8Array
  /**
   * Our contact card, carried by prekey bodies only (authenticated, inside the outer layer): a
   * recipient that cannot open such a body, its one-time prekey taken, learns whom to ask to send
   * again. It counts against the content's room.
   */
  readonly introduction?: Uint8Array
  /**
   * A message the node sends by itself (a resend request, a read receipt), not one the user wrote:
   * sealing it does not make the device answered (see {@link MAX_SESSION_DEVICES}), so the session
   * of a stranger we sent only such messages stays among those forgotten beyond the bound.
   */
  readonly automatic?: boolean
}

/** End-to-end sessions of one device. */
export interface SessionStore {
  readonly identity: E2eIdentity
  readonly prekeys: PrekeyStore
  /** The current prekey bundle (made on first use). */
  bundle(): PrekeyBundle
  /** The contact card extension that carries {@link bundle}. */
  cardExtension(): CardExtensionEntry
  /** True when a session with this peer device exists. */
  hasSession(deviceKey: Uint8Array): boolean
  /** The peer devices with sessions (hex Ed25519 keys). */
  peers(): string[]
  /**
   * The base key of the session with this device while it still sends prekey messages (the peer
   * has not yet shown that it holds the session); undefined otherwise.
   */
  pendingBaseKey(deviceKey: Uint8Array): Uint8Array | undefined
  /**
   * True when {@link seal} for this peer device makes a prekey body that carries an introduction:
   * there is no session yet (one is started from the bundle), or the active one is still pending.
   */
  introduces(deviceKey: Uint8Array): boolean
  /**
   * Records that the peer device holds the session named by `baseKey`: a body sealed in it was
   * delivered (its delivery secret came back, which only the peer could reveal). Later bodies are
   * plain ratchet messages instead of prekey messages. Returns false when nothing changed.
   */
  confirm(deviceKey: Uint8Array, baseKey: Uint8Array): boolean
  /**
   * Seals `content` for a peer device: with its session, or, when there is none, a new one from
   * `bundle` (verified by the caller against the peer's card). Throws `not_found` when neither.
   */
  seal(
    peer: { deviceKey: Uint8Array; bundle?: PrekeyBundle },
    content: Uint8Array,
    options?: SealOptions,
  ): Uint8Array
  /**
   * Opens a sealed body. Throws `malformed`, `unsupported_version`, `decrypt_failed` (not for us,
   * or altered), `replayed`, `too_large`, `bad_signature` or `not_found` (a used prekey: its
   * `details.peerDevice` names the sending device, hex, whose identity signature verified, and
   * `details.introduction` its verified introduction, hex, if it had one); on any failure nothing
   * changes, except that a `too_large` with `details.stepped` true stored the DH ratchet step its
   * message asked for (a caller undoing its own writes on errors should keep that one). A
   * `too_large` for a chain that fell too far behind names the sending device
   * (`details.peerDevice`) and a tag of the chain (`details.chain`).
   */
  open(sealed: Uint8Array): OpenedMessage
  /** Forgets the sessions with a peer device. */
  deleteSession(deviceKey: Uint8Array): boolean
  /**
   * True when the sessions with this device are kept whatever the bound: we sealed for it a
   * message that was not automatic (see {@link MAX_SESSION_DEVICES}).
   */
  answered(deviceKey: Uint8Array): boolean
}

/** Opens the session store of one device over `options.store`. */
export function openSessionStore(options: SessionStoreOptions): SessionStore {
  const { store, now } = options
  const random = options.random ?? systemRandom
  const maxDevices = options.maxDevices ?? MAX_SESSION_DEVICES
  // Header nonces are public: drawn from the CSPRNG a pool at a time (keys are drawn on use).
  const nonces = bufferedRandom(random)
  const identity = e2eIdentity(options.device)
  const prekeys = new PrekeyStore(store, identity, random, now)
  const sessions = new Map<string, Session[]>()
  const unreadable: Array<[string, Uint8Array, unknown]> = []
  for (const [key, value] of store.kvList(SESSION_NAMESPACE)) {
    try {
      sessions.set(key, decodeSessionRecord(value))
    } catch (err) {
      unreadable.push([key, value, err])
    }
  }
  // Devices we wrote to only automatically; a mark left by a device whose sessions are gone is stale.
  const unanswered = new Set<string>()
  const staleMarks: string[] = []
  for (const [key] of store.kvList(UNANSWERED_NAMESPACE)) {
    if (sessions.has(key)) unanswered.add(key)
    else staleMarks.push(key)
  }
  if (unreadable.length > 0 || staleMarks.length > 0) {
    store.transaction(() => {
      for (const key of staleMarks) store.kvDelete(UNANSWERED_NAMESPACE, key)
      for (const [key, value] of unreadable) {
        store.kvSet(UNREADABLE_SESSION_NAMESPACE, key, value)
        store.kvDelete(SESSION_NAMESPACE, key)
      }
    })
    for (const [key, , err] of unreadable) options.onUnreadable?.(key, err)
  }

  function save(peer: string, list: Session[], extra?: () => void): void {
    const before = sessions.get(peer)
    store.transaction(() => {
      store.kvSet(SESSION_NAMESPACE, peer, encodeSessionRecord(list))
      extra?.()
      if (before === undefined && sessions.size >= maxDevices) forgetOneStranger()
      // Undone with the write (a transaction it is part of failed): the stored state is the truth.
      store.onRollback(() => {
        if (before === undefined) sessions.delete(peer)
        else sessions.set(peer, before)
      })
    })
    // Last in the map's order = most recently used (see openRatchet).
    sessions.delete(peer)
    sessions.set(peer, list)
  }

  /** Whether the device `key` is answered: we wrote in one of its sessions, not only automatically. */
  function isAnswered(key: string, list: readonly Session[]): boolean {
    return !unanswered.has(key) && list.some(wroteIn)
  }

  /** Marks the device `key` unanswered or not (in the transaction under way, undone with it). */
  function markUnanswered(key: string, on: boolean): void {
    if (unanswered.has(key) === on) return
    if (on) {
      store.kvSet(UNANSWERED_NAMESPACE, key, new Uint8Array(0))
      unanswered.add(key)
      store.onRollback(() => unanswered.delete(key))
    } else {
      store.kvDelete(UNANSWERED_NAMESPACE, key)
      unanswered.delete(key)
      store.onRollback(() => unanswered.add(key))
    }
  }

  /** Forgets the least recently used device we never answered (see MAX_SESSION_DEVICES). */
  function forgetOneStranger(): void {
    for (const [key, list] of sessions) {
      if (isAnswered(key, list)) continue
      store.kvDelete(SESSION_NAMESPACE, key)
      markUnanswered(key, false)
      sessions.delete(key)
      store.onRollback(() => sessions.set(key, list))
      return
    }
  }

  function promote(list: Session[], index: number, next: Session): Session[] {
    return [next, ...list.filter((_, i) => i !== index)]
  }

  function seal(
    peer: { deviceKey: Uint8Array; bundle?: PrekeyBundle },
    content: Uint8Array,
    options: SealOptions = {},
  ): Uint8Array {
    const sentAt = options.sentAt ?? now()
    const deliverySecret = options.deliverySecret ?? random(DELIVERY_SECRET_LENGTH)
    const ackTag = options.ackTag ?? random(ACK_TAG_LENGTH)
    const key = hex(peer.deviceKey)
    let list = sessions.get(key) ?? []
    // A message the user wrote answers the device; one sent by itself leaves it as it was.
    const unansweredAfter = options.automatic === true && !isAnswered(key, list)
    let session = list[0]
    if (session === undefined) {
      if (peer.bundle === undefined)
        throw new TalkenError('not_found', 'no session with this device and no bundle')
      if (!same(peer.bundle.deviceKey, peer.deviceKey)) {
        throw new TalkenError('invalid_argument', 'the bundle is not of this device')
      }
      session = createInitiatorSession(identity, peer.bundle, { random })
      list = [session]
    }
    const introduction = session.pending?.introductionKey === undefined ? undefined : options.introduction
    const plaintext = encodeSealedPlaintext(
      { sentAt, deliverySecret, ackTag, content },
      paddedPlaintextLength(content.length, session.pending !== null, introduction?.length),
    )
    const out = encrypt(session, plaintext, AD, {
      random: nonces,
      ...(introduction === undefined ? {} : { introduction }),
    })
    const sealed = out.message.prekey
      ? sealPrekeyMessage(out.message.bytes, session.theirIdentityDh, random)
      : sealRatchetMessage(out.message.bytes)
    save(key, [out.session, ...list.slice(1)], () => markUnanswered(key, unansweredAfter))
    return sealed
  }

  function opened(
    s: Session,
    plaintext: Uint8Array,
    firstContact: boolean,
    introduction?: Uint8Array,
  ): OpenedMessage {
    const { content, sentAt, deliverySecret, ackTag } = decodeSealedPlaintext(plaintext)
    return {
      peerDeviceKey: s.theirDeviceKey,
      peerIdentityDh: s.theirIdentityDh,
      content,
      sentAt,
      deliverySecret,
      ackTag,
      firstContact,
      ...(introduction === undefined || introduction.length === 0 ? {} : { introduction }),
    }
  }

  /**
   * Messages whose header opened under a session but whose body did not (forged or damaged on the
   * way), by their encrypted header: such a message may have cost up to {@link MAX_GAP} key
   * derivations, all undone. A body under a header seen failing is first tried with the message
   * key that header led to (one AEAD): a copy that fails that is refused without deriving
   * anything again, whatever else in it was changed; one that opens (the intact copy) goes the
   * usual way. Oldest forgotten beyond {@link MAX_FAILED_BODIES}, and each after
   * {@link FAILED_BODY_MEMORY_MS}: the message key it holds would otherwise stay in memory after
   * the session forgot it (a later copy then goes the usual way, at the usual cost).
   */
  const failedHeaders = new Map<string, { opens: (body: Uint8Array) => boolean; at: number }>()

  /** Forgets failed headers remembered too long (the map is in the order they were added). */
  function forgetOldFailures(): void {
    const before = now() - FAILED_BODY_MEMORY_MS
    for (const [header, f] of failedHeaders) {
      if (f.at > before) break
      failedHeaders.delete(header)
    }
  }

  function openRatchet(body: Uint8Array): OpenedMessage | undefined {
    // The header is looked up only once something failed: nothing is added to the usual path.
    const headerOf = () =>
      body.length >= RATCHET_OVERHEAD ? hex(body.subarray(0, ENCRYPTED_HEADER_LENGTH)) : undefined
    if (failedHeaders.size > 0) forgetOldFailures()
    const header = failedHeaders.size > 0 ? headerOf() : undefined
    const opens = header === undefined ? undefined : failedHeaders.get(header)?.opens
    if (opens !== undefined && !opens(body)) {
      throw new TalkenError(
        'decrypt_failed',
        'a message under a header that failed before does not open either',
      )
    }
    const failure: BodyFailure = {}
    try {
      const message = openRatchetOnce(body, failure)
      if (opens !== undefined && header !== undefined) failedHeaders.delete(header)
      return message
    } catch (err) {
      const failed =
        isTalkenError(err, 'decrypt_failed') && failure.opens !== undefined ? headerOf() : undefined
      if (failed !== undefined && failure.opens !== undefined) {
        failedHeaders.delete(failed) // re-added: the map stays in the order of `at`
        failedHeaders.set(failed, { opens: failure.opens, at: now() })
        if (failedHeaders.size > MAX_FAILED_BODIES) failedHeaders.delete(failedHeaders.keys().next().value!)
      }
      throw err
    }
  }

  function openRatchetOnce(body: Uint8Array, failure: BodyFailure): OpenedMessage | undefined {
    // Header keys are tried session by session, most recently used first: a message usually
    // comes from someone who wrote (or was written to) lately.
    const recent = [...sessions].reverse()
    for (const search of ['current', 'old'] as const) {
      for (const [key, list] of recent) {
        for (let i = 0; i < list.length; i++) {
          const out = tryOpen(key, list, i, body, search, failure)
          if (out === undefined) continue
          const message = opened(out.session, out.plaintext, false)
          save(key, promote(list, i, out.session))
          return message
        }
      }
    }
    return undefined
  }

  /**
   * {@link tryDecrypt}; a message too far ahead in its chain (the peer's messages before it all
   * lost) says which device sent it, and which chain (a tag of its header key): asked once, that
   * device starts a new chain, which is taken whatever came before. A message too far into the
   * peer's next chain first takes the DH ratchet step its header asks for, stored although the
   * message is refused (`details.stepped`; the caller keeps that write): without it our answer
   * would go out in a chain the peer has seen, it would take no step, and write on in the chain
   * we refuse.
   */
  function tryOpen(
    key: string,
    list: Session[],
    index: number,
    body: Uint8Array,
    search: 'current' | 'old',
    failure?: BodyFailure,
  ) {
    const session = list[index]!
    try {
      return tryDecrypt(session, body, search, AD, { random, ...(failure === undefined ? {} : { failure }) })
    } catch (err) {
      if (!isTalkenError(err, 'too_large')) throw err
      if (err.details?.chain === 'current' && session.ratchet.hkr !== null) {
        throw tooFarBehind(err, key, session.ratchet.hkr, false)
      }
      const stepped = err.details?.chain === 'next' ? stepToNextChain(session, body, { random }) : undefined
      if (stepped === undefined || stepped.ratchet.hkr === null) throw err
      save(key, promote(list, index, stepped))
      throw tooFarBehind(err, key, stepped.ratchet.hkr, true)
    }
  }

  function tooFarBehind(
    err: TalkenError,
    peerDevice: string,
    hkr: Uint8Array,
    stepped: boolean,
  ): TalkenError {
    const chain = hex(sha256(hkr).subarray(0, 8))
    return new TalkenError('too_large', err.message, { cause: err, details: { peerDevice, chain, stepped } })
  }

  function openPrekey(sealed: Uint8Array): OpenedMessage {
    const m = decodePrekeyMessage(openSealedPrekey(sealed, identity.identityDh))
    verifyIdentityDh(m.senderDeviceKey, m.senderIdentityDh, m.identitySignature)
    const key = hex(m.senderDeviceKey)
    const list = sessions.get(key) ?? []
    // A repeat of the first messages of a session we already accepted (they all carry its prekeys).
    const index = list.findIndex((s) => same(s.baseKey, m.ephemeral))
    if (index >= 0) {
      verifyIntroduction(identity, m)
      const out = decrypt(list[index]!, m.message, AD, { random })
      const message = opened(out.session, out.plaintext, false, m.introduction)
      save(key, promote(list, index, out.session))
      return message
    }
    if (prekeys.seen(m.signedPrekeyId, m.ephemeral)) {
      // Accepted once, and its session is gone since (a stranger's, forgotten beyond the bound
      // while its sender still writes in it): not to be opened here again, but its sender, whose
      // identity signature verified, can be asked to send it again in a session that works.
      verifyIntroduction(identity, m)
      throw new TalkenError('not_found', 'the session of this first-contact message is gone', {
        details:
          m.introduction.length === 0
            ? { peerDevice: key, seen: true }
            : { peerDevice: key, introduction: hex(m.introduction), seen: true },
      })
    }
    let out: ReturnType<typeof acceptSession>
    try {
      out = acceptSession(identity, prekeys, m, AD, { random })
    } catch (err) {
      // Its prekeys are gone (a one-time prekey someone else took first): say who wrote, so that
      // the caller can ask them to send it again in a session that works.
      if (isTalkenError(err, 'not_found')) {
        const details =
          m.introduction.length === 0
            ? { peerDevice: key }
            : { peerDevice: key, introduction: hex(m.introduction) }
        throw new TalkenError('not_found', err.message, { cause: err, details })
      }
      throw err
    }
    const message = opened(out.session, out.plaintext, true, m.introduction)
    // A device we never wrote to keeps its newest session alone: more than one matters only when
    // both sides wrote first at once, and each session kept costs every incoming body two more
    // header trials (a stranger starting sessions again and again would multiply them).
    const keep = list.some(wroteIn) ? MAX_SESSIONS_PER_DEVICE : 1
    save(key, [out.session, ...list].slice(0, keep), () =>
      prekeys.consume(m.signedPrekeyId, out.oneTimePrekeyId, m.ephemeral),
    )
    return message
  }

  return {
    identity,
    prekeys,
    bundle: () => prekeys.bundle(),
    cardExtension: () => [CardExtension.prekeys, encodePrekeyBundle(prekeys.bundle())],
    hasSession: (deviceKey) => sessions.has(hex(deviceKey)),
    peers: () => [...sessions.keys()],
    introduces(deviceKey) {
      const active = sessions.get(hex(deviceKey))?.[0]
      return active === undefined || active.pending?.introductionKey !== undefined
    },
    pendingBaseKey(deviceKey) {
      const active = sessions.get(hex(deviceKey))?.[0]
      return active?.pending ? active.baseKey : undefined
    },
    confirm(deviceKey, baseKey) {
      const key = hex(deviceKey)
      const list = sessions.get(key) ?? []
      const index = list.findIndex((s) => s.pending !== null && same(s.baseKey, baseKey))
      if (index < 0) return false
      save(
        key,
        list.map((s, i) => (i === index ? { ...s, pending: null } : s)),
      )
      return true
    },
    seal,
    open(sealed) {
      checkSealed(sealed)
      return openRatchet(sealed.subarray(1)) ?? openPrekey(sealed)
    },
    deleteSession(deviceKey) {
      const key = hex(deviceKey)
      const had = store.transaction(() => {
        markUnanswered(key, false)
        return store.kvDelete(SESSION_NAMESPACE, key)
      })
      sessions.delete(key)
      return had
    },
    answered(deviceKey) {
      const key = hex(deviceKey)
      return isAnswered(key, sessions.get(key) ?? [])
    },
  }
}
