/**
 * Known-answer tests of the e2e primitives against the RFC vectors in test/vectors/, and a soak of
 * the X25519 key path the ratchet uses (DESIGN.md §9: it must not hang).
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import {
  aeadOpen,
  aeadSeal,
  dh,
  dhKeyFromPrivate,
  generateDhKey,
  hkdf,
  isCanonicalDhKey,
  signingKeyFromSeed,
  verifySignature,
  x25519,
} from '../../src/e2e/primitives.ts'
import { throwsCode } from '../helpers/errors.ts'

const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'))
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex')
// biome-ignore lint/suspicious/noExplicitAny: vector files are plain JSON
const vectors = (name: string): any =>
  JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8'))

describe('e2e primitives: RFC known answers', () => {
  it('ChaCha20-Poly1305 (RFC 8439 §2.8.2)', () => {
    for (const v of vectors('rfc8439-aead.json').vectors) {
      const sealed = aeadSeal(hex(v.key), hex(v.nonce), hex(v.plaintext), hex(v.ad))
      assert.equal(toHex(sealed), v.ciphertext + v.tag)
      assert.equal(toHex(aeadOpen(hex(v.key), hex(v.nonce), sealed, hex(v.ad))), v.plaintext)
      const bad = new Uint8Array(sealed)
      bad[0]! ^= 1
      throwsCode(() => aeadOpen(hex(v.key), hex(v.nonce), bad, hex(v.ad)), 'decrypt_failed')
      throwsCode(() => aeadOpen(hex(v.key), hex(v.nonce), sealed, new Uint8Array(0)), 'decrypt_failed')
      throwsCode(
        () => aeadOpen(hex(v.key), hex(v.nonce), sealed.subarray(0, 15), hex(v.ad)),
        'decrypt_failed',
      )
    }
  })

  it('ChaCha20-Poly1305 with associated data in parts: the same as their concatenation', () => {
    for (const v of vectors('rfc8439-aead.json').vectors) {
      const ad = hex(v.ad)
      for (const cut of [0, 1, ad.length >> 1, ad.length]) {
        const parts = [ad.subarray(0, cut), ad.subarray(cut)]
        const sealed = aeadSeal(hex(v.key), hex(v.nonce), hex(v.plaintext), parts)
        assert.equal(toHex(sealed), v.ciphertext + v.tag, `cut at ${cut}`)
        assert.equal(toHex(aeadOpen(hex(v.key), hex(v.nonce), sealed, parts)), v.plaintext)
        // A part left out is associated data that differs.
        if (cut < ad.length) {
          throwsCode(
            () => aeadOpen(hex(v.key), hex(v.nonce), sealed, [ad.subarray(0, cut)]),
            'decrypt_failed',
          )
        }
      }
    }
  })

  it('X25519 (RFC 7748 §5.2 and §6.1)', () => {
    const v = vectors('rfc7748-x25519.json')
    for (const s of v.scalarMult) {
      assert.equal(toHex(x25519(dhKeyFromPrivate(hex(s.scalar)), hex(s.u))), s.output)
    }
    const alice = dhKeyFromPrivate(hex(v.dh.alicePrivate))
    const bob = dhKeyFromPrivate(hex(v.dh.bobPrivate))
    assert.equal(toHex(alice.publicKey), v.dh.alicePublic)
    assert.equal(toHex(bob.publicKey), v.dh.bobPublic)
    assert.equal(toHex(dh(alice, bob.publicKey)), v.dh.shared)
    assert.equal(toHex(dh(bob, alice.publicKey)), v.dh.shared)
    // Low-order points give an all-zero secret, which OpenSSL refuses: a typed error.
    throwsCode(() => dh(alice, new Uint8Array(32)), 'malformed')
    throwsCode(() => dh(alice, new Uint8Array(31)), 'malformed')
    // dh() takes each public key in its one encoding only: the top bit set, or u ≥ p, is refused,
    // though X25519 itself would give the same secret.
    const flipped = new Uint8Array(bob.publicKey)
    flipped[31]! |= 0x80
    assert.equal(toHex(x25519(alice, flipped)), v.dh.shared)
    throwsCode(() => dh(alice, flipped), 'malformed')
    const p = new Uint8Array(32).fill(0xff)
    p[0] = 0xed
    p[31] = 0x7f
    throwsCode(() => dh(alice, p), 'malformed')
    assert.equal(isCanonicalDhKey(p), false)
    p[0] = 0xec
    assert.equal(isCanonicalDhKey(p), true)
  })

  it('Ed25519 (RFC 8032 §7.1 tests 1–3)', () => {
    for (const v of vectors('rfc8032-ed25519.json').vectors) {
      const key = signingKeyFromSeed(hex(v.seed))
      assert.equal(toHex(key.publicKey), v.publicKey)
      assert.equal(toHex(key.sign(hex(v.message))), v.signature)
      assert.ok(verifySignature(hex(v.publicKey), hex(v.message), hex(v.signature)))
      const bad = hex(v.signature)
      bad[5]! ^= 0x10
      assert.equal(verifySignature(hex(v.publicKey), hex(v.message), bad), false)
    }
  })

  it('HKDF-SHA-256 (RFC 5869 A.1–A.3)', () => {
    for (const v of vectors('rfc5869-hkdf.json').vectors) {
      assert.equal(toHex(hkdf(hex(v.ikm), hex(v.salt), hex(v.info), v.length)), v.okm, v.name)
    }
  })
})

describe('e2e primitives: X25519 key soak', () => {
  it('makes keys and agrees on secrets many times over without hanging', () => {
    // Bounded by count, not time: the point is that the path completes (DESIGN.md §9).
    const ROUNDS = Number(process.env.TALKEN_SOAK_KEYS ?? 20_000)
    let previous = generateDhKey()
    let check = 0
    for (let i = 0; i < ROUNDS; i++) {
      const next = generateDhKey()
      const a = dh(next, previous.publicKey)
      if (i % 1000 === 0) assert.deepEqual(dh(previous, next.publicKey), a)
      check ^= a[0]!
      previous = next
    }
    assert.ok(check >= 0)
  })
})
