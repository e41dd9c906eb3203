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
 * Verifies an Ed25519 signature. Returns false for any invalid input (wrong lengths, a public key
 * that is not a curve point, a bad signature); never throws.
 */
export function verifySignature(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== PUBLIC_KEY_LENGTH || signature.length !== SIGNATURE_LENGTH) return false
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
