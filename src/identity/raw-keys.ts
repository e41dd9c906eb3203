/**
 * OpenSSL key objects for 32-byte X25519 and Ed25519 keys, and back to bytes.
 *
 * Keys go in and out as JWK (RFC 8037), not as DER. Node hands a JWK's bytes to OpenSSL's raw-key
 * constructors, while DER goes through OpenSSL 3's decoder framework, which costs far more than
 * the key operation itself. Measured on Node 20 (OpenSSL 3): importing a private key 397 µs as
 * PKCS#8, 40 µs as JWK; a public key 92 µs as SPKI, 8 µs as JWK; reading a public key 72 µs as
 * SPKI, 2 µs as JWK. An X25519 agreement is about 38 µs, so DER made every DH ratchet step several
 * times dearer than its arithmetic.
 *
 * A private JWK must name its public key `x` too, which is what we want to learn. Node reads only
 * `d` for a private key and derives the public key from it, so `x` is left empty; should a Node
 * ever check `x` against `d`, the import falls back to PKCS#8 (slower, same key). The known-answer
 * tests (RFC 7748, RFC 8032) run through these functions.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { TalkenError } from '../errors.ts'

/** Length of every X25519 and Ed25519 key Talken handles, private or public. */
const KEY_LENGTH = 32

/** The two curves Talken uses, as JWK names them. */
export type OkpCurve = 'X25519' | 'Ed25519'

// ASN.1 DER prefixes (RFC 8410) of a PKCS#8 PrivateKeyInfo, for the fallback only.
const PKCS8_PREFIX: Readonly<Record<OkpCurve, Buffer>> = {
  X25519: Buffer.from('302e020100300506032b656e04220420', 'hex'),
  Ed25519: Buffer.from('302e020100300506032b657004220420', 'hex'),
}

/** Whether this Node takes a private JWK without its `x`; set by the first import that fails. */
let privateJwkWorks = true

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')
}

/** A private key object from 32 raw bytes (an X25519 scalar or an Ed25519 seed). */
export function privateKeyFromBytes(curve: OkpCurve, privateKey: Uint8Array): KeyObject {
  if (privateKey.length !== KEY_LENGTH) {
    throw new TalkenError('invalid_argument', `an ${curve} private key is ${KEY_LENGTH} bytes`)
  }
  if (privateJwkWorks) {
    try {
      return createPrivateKey({
        key: { kty: 'OKP', crv: curve, d: base64url(privateKey), x: '' },
        format: 'jwk',
      })
    } catch {
      privateJwkWorks = false
    }
  }
  return privateKeyFromPkcs8(curve, privateKey)
}

/** The same key object as {@link privateKeyFromBytes}, through PKCS#8: the slow way, kept as its fallback. */
export function privateKeyFromPkcs8(curve: OkpCurve, privateKey: Uint8Array): KeyObject {
  return createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX[curve], privateKey]),
    format: 'der',
    type: 'pkcs8',
  })
}

/** A public key object from 32 raw bytes. Throws when OpenSSL refuses them. */
export function publicKeyFromBytes(curve: OkpCurve, publicKey: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: curve, x: base64url(publicKey) }, format: 'jwk' })
}

/** The 32 raw bytes of the public key of `key` (a private or a public key object). */
export function publicKeyBytes(key: KeyObject): Uint8Array {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key
  const { x } = publicKey.export({ format: 'jwk' })
  if (typeof x !== 'string') throw new TypeError('not an OKP public key')
  return new Uint8Array(Buffer.from(x, 'base64url'))
}
