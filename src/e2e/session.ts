/**
 * End-to-end sessions between two devices: X3DH to start, the Double Ratchet after. Sessions are
 * immutable values; every call returns the next session and leaves its input as it was, so the
 * caller persists the new one only when the call succeeded (see session-store.ts).
 *
 * Until the initiator has received a reply, each of its messages is a *prekey message*, so that
 * the responder can start the session from whichever of them arrives first:
 *
 * ```
 * PrekeyMessage = ephemeral EK_A (32) ‖ sender device key (32) ‖ sender identity DH key (32)
 *               ‖ identity signature (64) ‖ signedPrekeyId (uint32 BE) ‖ oneTimePrekeyId (uint32 BE, 0 = none)
 *               ‖ introduction length n (uint16 BE, ≤ 12,288) ‖ introduction (n) ‖ tag (16, if n > 0)
 *               ‖ ratchet message (≥ 84)
 * tag           = HMAC-SHA-256(IntroKey, every byte before it)[0..16]        (IntroKey: x3dh.ts)
 * ```
 * The introduction is the initiator's contact card. The tag lets a responder that can no longer
 * run X3DH (its one-time prekey went to someone else first) still learn, authenticated, who wrote,
 * and ask them to write again ({@link verifyIntroduction}).
 * Byte table: docs/e2e.md §Prekey message.
 *
 * @example
 * const { session: a, message } = initiateSession(alice, bobBundle, hello)
 * const { session: b, plaintext } = acceptSession(bob, bobPrekeys, message.bytes)
 * const reply = encrypt(b, text)
 * const { session: a2, plaintext: got } = decrypt(a, reply.message.bytes)
 */
import { TalkenError } from '../errors.ts'
import { PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH } from '../identity/ed25519.ts'
import { MAX_CARD_BYTES } from '../wire/limits.ts'
import {
  concatBytes,
  DH_KEY_LENGTH,
  type DhKeyPair,
  generateDhKey,
  hmac,
  type RandomSource,
  secretsEqual,
  systemRandom,
} from './primitives.ts'
import {
  type BodyFailure,
  type HeaderSearch,
  initInitiator,
  initResponder,
  RATCHET_OVERHEAD,
  type RatchetState,
  ratchetDecrypt,
  ratchetEncrypt,
  ratchetStepToNextChain,
  ratchetTryDecrypt,
} from './ratchet.ts'
import {
  type E2eIdentity,
  initiatorIntroductionKey,
  type PrekeyBundle,
  responderIntroductionKey,
  sessionAd,
  verifyIdentityDh,
  x3dhInitiate,
  x3dhRespond,
} from './x3dh.ts'

const EMPTY = new Uint8Array(0)

/** Bytes of a prekey message before its ratchet message, without an introduction. */
export const PREKEY_HEADER_LENGTH =
  DH_KEY_LENGTH + PUBLIC_KEY_LENGTH + DH_KEY_LENGTH + SIGNATURE_LENGTH + 4 + 4 + 2
/** Largest introduction a prekey message carries (a contact card's limit). */
export const MAX_INTRODUCTION_BYTES = MAX_CARD_BYTES
/** Length of the tag after an introduction. */
export const INTRODUCTION_TAG_LENGTH = 16

/** Bytes an introduction of `length` bytes adds to a prekey message (0 for none). */
export function introductionOverhead(length: number): number {
  return length === 0 ? 0 : length + INTRODUCTION_TAG_LENGTH
}

/** The prekeys an initiator used, repeated in each message until it hears back. */
export interface PendingPrekey {
  readonly signedPrekeyId: number
  /** 0: none. */
  readonly oneTimePrekeyId: number
  readonly identitySignature: Uint8Array
  /** The key of the introduction tag (x3dh.ts IntroKey); absent in sessions stored before it. */
  readonly introductionKey?: Uint8Array
}

