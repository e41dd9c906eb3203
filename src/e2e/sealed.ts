/**
 * Sealed bodies: what an envelope's payload holds. A relay sees a version byte and opaque bytes of
 * one of six sizes; sender, authenticator, time and content are all inside the encryption.
 *
 * ```
 * Sealed (ratchet) = 0x04 ‖ ratchet message                                 (a session exists)
 * Sealed (prekey)  = 0x04 ‖ E (32) ‖ ChaCha20-Poly1305(k, 0¹², prekey message, 0x04)   (first contact)
 *   k = HKDF(ikm = X25519(E, IK_B), salt = E ‖ IK_B, info = "talken/e2e/seal/v1", 32)
 *   E: a fresh X25519 key per sealed prekey message; IK_B: the recipient's identity DH key
 * Plaintext inside the ratchet =
 *   sentAt (uint64 BE, Unix ms) ‖ deliverySecret (16) ‖ ackTag (16) ‖ content ‖ 0x80 ‖ 0x00…
 *   padded so that the sealed body is exactly 256, 512, 1,024, 4,096, 16,384 or 65,024 bytes
 * ```
 * The delivery secret is the mesh's acknowledgement secret (mesh-payload.ts): the envelope's ID is
 * its hash, and only the recipient, by opening the body, learns it and can prove delivery. A relay
 * sees the ID, never the secret, so it cannot forge an acknowledgement. The ack tag is what the
 * recipient's acknowledgement envelope carries back to the sender instead of the secret
 * (mesh/ack-tags.ts), so that a relay cannot link the two. Version 1 had no ack tag, version 2 no
 * introduction in its prekey messages, version 3 sealed ratchet bodies with a fixed nonce
 * (ratchet.ts); all three are refused.
 *
 * The two kinds look alike: the recipient tries its sessions' header keys first, then its identity
 * DH key. A prekey body costs 344 bytes of overhead plus its introduction (the sender's card and a
 * 16-byte tag), a ratchet body 126, so content of up to 64,680 bytes fits either without an
 * introduction. Byte table: docs/e2e.md §Sealed body.
 */
import { TalkenError } from '../errors.ts'
import {
  AEAD_NONCE_LENGTH,
  AEAD_TAG_LENGTH,
  aeadOpen,
  aeadSeal,
  concatBytes,
  DH_KEY_LENGTH,
  type DhKeyPair,
  dh,
  generateDhKey,
  hkdf,
  type RandomSource,
} from './primitives.ts'
import { RATCHET_OVERHEAD } from './ratchet.ts'
import { introductionOverhead, PREKEY_HEADER_LENGTH } from './session.ts'

/** The sealed body format version (its first byte). */
export const SEALED_VERSION = 4
/**
 * The largest bucket: 64 KiB less 512 bytes, so that a sealed body fits in a mesh message body
 * (65,495 bytes, see mesh-payload.ts) with room to spare.
 */
const LARGEST_BUCKET = 64 * 1024 - 512

/**
 * The sizes a sealed body may have: few, so that a length says little, and doubling at the small
 * end, where most chat messages are, so that a short paragraph is not padded fourfold (on a
 * Bluetooth link every 185 to 512 bytes is one more fragment).
 */
export const SEALED_BUCKETS: readonly number[] = [256, 512, 1024, 4096, 16 * 1024, LARGEST_BUCKET]
/** The largest sealed body: the envelope's payload limit (MAX_PAYLOAD_BYTES). */
export const MAX_SEALED_BYTES = LARGEST_BUCKET

const SENT_AT_LENGTH = 8
/** Length of the delivery secret inside every sealed body (the mesh's ACK_SECRET_LENGTH). */
export const DELIVERY_SECRET_LENGTH = 16
/** Length of the ack tag inside every sealed body (the mesh's ACK_TAG_LENGTH). */
export const ACK_TAG_LENGTH = 16
/** Bytes before the content in a sealed plaintext: time and delivery secret. */
const PREFIX_LENGTH = SENT_AT_LENGTH + DELIVERY_SECRET_LENGTH + ACK_TAG_LENGTH
const PAD_MARKER = 0x80
const SEAL_INFO = 'talken/e2e/seal/v1'
const ZERO_NONCE = new Uint8Array(AEAD_NONCE_LENGTH)
const VERSION_AD = Uint8Array.of(SEALED_VERSION)

