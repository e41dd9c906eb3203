/**
 * Room keys: the symmetric keys post bodies are encrypted with, and how one is handed to a
 * member.
 *
 * Handing a key over is pluggable ({@link KeySealer}) so that the node can later seal room keys
 * inside end-to-end sessions; {@link x25519Sealer} is a self-contained default: an ephemeral
 * X25519 key agreement with the member's sealing key, HKDF-SHA-256, ChaCha20-Poly1305.
 *
 * ```
 * sealedKey = ephemeralPublic(32) || ChaCha20-Poly1305(k, nonce 0^12, roomKey(32), ad)  (80 bytes)
 * k  = HKDF-SHA-256(ikm = X25519(ephemeral, sealingKey), salt = ephemeralPublic || sealingKey,
 *                   info = "talken/room-key-seal/v1", 32)
 * ad = "talken/room-key-seal/v1" || keyId(16) || member account key(32)
 * post ciphertext = ChaCha20-Poly1305(roomKey, nonce(12), plaintext,
 *                   "talken/room-post/v1" || roomId(32) || author(32) || keyId(16))
 * keyId = SHA-256("talken/room-key-id/v1" || roomKey)[0..16]
 * ```
 *
 * A key ID commits to its key: a member who copies another entry's key ID into an entry of their
 * own cannot make it name a key of their choosing, because a key whose ID does not match is not
 * taken (see {@link openSealedKey}).
 */

import {
  AEAD_NONCE_LENGTH,
  aeadOpen,
  aeadSeal,
  concatBytes,
  type DhKeyPair,
  dh,
  generateDhKey,
  hkdf,
  type RandomSource,
  sha256,
} from '../e2e/primitives.ts'
import { TalkenError } from '../errors.ts'
import { bytesEqual } from '../wire/cbor.ts'
import type { RoomEntry } from './entry.ts'
import { KEY_ID_LENGTH, ROOM_KEY_LENGTH } from './limits.ts'
import { decodePostBody } from './room-bodies.ts'

const SEAL_LABEL = 'talken/room-key-seal/v1'
const KEY_ID_LABEL = new TextEncoder().encode('talken/room-key-id/v1')
const POST_LABEL = 'talken/room-post/v1'

/** A member as far as key hand-over is concerned. */
export interface SealTarget {
  /** The member's account key. */
  readonly account: Uint8Array
  /** The member's public sealing key, as carried in the genesis or add entry. */
  readonly sealingKey: Uint8Array
}

/**
 * Seals room keys for members and opens those sealed for us. Implementations must bind the
 * sealed key to `keyId` and the member, so a sealed key cannot be replayed under another ID.
 */
export interface KeySealer {
  /** This member's public sealing key, announced in its genesis or add entry. */
  readonly sealingKey: Uint8Array
  /** Seals `roomKey` for `member`. */
  seal(member: SealTarget, keyId: Uint8Array, roomKey: Uint8Array): Uint8Array
  /** Opens a key sealed for us (`self` is our own account); throws `decrypt_failed` when it is not ours. */
  open(self: Uint8Array, keyId: Uint8Array, sealed: Uint8Array): Uint8Array
  /**
   * Throws `malformed` when nothing could be sealed to `sealingKey` (a genesis or add announcing it
   * is refused: every later key hand-over to that member would fail, and with it the rotation).
   */
  check(sealingKey: Uint8Array): void
}

function sealAd(keyId: Uint8Array, account: Uint8Array): Uint8Array {
  return concatBytes(new TextEncoder().encode(SEAL_LABEL), keyId, account)
}

/**
 * The default sealer: an X25519 box to the member's sealing key (an X25519 public key).
 *
 * @example
 * const sealer = x25519Sealer(generateDhKey())
 * const sealed = sealer.seal({ account, sealingKey: sealer.sealingKey }, keyId, roomKey)
 */
