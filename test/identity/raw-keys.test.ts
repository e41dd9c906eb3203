/**
 * The fast key import (JWK) against the slow one (PKCS#8 DER) it replaces, and the RFC vectors
 * through the fast one. If a Node ever read a private JWK differently, these fail.
 */
import assert from 'node:assert/strict'
import { diffieHellman, randomBytes, sign, verify } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import {
  type OkpCurve,
  privateKeyFromBytes,
  privateKeyFromPkcs8,
  publicKeyBytes,
  publicKeyFromBytes,
} from '../../src/identity/raw-keys.ts'
import { throwsCode } from '../helpers/errors.ts'

const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'))
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex')
// biome-ignore lint/suspicious/noExplicitAny: vector files are plain JSON
const vectors = (name: string): any =>
  JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8'))

describe('raw key objects', () => {
  for (const curve of ['X25519', 'Ed25519'] as OkpCurve[]) {
    it(`${curve}: the JWK import gives the same key as PKCS#8, for 200 random keys`, () => {
      for (let i = 0; i < 200; i++) {
        const d = new Uint8Array(randomBytes(32))
        const fast = privateKeyFromBytes(curve, d)
        const slow = privateKeyFromPkcs8(curve, d)
        assert.equal(fast.asymmetricKeyType, curve.toLowerCase())
        assert.equal(toHex(publicKeyBytes(fast)), toHex(publicKeyBytes(slow)))
        assert.deepEqual(
          fast.export({ format: 'der', type: 'pkcs8' }),
          slow.export({ format: 'der', type: 'pkcs8' }),
        )
        const pub = publicKeyFromBytes(curve, publicKeyBytes(fast))
        assert.equal(pub.type, 'public')
        assert.equal(toHex(publicKeyBytes(pub)), toHex(publicKeyBytes(slow)))
      }
    })

    it(`${curve}: a private key of any length but 32 bytes is refused with invalid_argument`, () => {
      for (const n of [0, 31, 33, 64]) {
        throwsCode(() => privateKeyFromBytes(curve, new Uint8Array(n)), 'invalid_argument')
      }
      // The refusals did not turn the fast import off: it still gives the PKCS#8 key.
      const d = new Uint8Array(randomBytes(32))
      assert.equal(
        toHex(publicKeyBytes(privateKeyFromBytes(curve, d))),
        toHex(publicKeyBytes(privateKeyFromPkcs8(curve, d))),
      )
    })
  }

  it('X25519: RFC 7748 §6.1 through the JWK import', () => {
    const v = vectors('rfc7748-x25519.json').dh
    const alice = privateKeyFromBytes('X25519', hex(v.alicePrivate))
    const bob = privateKeyFromBytes('X25519', hex(v.bobPrivate))
    assert.equal(toHex(publicKeyBytes(alice)), v.alicePublic)
    assert.equal(toHex(publicKeyBytes(bob)), v.bobPublic)
    const shared = diffieHellman({
      privateKey: alice,
      publicKey: publicKeyFromBytes('X25519', hex(v.bobPublic)),
    })
    assert.equal(shared.toString('hex'), v.shared)
  })

  it('Ed25519: RFC 8032 §7.1 through the JWK import', () => {
    for (const v of vectors('rfc8032-ed25519.json').vectors) {
      const key = privateKeyFromBytes('Ed25519', hex(v.seed))
      assert.equal(toHex(publicKeyBytes(key)), v.publicKey)
      assert.equal(sign(null, hex(v.message), key).toString('hex'), v.signature)
      assert.ok(
        verify(null, hex(v.message), publicKeyFromBytes('Ed25519', hex(v.publicKey)), hex(v.signature)),
      )
    }
  })
})