/** One device's session with one device of a peer. */
export interface Session {
  readonly initiator: boolean
  readonly ourDeviceKey: Uint8Array
  readonly ourIdentityDh: Uint8Array
  readonly theirDeviceKey: Uint8Array
  readonly theirIdentityDh: Uint8Array
  /** The initiator's X3DH ephemeral key: names the session's origin, recognises repeated prekey messages. */
  readonly baseKey: Uint8Array
  /** Set on the initiator until its first message from the responder decrypts. */
  readonly pending: PendingPrekey | null
  readonly ratchet: RatchetState
}

/** An encrypted message: a prekey message (first contact) or a plain ratchet message. */
export interface SessionMessage {
  readonly prekey: boolean
  readonly bytes: Uint8Array
}

/** A decoded prekey message. */
export interface PrekeyMessage {
  readonly ephemeral: Uint8Array
  readonly senderDeviceKey: Uint8Array
  readonly senderIdentityDh: Uint8Array
  readonly identitySignature: Uint8Array
  readonly signedPrekeyId: number
  readonly oneTimePrekeyId: number
  /** The sender's introduction (its contact card), or empty. */
  readonly introduction: Uint8Array
  /** Its tag ({@link INTRODUCTION_TAG_LENGTH} bytes), or empty with no introduction. */
  readonly introductionTag: Uint8Array
  /** The ratchet message inside. */
  readonly message: Uint8Array
}

/** The responder's private prekeys, by ID (the store deletes a one-time prekey once used). */
export interface PrekeyLookup {
  signedPrekey(id: number): DhKeyPair | undefined
  oneTimePrekey(id: number): DhKeyPair | undefined
}

/** Options of the calls that make keys. */
export interface SessionOptions {
  /** Random bytes (default: the system CSPRNG). */
  readonly random?: RandomSource
  /** Filled in when a message's header opened and its body did not (see {@link BodyFailure}). */
  readonly failure?: BodyFailure
}

/** The associated data of every message of this session, followed by the caller's own. */
export function sessionAssociatedData(session: Session, ad?: Uint8Array): Uint8Array {
  const identities = identitiesAd(session)
  return ad === undefined || ad.length === 0 ? identities : concatBytes(identities, ad)
}

/**
 * The session's identities as associated data, made once per set of keys: a session's successive
 * states (one per message) share their key arrays, so this is a lookup after the first message.
 * Only public keys are remembered (never a session state, whose old chain keys must not linger).
 */
interface IdentitiesMemo {
  readonly initiator: boolean
  readonly ourDeviceKey: Uint8Array
  readonly ourIdentityDh: Uint8Array
  readonly theirIdentityDh: Uint8Array
  readonly ad: Uint8Array
}
const identitiesMemo = new WeakMap<Uint8Array, IdentitiesMemo>()

function identitiesAd(session: Session): Uint8Array {
  const memo = identitiesMemo.get(session.theirDeviceKey)
  if (
    memo !== undefined &&
    memo.initiator === session.initiator &&
    memo.ourDeviceKey === session.ourDeviceKey &&
    memo.ourIdentityDh === session.ourIdentityDh &&
    memo.theirIdentityDh === session.theirIdentityDh
  ) {
    return memo.ad
  }
  const ad = session.initiator
    ? sessionAd(session.ourDeviceKey, session.ourIdentityDh, session.theirDeviceKey, session.theirIdentityDh)
    : sessionAd(session.theirDeviceKey, session.theirIdentityDh, session.ourDeviceKey, session.ourIdentityDh)
  identitiesMemo.set(session.theirDeviceKey, {
    initiator: session.initiator,
    ourDeviceKey: session.ourDeviceKey,
    ourIdentityDh: session.ourIdentityDh,
    theirIdentityDh: session.theirIdentityDh,
    ad,
  })
  return ad
}