export function x25519Sealer(own: DhKeyPair, random?: RandomSource): KeySealer {
  return {
    sealingKey: own.publicKey,
    check(sealingKey) {
      // A key off the curve's prime-order group, or not canonical, fails the agreement: as a seal would.
      dh(own, sealingKey)
    },
    seal(member, keyId, roomKey) {
      const eph = generateDhKey(random)
      const k = hkdf(
        dh(eph, member.sealingKey),
        concatBytes(eph.publicKey, member.sealingKey),
        SEAL_LABEL,
        32,
      )
      const box = aeadSeal(k, new Uint8Array(AEAD_NONCE_LENGTH), roomKey, sealAd(keyId, member.account))
      return concatBytes(eph.publicKey, box)
    },
    open(self, keyId, sealed) {
      if (sealed.length !== 32 + ROOM_KEY_LENGTH + 16) {
        throw new TalkenError('decrypt_failed', 'a sealed room key is 80 bytes')
      }
      const ephPublic = sealed.subarray(0, 32)
      let shared: Uint8Array
      try {
        shared = dh(own, ephPublic)
      } catch (cause) {
        throw new TalkenError('decrypt_failed', 'the sealed room key does not open', { cause })
      }
      const k = hkdf(shared, concatBytes(ephPublic, own.publicKey), SEAL_LABEL, 32)
      return aeadOpen(k, new Uint8Array(AEAD_NONCE_LENGTH), sealed.subarray(32), sealAd(keyId, self))
    },
  }
}

function postAd(roomId: Uint8Array, author: Uint8Array, keyId: Uint8Array): Uint8Array {
  return concatBytes(new TextEncoder().encode(POST_LABEL), roomId, author, keyId)
}

/** Encrypts a post's plaintext under a room key; the nonce is 12 random bytes. */
export function sealPost(
  roomKey: Uint8Array,
  keyId: Uint8Array,
  roomId: Uint8Array,
  author: Uint8Array,
  plaintext: Uint8Array,
  nonce: Uint8Array,
): Uint8Array {
  return aeadSeal(roomKey, nonce, plaintext, postAd(roomId, author, keyId))
}

/** Decrypts a post; throws `decrypt_failed` when the key is wrong or anything was altered. */
export function openPost(
  roomKey: Uint8Array,
  keyId: Uint8Array,
  roomId: Uint8Array,
  author: Uint8Array,
  ciphertext: Uint8Array,
  nonce: Uint8Array,
): Uint8Array {
  return aeadOpen(roomKey, nonce, ciphertext, postAd(roomId, author, keyId))
}

/** The key ID of `roomKey`: the first 16 bytes of SHA-256 over a label and the key. */
export function roomKeyId(roomKey: Uint8Array): Uint8Array {
  return sha256(concatBytes(KEY_ID_LABEL, roomKey)).slice(0, KEY_ID_LENGTH)
}

/**
 * Opens a room key sealed for us; undefined when it does not open, or when it is not the key
 * `keyId` names (a key sealed for us that does not open leaves its posts unreadable here, and the
 * entry that carried it stands).
 */
export function openSealedKey(
  sealer: KeySealer,
  self: Uint8Array,
  keyId: Uint8Array,
  sealed: Uint8Array,
): Uint8Array | undefined {
  let key: Uint8Array
  try {
    key = sealer.open(self, keyId, sealed)
  } catch (err) {
    if (err instanceof TalkenError && err.code === 'decrypt_failed') return undefined
    throw err
  }
  return bytesEqual(roomKeyId(key), keyId) ? key : undefined
}

/** A post entry's content, or undefined when `keyFor` has no key for it or it does not open. */
export function openPostEntry(
  entry: RoomEntry,
  keyFor: (keyId: Uint8Array) => Uint8Array | undefined,
): Uint8Array | undefined {
  const b = decodePostBody(entry.body)
  const key = keyFor(b.keyId)
  if (key === undefined) return undefined
  try {
    return openPost(key, b.keyId, entry.roomId, entry.author, b.ciphertext, b.nonce)
  } catch (err) {
    if (err instanceof TalkenError && err.code === 'decrypt_failed') return undefined
    throw err
  }
}
