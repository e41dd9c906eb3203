/**
 * X3DH and prekey bundles: both sides agree, the bundle fits a contact card extension at its
 * largest, its signature covers every field, and the identity DH key is the device's.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { dhKeyFromPrivate, generateDhKey } from '../../src/e2e/primitives.ts'
import {
  decodePrekeyBundle,
  e2eIdentity,
  encodePrekeyBundle,
  MAX_BUNDLE_BYTES,
  MAX_BUNDLE_ONE_TIME_PREKEYS,
  signPrekeyBundle,
  verifyIdentityDh,
  x3dhInitiate,
  x3dhRespond,
} from '../../src/e2e/x3dh.ts'
import { CardExtension, decodeContactCard, encodeContactCard } from '../../src/identity/contact-card.ts'
import { signingKeyFromSeed } from '../../src/identity/ed25519.ts'
import { createIdentity, makeContactCard } from '../../src/identity/identity.ts'
import { throwsCode } from '../helpers/errors.ts'
import { seededRandom } from './helpers.ts'

const alice = e2eIdentity(signingKeyFromSeed(new Uint8Array(32).fill(1)))
const bob = e2eIdentity(signingKeyFromSeed(new Uint8Array(32).fill(2)))

function fullBundle() {
  const random = seededRandom(9)
  const signed = generateDhKey(random)
  const oneTime = Array.from({ length: MAX_BUNDLE_ONE_TIME_PREKEYS }, () => generateDhKey(random))
  const bundle = signPrekeyBundle(bob, {
    signedPrekeyId: 0xffff_ffff,
    signedPrekey: signed.publicKey,
    created: 1_750_000_000,
    oneTimePrekeys: oneTime.map((k, i) => ({ id: 0xffff_ff00 + i, key: k.publicKey })),
  })
  return { bundle, signed, oneTime }
}

describe('x3dh', () => {
  it('the identity DH key is derived from the device key, and signed by it', () => {
    const again = e2eIdentity(signingKeyFromSeed(new Uint8Array(32).fill(1)))
    assert.deepEqual(again.identityDh.publicKey, alice.identityDh.publicKey)
    verifyIdentityDh(alice.device.publicKey, alice.identityDh.publicKey, alice.identitySignature)
    throwsCode(
      () => verifyIdentityDh(bob.device.publicKey, alice.identityDh.publicKey, alice.identitySignature),
      'bad_signature',
    )
  })

  it('initiator and responder derive the same secrets, with and without a one-time prekey', () => {
    const { bundle, signed, oneTime } = fullBundle()
    const ephemeral = generateDhKey()
    const withOpk = x3dhInitiate(alice, bundle, ephemeral, oneTime[3]!.publicKey)
    assert.deepEqual(
      x3dhRespond(bob, signed, oneTime[3], alice.identityDh.publicKey, ephemeral.publicKey),
      withOpk,
    )
    const without = x3dhInitiate(alice, bundle, ephemeral, undefined)
    assert.deepEqual(
      x3dhRespond(bob, signed, undefined, alice.identityDh.publicKey, ephemeral.publicKey),
      without,
    )
    assert.notDeepEqual(without.sk, withOpk.sk)
    // A different identity gets different secrets.
    const mallory = e2eIdentity(signingKeyFromSeed(new Uint8Array(32).fill(3)))
    assert.notDeepEqual(x3dhInitiate(mallory, bundle, ephemeral, undefined).sk, without.sk)
  })

  it('the largest bundle fits one card extension, and the card carries it', () => {
    const { bundle } = fullBundle()
    const bytes = encodePrekeyBundle(bundle)
    assert.ok(bytes.length <= MAX_BUNDLE_BYTES, `${bytes.length} bytes`)
    assert.deepEqual(decodePrekeyBundle(bytes), bundle)
    const id = createIdentity({ now: 1_750_000_000_000, deviceName: 'b' })
    const card = makeContactCard(id, {
      name: 'B',
      extensions: [[CardExtension.prekeys, bytes]],
      now: 1_750_000_000_000,
    })
    assert.deepEqual(decodeContactCard(encodeContactCard(card)).extensions[0]![1], bytes)
  })

  it('every byte of a bundle is covered: any change is refused', () => {
    const bytes = encodePrekeyBundle(fullBundle().bundle)
    for (let i = 0; i < bytes.length; i++) {
      const bad = new Uint8Array(bytes)
      bad[i]! ^= 0x01
      throwsCode(
        () => decodePrekeyBundle(bad),
        'bad_signature',
        'malformed',
        'non_canonical',
        'unsupported_version',
        'too_large',
      )
    }
  })

  it('refuses to sign a bundle others would refuse', () => {
    const k = dhKeyFromPrivate(new Uint8Array(32).fill(7))
    const many = Array.from({ length: MAX_BUNDLE_ONE_TIME_PREKEYS + 1 }, (_, i) => ({
      id: i + 1,
      key: k.publicKey,
    }))
    throwsCode(
      () =>
        signPrekeyBundle(bob, {
          signedPrekeyId: 1,
          signedPrekey: k.publicKey,
          created: 1,
          oneTimePrekeys: many,
        }),
      'invalid_argument',
    )
    throwsCode(
      () =>
        signPrekeyBundle(bob, {
          signedPrekeyId: 0,
          signedPrekey: k.publicKey,
          created: 1,
          oneTimePrekeys: [],
        }),
      'invalid_argument',
    )
  })
})
