/**
 * Ed25519 (RFC 8032) signing keys through node:crypto (OpenSSL).
 *
 * Keys are made from 32 random seed bytes imported into OpenSSL (`raw-keys.ts`), not with
 * generateKeyPairSync: on Node 20 the key-generation job can deadlock under garbage collection
 * (DESIGN.md §9), and a seed is also what the key file stores.
 */
import { type KeyObject, randomBytes, sign, verify } from 'node:crypto'
import { TalkenError } from '../errors.ts'
import { privateKeyFromBytes, publicKeyBytes, publicKeyFromBytes } from './raw-keys.ts'

/** Ed25519 public key length in bytes. */
export const PUBLIC_KEY_LENGTH = 32
/** Ed25519 seed (private key) length in bytes. */
export const SEED_LENGTH = 32
/** Ed25519 signature length in bytes. */
export const SIGNATURE_LENGTH = 64

/** An Ed25519 key pair; the seed is kept only inside the KeyObject and the `seed` copy. */
export interface SigningKeyPair {
  /** 32-byte seed: the secret. */
  readonly seed: Uint8Array
  /** 32-byte public key. */
  readonly publicKey: Uint8Array
  /** Signs `message`, returning a 64-byte signature. */
  sign(message: Uint8Array): Uint8Array
}

/** Creates a key pair from a 32-byte seed (RFC 8032 §5.1.5). */
export function signingKeyFromSeed(seed: Uint8Array): SigningKeyPair {
  if (seed.length !== SEED_LENGTH) throw new TalkenError('invalid_argument', 'an Ed25519 seed is 32 bytes')
  const privateKey = privateKeyFromBytes('Ed25519', seed)
  const publicKey = publicKeyBytes(privateKey)
  const seedCopy = new Uint8Array(seed)
  return {
    seed: seedCopy,
    publicKey,
    sign: (message) => new Uint8Array(sign(null, message, privateKey)),
  }
}

/** Creates a fresh key pair from the system's CSPRNG. */
export function generateSigningKey(): SigningKeyPair {
  return signingKeyFromSeed(randomBytes(SEED_LENGTH))
}

/**
 * Public keys as OpenSSL objects, by value: building one costs about as much as a verification,
 * and the same few keys (contacts' devices, room members) sign most of what arrives. Bounded;
 * the oldest entry goes first.
 */
const publicKeyCache = new Map<string, KeyObject>()
const PUBLIC_KEY_CACHE_SIZE = 1024

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  const id = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('latin1')
  let key = publicKeyCache.get(id)
  if (key === undefined) {
    key = publicKeyFromBytes('Ed25519', publicKey)
    if (publicKeyCache.size >= PUBLIC_KEY_CACHE_SIZE)
      publicKeyCache.delete(publicKeyCache.keys().next().value!)
    publicKeyCache.set(id, key)
  }
  return key
}

/**
 * The y coordinates (little-endian, sign bit cleared) of the eight points of small order, as
 * libsodium's `has_small_order` lists them: the identity (y = 1), the point of order 2
 * (y = p − 1), the two of order 4 (y = 0) and the four of order 8 (two y values). A signature by
 * such a key proves nothing: with R = identity and S = 0 it verifies for every message (the
 * identity) or for one message in 2, 4 or 8, in OpenSSL as in RFC 8032's cofactorless equation.
 */
const SMALL_ORDER_Y = [
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
].map((hex) => Buffer.from(hex, 'hex'))

/**
 * What makes a 32-byte point encoding (a public key, or a signature's R) unfit, or undefined:
 * not canonical (its y, sign bit cleared, is p = 2^255 − 19 or more: another encoding of a point
 * that has a canonical one), or of small order (any sign bit: this also refuses x = 0 written with
 * the sign bit set, "−0", which only y = ±1 have). Whether it is a curve point at all is left to
 * OpenSSL. Keys made by {@link signingKeyFromSeed} are never refused: they are canonical, and of
 * the large prime order.
 */
export function pointProblem(point: Uint8Array): string | undefined {
  if (point.length !== PUBLIC_KEY_LENGTH) return 'is not 32 bytes'
  const y = Buffer.from(point)
  y[31]! &= 0x7f
  // y ≥ p: the top byte 0x7f, the 30 middle bytes 0xff, the lowest 0xed or more.
  let high = y[31] === 0x7f && y[0]! >= 0xed
  for (let i = 1; high && i < 31; i++) high = y[i] === 0xff
  if (high) return 'is not in canonical encoding'
  if (SMALL_ORDER_Y.some((bad) => bad.equals(y))) return 'is a point of small order'
  return undefined
}

/**
 * Throws `malformed` unless `key` is a usable Ed25519 public key encoding (see
 * {@link pointProblem}): for keys read from cards, certificates and links.
 */
export function checkPublicKey(key: Uint8Array, what: string): void {
  const problem = pointProblem(key)
  if (problem !== undefined)
    throw new TalkenError('malformed', `${what}: not a valid Ed25519 public key (it ${problem})`)
}

/**
 * Verifies an Ed25519 signature. Returns false for any invalid input (wrong lengths, a public key
 * that is not a curve point, is of small order or not canonically encoded, a signature whose R
 * is, a bad signature); never throws.
 */
export function verifySignature(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== PUBLIC_KEY_LENGTH || signature.length !== SIGNATURE_LENGTH) return false
  if (pointProblem(publicKey) !== undefined) return false
  if (pointProblem(signature.subarray(0, PUBLIC_KEY_LENGTH)) !== undefined) return false
  try {
    return verify(null, message, publicKeyObject(publicKey), signature)
  } catch {
    return false
  }
}

/** Joins a domain-separation label and a message, so a signature for one purpose is never valid for another. */
export function domainSeparated(label: string, message: Uint8Array): Uint8Array {
  const prefix = Buffer.from(`${label}\u0000`, 'utf8')
  const out = new Uint8Array(prefix.length + message.length)
  out.set(prefix, 0)
  out.set(message, prefix.length)
  return out
}