/** Bytes a sealed ratchet body adds to its content: version, ratchet overhead, time, delivery secret, ack tag, pad marker (126). */
export const RATCHET_BODY_OVERHEAD = 1 + RATCHET_OVERHEAD + PREFIX_LENGTH + 1
/**
 * Bytes a sealed prekey body adds: version, E, outer tag, prekey header, then as a ratchet body
 * (344), plus its introduction and tag if it has one.
 */
export const PREKEY_BODY_OVERHEAD =
  1 + DH_KEY_LENGTH + AEAD_TAG_LENGTH + PREKEY_HEADER_LENGTH + RATCHET_OVERHEAD + PREFIX_LENGTH + 1
/** The most content one sealed body carries, whichever kind it is. */
export const MAX_SEALED_CONTENT = MAX_SEALED_BYTES - PREKEY_BODY_OVERHEAD

/**
 * The ratchet plaintext length that makes the sealed body fill its bucket; for a prekey body with
 * an introduction of `introductionLength` bytes, the introduction counts against the content.
 */
export function paddedPlaintextLength(
  contentLength: number,
  prekey: boolean,
  introductionLength = 0,
): number {
  if (!Number.isSafeInteger(contentLength) || contentLength < 0) {
    throw new TalkenError('invalid_argument', 'content length is a non-negative integer')
  }
  const introduction = prekey ? introductionOverhead(introductionLength) : 0
  if (contentLength + introduction > MAX_SEALED_CONTENT) {
    throw new TalkenError(
      'too_large',
      `sealed content is at most ${MAX_SEALED_CONTENT - introduction} bytes, not ${contentLength}`,
    )
  }
  const overhead = (prekey ? PREKEY_BODY_OVERHEAD : RATCHET_BODY_OVERHEAD) + introduction
  const bucket = SEALED_BUCKETS.find((b) => b >= contentLength + overhead)!
  return bucket - overhead + PREFIX_LENGTH + 1
}

/** What a sealed plaintext carries besides padding. */
export interface SealedPlaintext {
  /** Unix milliseconds, by the sender's clock. */
  readonly sentAt: number
  /** The mesh acknowledgement secret of the envelope that carries the body. */
  readonly deliverySecret: Uint8Array
  /** What the acknowledgement goes back with instead of the secret (mesh/ack-tags.ts). */
  readonly ackTag: Uint8Array
  readonly content: Uint8Array
}

/** The ratchet plaintext: time, delivery secret, ack tag, content and padding to `length` ({@link paddedPlaintextLength}). */
export function encodeSealedPlaintext(p: SealedPlaintext, length: number): Uint8Array {
  const { sentAt, deliverySecret, ackTag, content } = p
  if (!Number.isSafeInteger(sentAt) || sentAt < 0)
    throw new TalkenError('invalid_argument', 'sentAt is Unix ms')
  if (deliverySecret.length !== DELIVERY_SECRET_LENGTH)
    throw new TalkenError('invalid_argument', `a delivery secret is ${DELIVERY_SECRET_LENGTH} bytes`)
  if (ackTag.length !== ACK_TAG_LENGTH)
    throw new TalkenError('invalid_argument', `an ack tag is ${ACK_TAG_LENGTH} bytes`)
  if (length < content.length + PREFIX_LENGTH + 1)
    throw new TalkenError('invalid_argument', 'padding too short')
  const out = new Uint8Array(length)
  const view = new DataView(out.buffer)
  view.setUint32(0, Math.floor(sentAt / 2 ** 32))
  view.setUint32(4, sentAt >>> 0)
  out.set(deliverySecret, SENT_AT_LENGTH)
  out.set(ackTag, SENT_AT_LENGTH + DELIVERY_SECRET_LENGTH)
  out.set(content, PREFIX_LENGTH)
  out[PREFIX_LENGTH + content.length] = PAD_MARKER
  return out
}

