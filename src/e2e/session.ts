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
 *               ‖ ratchet message (≥ 84)
 * ```
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
import {
  concatBytes,
  DH_KEY_LENGTH,
  type DhKeyPair,
  generateDhKey,
  type RandomSource,
  systemRandom,
} from './primitives.ts'
import {
  type HeaderSearch,
  initInitiator,
  initResponder,
  RATCHET_OVERHEAD,
  type RatchetState,
  ratchetDecrypt,
  ratchetEncrypt,
  ratchetTryDecrypt,
} from './ratchet.ts'
import {
  type E2eIdentity,
  type PrekeyBundle,
  sessionAd,
  verifyIdentityDh,
  x3dhInitiate,
  x3dhRespond,
} from './x3dh.ts'

/** Bytes of a prekey message before its ratchet message. */
export const PREKEY_HEADER_LENGTH =
  DH_KEY_LENGTH + PUBLIC_KEY_LENGTH + DH_KEY_LENGTH + SIGNATURE_LENGTH + 4 + 4

/** The prekeys an initiator used, repeated in each message until it hears back. */
export interface PendingPrekey {
  readonly signedPrekeyId: number
  /** 0: none. */
  readonly oneTimePrekeyId: number
  readonly identitySignature: Uint8Array
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

/** Encodes a prekey message. */
export function encodePrekeyMessage(m: PrekeyMessage): Uint8Array {
  const ids = new Uint8Array(8)
  const view = new DataView(ids.buffer)
  view.setUint32(0, m.signedPrekeyId)
  view.setUint32(4, m.oneTimePrekeyId)
  return concatBytes(m.ephemeral, m.senderDeviceKey, m.senderIdentityDh, m.identitySignature, ids, m.message)
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
  at += 8
  if (signedPrekeyId === 0) throw new TalkenError('malformed', 'prekey message: signed prekey ID 0')
  return {
    ephemeral,
    senderDeviceKey,
    senderIdentityDh,
    identitySignature,
    signedPrekeyId,
    oneTimePrekeyId,
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
 * Encrypts the next message. While the session is `pending`, the result is a prekey message.
 */
export function encrypt(
  session: Session,
  plaintext: Uint8Array,
  ad?: Uint8Array,
  options: SessionOptions = {},
): { session: Session; message: SessionMessage } {
  const random = options.random ?? systemRandom
  const out = ratchetEncrypt(session.ratchet, plaintext, sessionAssociatedData(session, ad), random)
  const next = { ...session, ratchet: out.state }
  const pending = session.pending
  if (pending === null) return { session: next, message: { prekey: false, bytes: out.message } }
  const bytes = encodePrekeyMessage({
    ephemeral: session.baseKey,
    senderDeviceKey: session.ourDeviceKey,
    senderIdentityDh: session.ourIdentityDh,
    identitySignature: pending.identitySignature,
    signedPrekeyId: pending.signedPrekeyId,
    oneTimePrekeyId: pending.oneTimePrekeyId,
    message: out.message,
  })
  return { session: next, message: { prekey: true, bytes } }
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
  const out = ratchetTryDecrypt(session.ratchet, message, sessionAssociatedData(session, ad), random, search)
  if (out === undefined) return undefined
  return { session: { ...session, ratchet: out.state, pending: null }, plaintext: out.plaintext }
}

/**
 * The responder's side: verifies a prekey message, runs X3DH with the prekeys it names and
 * decrypts the message inside. Throws `malformed`, `bad_signature`, `not_found` (a signed or
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
