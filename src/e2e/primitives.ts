/**
 * The cryptographic primitives of the end-to-end layer, all from OpenSSL through `node:crypto`:
 *
 * - X25519 (RFC 7748) key agreement. Private keys are 32 random bytes imported into OpenSSL
 *   (`identity/raw-keys.ts`), never made by `generateKeyPairSync('x25519')`: on Node 20 that job
 *   can deadlock under garbage collection (DESIGN.md §9), and ratchets make keys all the time.
 * - Ed25519 (RFC 8032) signatures: re-exported from `identity/ed25519.ts`.
 * - HKDF-SHA-256 (RFC 5869), HMAC-SHA-256 (RFC 2104), SHA-256 (FIPS 180-4).
 * - ChaCha20-Poly1305 AEAD (RFC 8439): 32-byte key, 12-byte nonce, 16-byte tag.
 *
 * Known-answer tests: test/e2e/primitives.test.ts against test/vectors/rfc-*.json.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  diffieHellman,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto'
import { TalkenError } from '../errors.ts'
import { privateKeyFromBytes, publicKeyBytes, publicKeyFromBytes } from '../identity/raw-keys.ts'

export { signingKeyFromSeed, verifySignature } from '../identity/ed25519.ts'

/** X25519 private and public key length. */
export const DH_KEY_LENGTH = 32
/** ChaCha20-Poly1305 key length. */
export const AEAD_KEY_LENGTH = 32
/** ChaCha20-Poly1305 nonce length. */
export const AEAD_NONCE_LENGTH = 12
/** ChaCha20-Poly1305 tag length. */
export const AEAD_TAG_LENGTH = 16

/** A source of cryptographically secure random bytes; injected so tests can replay. */
export type RandomSource = (length: number) => Uint8Array

/** The system CSPRNG. */
export const systemRandom: RandomSource = (length) => {
  const bytes = randomBytes(length)
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)
}

/**
 * A source that draws `poolBytes` at a time from `source` and hands them out in order: one call
 * into the CSPRNG per pool rather than one per request (a call costs as much as a ChaCha20-Poly1305
 * seal of a short message). For public values only, such as nonces: the bytes wait in memory
 * before they are used, and keys must come from randomness drawn after a state compromise, not
 * before it (post-compromise security). Requests longer than the pool go to `source` directly.
 */
export function bufferedRandom(source: RandomSource = systemRandom, poolBytes = 1024): RandomSource {
  let pool: Uint8Array = new Uint8Array(0)
  let at = 0
  return (length) => {
    if (length > poolBytes) return source(length)
    if (at + length > pool.length) {
      pool = source(poolBytes)
      at = 0
    }
    at += length
    // A view, not a copy: the pool is never written again (a refill is a new array).
    return pool.subarray(at - length, at)
  }
}

/** An X25519 key pair. */
export interface DhKeyPair {
  /** 32 bytes: the secret. */
  readonly privateKey: Uint8Array
  /** 32 bytes. */
  readonly publicKey: Uint8Array
}

const privateKeyObjects = new WeakMap<Uint8Array, KeyObject>()

function privateKeyObject(privateKey: Uint8Array): KeyObject {
  let key = privateKeyObjects.get(privateKey)
  if (key === undefined) {
    key = privateKeyFromBytes('X25519', privateKey)
    privateKeyObjects.set(privateKey, key)
  }
  return key
}

/** The key pair of a 32-byte X25519 private key (any 32 bytes; X25519 clamps them). */
export function dhKeyFromPrivate(privateKey: Uint8Array): DhKeyPair {
  if (!(privateKey instanceof Uint8Array) || privateKey.length !== DH_KEY_LENGTH) {
    throw new TalkenError('invalid_argument', 'an X25519 private key is 32 bytes')
  }
  const own = new Uint8Array(privateKey)
  return { privateKey: own, publicKey: publicKeyBytes(privateKeyObject(own)) }
}

/** A fresh X25519 key pair from `random` (32 bytes imported into OpenSSL). */
export function generateDhKey(random: RandomSource = systemRandom): DhKeyPair {
  return dhKeyFromPrivate(random(DH_KEY_LENGTH))
}

/**
 * Whether a 32-byte X25519 public key is in its one canonical encoding: u < 2^255 − 19, so the top
 * bit clear and not one of the 19 values at or above p. X25519 ignores the top bit and reduces u
 * mod p (RFC 7748 §5), so each key has other encodings with the same shared secret; refusing them
 * means a sealed message has one encoding, and a relay cannot re-shape one into a "new" message.
 */
export function isCanonicalDhKey(key: Uint8Array): boolean {
  if (key.length !== DH_KEY_LENGTH || (key[31]! & 0x80) !== 0) return false
  if (key[31] !== 0x7f || key[0]! < 0xed) return true
  for (let i = 1; i < 31; i++) if (key[i] !== 0xff) return true
  return false
}

/**
 * X25519(ours, theirs): the 32-byte shared secret. Throws `malformed` when `theirPublic` is not
 * 32 bytes, not canonical ({@link isCanonicalDhKey}), or a low-order point (OpenSSL refuses an
 * all-zero result, RFC 7748 §6.1). Every protocol use goes through this.
 */
export function dh(ours: DhKeyPair, theirPublic: Uint8Array): Uint8Array {
  if (
    theirPublic instanceof Uint8Array &&
    theirPublic.length === DH_KEY_LENGTH &&
    !isCanonicalDhKey(theirPublic)
  ) {
    throw new TalkenError('malformed', 'an X25519 public key not in its canonical encoding')
  }
  return x25519(ours, theirPublic)
}