/** The bytes an introduction tag covers: everything before it. */
function introducedHeader(m: Omit<PrekeyMessage, 'introductionTag' | 'message'>): Uint8Array {
  const ids = new Uint8Array(10)
  const view = new DataView(ids.buffer)
  view.setUint32(0, m.signedPrekeyId)
  view.setUint32(4, m.oneTimePrekeyId)
  view.setUint16(8, m.introduction.length)
  return concatBytes(
    m.ephemeral,
    m.senderDeviceKey,
    m.senderIdentityDh,
    m.identitySignature,
    ids,
    m.introduction,
  )
}

function introductionTag(key: Uint8Array, header: Uint8Array): Uint8Array {
  return hmac(key, header).subarray(0, INTRODUCTION_TAG_LENGTH)
}

function checkIntroductionLength(length: number): void {
  if (length > MAX_INTRODUCTION_BYTES) {
    throw new TalkenError('too_large', `an introduction is at most ${MAX_INTRODUCTION_BYTES} bytes`)
  }
}

/** Encodes a prekey message. */
export function encodePrekeyMessage(m: PrekeyMessage): Uint8Array {
  checkIntroductionLength(m.introduction.length)
  if (m.introductionTag.length !== (m.introduction.length === 0 ? 0 : INTRODUCTION_TAG_LENGTH)) {
    throw new TalkenError(
      'invalid_argument',
      'an introduction tag is 16 bytes, and only with an introduction',
    )
  }
  return concatBytes(introducedHeader(m), m.introductionTag, m.message)
}

/**
 * Checks a prekey message's introduction tag with our identity DH key (no prekey needed). Throws
 * `bad_signature` when it does not verify, `malformed` for an unusable ephemeral key. A message
 * with no introduction passes: it claims nothing.
 */
export function verifyIntroduction(ours: E2eIdentity, m: PrekeyMessage): void {
  if (m.introduction.length === 0) return
  const key = responderIntroductionKey(ours, m.senderIdentityDh, m.ephemeral)
  if (!secretsEqual(introductionTag(key, introducedHeader(m)), m.introductionTag)) {
    throw new TalkenError('bad_signature', "the introduction's tag does not verify")
  }
}