/** Reads the time, delivery secret, ack tag and content back from a ratchet plaintext. Throws `malformed`. */
export function decodeSealedPlaintext(plaintext: Uint8Array): SealedPlaintext {
  let end = plaintext.length - 1
  while (end >= PREFIX_LENGTH && plaintext[end] === 0) end--
  if (end < PREFIX_LENGTH || plaintext[end] !== PAD_MARKER) {
    throw new TalkenError('malformed', 'sealed plaintext: bad padding')
  }
  const view = new DataView(plaintext.buffer, plaintext.byteOffset, plaintext.length)
  const high = view.getUint32(0)
  if (high >= 2 ** 21) throw new TalkenError('malformed', 'sealed plaintext: time out of range')
  return {
    sentAt: high * 2 ** 32 + view.getUint32(4),
    deliverySecret: plaintext.slice(SENT_AT_LENGTH, SENT_AT_LENGTH + DELIVERY_SECRET_LENGTH),
    ackTag: plaintext.slice(SENT_AT_LENGTH + DELIVERY_SECRET_LENGTH, PREFIX_LENGTH),
    content: plaintext.slice(PREFIX_LENGTH, end),
  }
}

/** Checks a sealed body's size and version before any decryption. Throws `malformed`, `unsupported_version`. */
export function checkSealed(sealed: Uint8Array): void {
  if (!(sealed instanceof Uint8Array) || !SEALED_BUCKETS.includes(sealed.length)) {
    throw new TalkenError('malformed', `a sealed body is ${SEALED_BUCKETS.join(', ')} bytes long`)
  }
  if (sealed[0] !== SEALED_VERSION) {
    throw new TalkenError('unsupported_version', `sealed body version ${sealed[0]} is not supported`)
  }
}

/** Seals a ratchet message (already padded inside): the version byte and the message. */
export function sealRatchetMessage(message: Uint8Array): Uint8Array {
  const out = concatBytes(VERSION_AD, message)
  if (!SEALED_BUCKETS.includes(out.length))
    throw new TalkenError('invalid_argument', 'ratchet message not padded')
  return out
}

function sealKey(shared: Uint8Array, ephemeral: Uint8Array, recipientIdentityDh: Uint8Array): Uint8Array {
  return hkdf(shared, concatBytes(ephemeral, recipientIdentityDh), SEAL_INFO, 32)
}

/** Seals a prekey message to the recipient's identity DH key with a fresh ephemeral key. */
export function sealPrekeyMessage(
  prekeyMessage: Uint8Array,
  recipientIdentityDh: Uint8Array,
  random: RandomSource,
): Uint8Array {
  const e = generateDhKey(random)
  const k = sealKey(dh(e, recipientIdentityDh), e.publicKey, recipientIdentityDh)
  const out = concatBytes(VERSION_AD, e.publicKey, aeadSeal(k, ZERO_NONCE, prekeyMessage, VERSION_AD))
  if (!SEALED_BUCKETS.includes(out.length))
    throw new TalkenError('invalid_argument', 'prekey message not padded')
  return out
}

/**
 * Opens a sealed prekey body with our identity DH key, returning the prekey message inside.
 * Throws `decrypt_failed` when it is not one (for us), `malformed` for an unusable E.
 */
export function openSealedPrekey(sealed: Uint8Array, ourIdentityDh: DhKeyPair): Uint8Array {
  checkSealed(sealed)
  const e = sealed.subarray(1, 1 + DH_KEY_LENGTH)
  let shared: Uint8Array
  try {
    shared = dh(ourIdentityDh, e)
  } catch (cause) {
    throw new TalkenError('decrypt_failed', 'not a message for any session or prekey here', { cause })
  }
  const k = sealKey(shared, e, ourIdentityDh.publicKey)
  return aeadOpen(k, ZERO_NONCE, sealed.subarray(1 + DH_KEY_LENGTH), VERSION_AD)
}