/**
 * The X25519 function exactly as RFC 7748 §5 defines it (the top bit of u masked, u reduced mod
 * p), for its known-answer tests; protocol code uses {@link dh}.
 */
export function x25519(ours: DhKeyPair, theirPublic: Uint8Array): Uint8Array {
  if (!(theirPublic instanceof Uint8Array) || theirPublic.length !== DH_KEY_LENGTH) {
    throw new TalkenError('malformed', 'an X25519 public key is 32 bytes')
  }
  try {
    const publicKey = publicKeyFromBytes('X25519', theirPublic)
    return new Uint8Array(diffieHellman({ privateKey: privateKeyObject(ours.privateKey), publicKey }))
  } catch (cause) {
    throw new TalkenError('malformed', 'not a usable X25519 public key', { cause })
  }
}

/** HKDF-SHA-256 (RFC 5869): `length` bytes (at most 8160) from `ikm`, `salt` and `info`. */
export function hkdf(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array | string,
  length: number,
): Uint8Array {
  const infoBytes = typeof info === 'string' ? Buffer.from(info, 'utf8') : info
  return new Uint8Array(hkdfSync('sha256', ikm, salt, infoBytes, length))
}

/** HMAC-SHA-256 (RFC 2104). */
export function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  const mac = createHmac('sha256', key).update(data).digest()
  return new Uint8Array(mac.buffer, mac.byteOffset, mac.length)
}

/** SHA-256. */
export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest())
}

function checkAead(key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== AEAD_KEY_LENGTH) throw new TalkenError('invalid_argument', 'an AEAD key is 32 bytes')
  if (nonce.length !== AEAD_NONCE_LENGTH) {
    throw new TalkenError('invalid_argument', 'an AEAD nonce is 12 bytes')
  }
}

/**
 * Associated data: bytes, or parts authenticated as their concatenation (each handed to the cipher
 * in turn, so that nothing is copied to join them).
 */
export type AssociatedData = Uint8Array | readonly Uint8Array[]

function setAad(
  cipher: { setAAD(ad: Uint8Array, options: { plaintextLength: number }): unknown },
  ad: AssociatedData,
  plaintextLength: number,
): void {
  if (ad instanceof Uint8Array) cipher.setAAD(ad, { plaintextLength })
  else for (const part of ad) cipher.setAAD(part, { plaintextLength })
}

/** ChaCha20-Poly1305 encryption (RFC 8439 §2.8): returns ciphertext ‖ 16-byte tag. */
export function aeadSeal(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  ad: AssociatedData,
): Uint8Array {
  const out = uninitializedBytes(plaintext.length + AEAD_TAG_LENGTH)
  aeadSealInto(out, 0, key, nonce, plaintext, ad)
  return out
}

/**
 * As {@link aeadSeal}, but writes ciphertext ‖ tag into `out` at `offset` (which must have room
 * for them), so that a message is assembled with one copy of its body. `plaintext` must not
 * overlap that range.
 */
export function aeadSealInto(
  out: Uint8Array,
  offset: number,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  ad: AssociatedData,
): void {
  checkAead(key, nonce)
  if (
    !Number.isSafeInteger(offset) ||
    offset < 0 ||
    out.length - offset < plaintext.length + AEAD_TAG_LENGTH
  ) {
    throw new TalkenError('invalid_argument', 'no room for the sealed message')
  }
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LENGTH })
  setAad(cipher, ad, plaintext.length)
  const body = cipher.update(plaintext)
  out.set(body, offset)
  const rest = cipher.final()
  // Always so for a stream cipher; checked because `out` may be uninitialized memory.
  if (body.length + rest.length !== plaintext.length) {
    throw new TalkenError('invalid_argument', 'the cipher did not return one byte per plaintext byte')
  }
  out.set(rest, offset + body.length)
  out.set(cipher.getAuthTag(), offset + plaintext.length)
}

/**
 * ChaCha20-Poly1305 decryption of ciphertext ‖ tag. Throws `decrypt_failed` when the tag does not
 * verify (wrong key, altered ciphertext or associated data) or the input is shorter than a tag.
 */
export function aeadOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  ad: AssociatedData,
): Uint8Array {
  checkAead(key, nonce)
  if (sealed.length < AEAD_TAG_LENGTH)
    throw new TalkenError('decrypt_failed', 'ciphertext shorter than a tag')
  const split = sealed.length - AEAD_TAG_LENGTH
  try {
    const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LENGTH })
    setAad(decipher, ad, split)
    decipher.setAuthTag(sealed.subarray(split))
    const body = decipher.update(sealed.subarray(0, split))
    const rest = decipher.final()
    if (rest.length === 0) return new Uint8Array(body.buffer, body.byteOffset, body.length)
    return new Uint8Array(Buffer.concat([body, rest]))
  } catch (cause) {
    throw new TalkenError('decrypt_failed', 'the message does not decrypt (altered, or not for this key)', {
      cause,
    })
  }
}

/**
 * `length` bytes of fresh memory, not zero-filled, in an ArrayBuffer of their own (never Node's
 * shared pool): only for output that the caller overwrites entirely before anyone reads it.
 */
export function uninitializedBytes(length: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(length)
  return new Uint8Array(b.buffer, b.byteOffset, b.length)
}

/** Concatenates byte arrays. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0
  for (const p of parts) length += p.length
  const out = new Uint8Array(length)
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

/** Constant-time equality for secrets of equal length (false for different lengths). */
export function secretsEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!
  return diff === 0
}