/** Decodes a prekey message (shape only; {@link acceptSession} verifies it). Throws `malformed`. */
export function decodePrekeyMessage(bytes: Uint8Array): PrekeyMessage {
  if (!(bytes instanceof Uint8Array) || bytes.length < PREKEY_HEADER_LENGTH + RATCHET_OVERHEAD) {
    throw new TalkenError('malformed', 'prekey message too short')
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
  let at = 0
  const take = (n: number) => {
    at += n
    return bytes.slice(at - n, at)
  }
  const ephemeral = take(DH_KEY_LENGTH)
  const senderDeviceKey = take(PUBLIC_KEY_LENGTH)
  const senderIdentityDh = take(DH_KEY_LENGTH)
  const identitySignature = take(SIGNATURE_LENGTH)
  const signedPrekeyId = view.getUint32(at)
  const oneTimePrekeyId = view.getUint32(at + 4)
  const introductionLength = view.getUint16(at + 8)
  at += 10
  if (signedPrekeyId === 0) throw new TalkenError('malformed', 'prekey message: signed prekey ID 0')
  if (introductionLength > MAX_INTRODUCTION_BYTES) {
    throw new TalkenError('malformed', `prekey message: an introduction of ${introductionLength} bytes`)
  }
  if (bytes.length - at < introductionOverhead(introductionLength) + RATCHET_OVERHEAD) {
    throw new TalkenError('malformed', 'prekey message too short for its introduction')
  }
  const introduction = take(introductionLength)
  const introductionTag = take(introductionLength === 0 ? 0 : INTRODUCTION_TAG_LENGTH)
  return {
    ephemeral,
    senderDeviceKey,
    senderIdentityDh,
    identitySignature,
    signedPrekeyId,
    oneTimePrekeyId,
    introduction,
    introductionTag,
    message: bytes.slice(at),
  }
}

/**
 * Starts a session from a peer device's prekey bundle (already verified: {@link decodePrekeyBundle}),
 * choosing one of its one-time prekeys unless `useOneTimePrekey` is false.
 */
export function createInitiatorSession(
  ours: E2eIdentity,
  theirBundle: PrekeyBundle,
  options: SessionOptions & { useOneTimePrekey?: boolean } = {},
): Session {
  const random = options.random ?? systemRandom
  const ephemeral = generateDhKey(random)
  const choices = options.useOneTimePrekey === false ? [] : theirBundle.oneTimePrekeys
  const chosen = choices.length === 0 ? undefined : choices[random(1)[0]! % choices.length]
  const secrets = x3dhInitiate(ours, theirBundle, ephemeral, chosen?.key)
  return {
    initiator: true,
    ourDeviceKey: ours.device.publicKey,
    ourIdentityDh: ours.identityDh.publicKey,
    theirDeviceKey: theirBundle.deviceKey,
    theirIdentityDh: theirBundle.identityDh,
    baseKey: ephemeral.publicKey,
    pending: {
      signedPrekeyId: theirBundle.signedPrekeyId,
      oneTimePrekeyId: chosen?.id ?? 0,
      identitySignature: ours.identitySignature,
      introductionKey: initiatorIntroductionKey(ours, theirBundle.identityDh, ephemeral),
    },
    ratchet: initInitiator(secrets.sk, theirBundle.signedPrekey, secrets.hka, secrets.nhkb, random),
  }
}

/**
 * Starts a session from a peer's bundle and encrypts the first message: a prekey message that the
 * peer can open while this side is offline.
 */
export function initiateSession(
  ours: E2eIdentity,
  theirBundle: PrekeyBundle,
  plaintext: Uint8Array,
  options: SessionOptions & { useOneTimePrekey?: boolean; ad?: Uint8Array } = {},
): { session: Session; message: SessionMessage } {
  return encrypt(createInitiatorSession(ours, theirBundle, options), plaintext, options.ad, options)
}

/**
 * Encrypts the next message. While the session is `pending`, the result is a prekey message,
 * carrying `options.introduction` (our contact card) when given.
 */
export function encrypt(
  session: Session,
  plaintext: Uint8Array,
  ad?: Uint8Array,
  options: SessionOptions & { introduction?: Uint8Array } = {},
): { session: Session; message: SessionMessage } {
  const random = options.random ?? systemRandom
  const out = ratchetEncrypt(session.ratchet, plaintext, sessionAssociatedData(session, ad), random)
  const next = { ...session, ratchet: out.state }
  const pending = session.pending
  if (pending === null) return { session: next, message: { prekey: false, bytes: out.message } }
  const introduced = {
    ephemeral: session.baseKey,
    senderDeviceKey: session.ourDeviceKey,
    senderIdentityDh: session.ourIdentityDh,
    identitySignature: pending.identitySignature,
    signedPrekeyId: pending.signedPrekeyId,
    oneTimePrekeyId: pending.oneTimePrekeyId,
    // A session stored before introductions existed has no key for the tag: it introduces nobody.
    introduction: pending.introductionKey === undefined ? EMPTY : (options.introduction ?? EMPTY),
  }
  checkIntroductionLength(introduced.introduction.length)
  // The header once: the tag covers it, and the message starts with it.
  const header = introducedHeader(introduced)
  const tag = introduced.introduction.length === 0 ? EMPTY : introductionTag(pending.introductionKey!, header)
  return { session: next, message: { prekey: true, bytes: concatBytes(header, tag, out.message) } }
}

/**
 * Decrypts a ratchet message (for a prekey message of this session, pass its `message`). Throws
 * `decrypt_failed`, `replayed`, `too_large` or `malformed`; the input session stays valid.
 */
export function decrypt(
  session: Session,
  message: Uint8Array,
  ad?: Uint8Array,
  options: SessionOptions = {},
): { session: Session; plaintext: Uint8Array } {
  const random = options.random ?? systemRandom
  const out = ratchetDecrypt(session.ratchet, message, sessionAssociatedData(session, ad), random)
  // A reply proves the responder has the session: stop sending prekey messages.
  return { session: { ...session, ratchet: out.state, pending: null }, plaintext: out.plaintext }
}

/**
 * As {@link decrypt}, but returns undefined when the message's header is not one of this session's
 * (`search`: the current and next chains, or earlier ones). Used to find a message's session.
 */
export function tryDecrypt(
  session: Session,
  message: Uint8Array,
  search: HeaderSearch,
  ad?: Uint8Array,
  options: SessionOptions = {},
): { session: Session; plaintext: Uint8Array } | undefined {
  const random = options.random ?? systemRandom
  const out = ratchetTryDecrypt(
    session.ratchet,
    message,
    sessionAssociatedData(session, ad),
    random,
    search,
    options.failure,
  )
  if (out === undefined) return undefined
  return { session: { ...session, ratchet: out.state, pending: null }, plaintext: out.plaintext }
}

/**
 * The session after the DH ratchet step a message too far into the peer's next chain asks for
 * (see {@link ratchetStepToNextChain}); undefined when the message is not of that chain.
 */
export function stepToNextChain(
  session: Session,
  message: Uint8Array,
  options: SessionOptions = {},
): Session | undefined {
  const ratchet = ratchetStepToNextChain(session.ratchet, message, options.random ?? systemRandom)
  // An authenticated header of the peer's next chain: the peer has the session.
  return ratchet === undefined ? undefined : { ...session, ratchet, pending: null }
}

/**
 * The responder's side: verifies a prekey message (identity signature, introduction tag), runs X3DH
 * with the prekeys it names and decrypts the message inside. Throws `malformed`, `bad_signature`, `not_found` (a signed or
 * one-time prekey that is not, or no longer, held) or what {@link decrypt} throws. The caller
 * deletes the one-time prekey (`oneTimePrekeyId`, unless 0) when it keeps the session.
 */
export function acceptSession(
  ours: E2eIdentity,
  prekeys: PrekeyLookup,
  prekeyMessage: Uint8Array | PrekeyMessage,
  ad?: Uint8Array,
  options: SessionOptions = {},
): { session: Session; plaintext: Uint8Array; oneTimePrekeyId: number } {
  const m = prekeyMessage instanceof Uint8Array ? decodePrekeyMessage(prekeyMessage) : prekeyMessage
  verifyIdentityDh(m.senderDeviceKey, m.senderIdentityDh, m.identitySignature)
  // Before the prekeys: a `not_found` below comes with an introduction that verified.
  verifyIntroduction(ours, m)
  const signed = prekeys.signedPrekey(m.signedPrekeyId)
  if (signed === undefined)
    throw new TalkenError('not_found', `signed prekey ${m.signedPrekeyId} is not held`)
  let oneTime: DhKeyPair | undefined
  if (m.oneTimePrekeyId !== 0) {
    oneTime = prekeys.oneTimePrekey(m.oneTimePrekeyId)
    if (oneTime === undefined) {
      throw new TalkenError('not_found', `one-time prekey ${m.oneTimePrekeyId} is used up or unknown`)
    }
  }
  const secrets = x3dhRespond(ours, signed, oneTime, m.senderIdentityDh, m.ephemeral)
  const session: Session = {
    initiator: false,
    ourDeviceKey: ours.device.publicKey,
    ourIdentityDh: ours.identityDh.publicKey,
    theirDeviceKey: m.senderDeviceKey,
    theirIdentityDh: m.senderIdentityDh,
    baseKey: m.ephemeral,
    pending: null,
    ratchet: initResponder(secrets.sk, signed, secrets.hka, secrets.nhkb),
  }
  const out = decrypt(session, m.message, ad, options)
  return { session: out.session, plaintext: out.plaintext, oneTimePrekeyId: m.oneTimePrekeyId }
}
