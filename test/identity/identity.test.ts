import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeContactCard, encodeContactCard, signContactCard } from '../../src/identity/contact-card.ts'
import {
  decodeDeviceCert,
  encodeDeviceCert,
  issueDeviceCert,
  verifyDeviceCert,
} from '../../src/identity/device-cert.ts'
import { generateSigningKey, signingKeyFromSeed, verifySignature } from '../../src/identity/ed25519.ts'
import { createIdentity, identityFromSecrets, makeContactCard } from '../../src/identity/identity.ts'
import { safetyNumber } from '../../src/identity/safety-number.ts'
import { isTextId, parseTextId, toTextId } from '../../src/identity/text-id.ts'
import { throwsCode } from '../helpers/errors.ts'

const NOW = 1_750_000_000_000

describe('ed25519', () => {
  it('matches RFC 8032 §7.1 test 1', () => {
    const key = signingKeyFromSeed(
      Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex'),
    )
    assert.equal(
      Buffer.from(key.publicKey).toString('hex'),
      'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    )
    const sig = key.sign(new Uint8Array(0))
    assert.equal(
      Buffer.from(sig).toString('hex'),
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    )
    assert.ok(verifySignature(key.publicKey, new Uint8Array(0), sig))
  })

  it('refuses wrong signatures and malformed keys without throwing', () => {
    const key = generateSigningKey()
    const msg = new Uint8Array([1, 2, 3])
    const sig = key.sign(msg)
    assert.ok(verifySignature(key.publicKey, msg, sig))
    assert.equal(verifySignature(key.publicKey, new Uint8Array([1, 2, 4]), sig), false)
    assert.equal(verifySignature(new Uint8Array(32).fill(0xff), msg, sig), false)
    assert.equal(verifySignature(key.publicKey.subarray(1), msg, sig), false)
    assert.equal(verifySignature(key.publicKey, msg, sig.subarray(1)), false)
  })
})

describe('text IDs', () => {
  it('round-trips and has the documented shape', () => {
    const key = generateSigningKey().publicKey
    const id = toTextId(key)
    assert.match(id, /^tk1[a-z0-9]{58}$/)
    assert.deepEqual(parseTextId(id), key)
    assert.deepEqual(parseTextId(id.toUpperCase()), key)
    assert.ok(isTextId(id))
    // Mixed case is refused (BIP 350): one form per ID, in either case.
    throwsCode(() => parseTextId(`TK1${id.slice(3)}`), 'malformed')
  })

  it('detects every single-character typo', () => {
    const id = toTextId(generateSigningKey().publicKey)
    const alphabet = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l'
    for (let i = 3; i < id.length; i++) {
      const c = id[i]
      const other = alphabet[(alphabet.indexOf(c!) + 1 + (i % 31)) % 32]!
      throwsCode(() => parseTextId(id.slice(0, i) + other + id.slice(i + 1)), 'bad_checksum')
    }
  })

  it('refuses garbage and truncation as malformed', () => {
    const id = toTextId(generateSigningKey().publicKey)
    throwsCode(() => parseTextId(id.slice(0, -1)), 'malformed')
    throwsCode(() => parseTextId('hello'), 'malformed')
    throwsCode(() => parseTextId(`${id.slice(0, -1)}b`), 'malformed') // 'b' is not in the alphabet
  })
})

describe('device certificates', () => {
  it('verify under the account and only under it', () => {
    const account = generateSigningKey()
    const device = generateSigningKey()
    const cert = issueDeviceCert(account, device.publicKey, 'laptop', 1_750_000_000)
    verifyDeviceCert(account.publicKey, cert)
    throwsCode(() => verifyDeviceCert(generateSigningKey().publicKey, cert), 'bad_signature')
    const decoded = decodeDeviceCert(encodeDeviceCert(cert))
    assert.deepEqual(decoded, cert)
    throwsCode(() => verifyDeviceCert(account.publicKey, { ...cert, deviceName: 'phone' }), 'bad_signature')
  })
})

describe('contact cards', () => {
  it('round-trip and detect tampering', () => {
    const me = createIdentity({ now: NOW, deviceName: 'laptop' })
    const card = makeContactCard(me, { name: 'Ada', addresses: ['/ip4/127.0.0.1/tcp/4001'], now: NOW })
    const bytes = encodeContactCard(card)
    assert.deepEqual(decodeContactCard(bytes), card)
    // Any changed field, kept under the old signature, fails verification.
    throwsCode(() => decodeContactCard(encodeContactCard({ ...card, name: 'Eve' })), 'bad_signature')
    throwsCode(() => decodeContactCard(encodeContactCard({ ...card, addresses: [] })), 'bad_signature')
    // A card signed by another key, claiming Ada's account key, fails too.
    const mallory = createIdentity({ now: NOW })
    const forged = makeContactCard(mallory, { name: 'Ada', now: NOW })
    throwsCode(
      () => decodeContactCard(encodeContactCard({ ...forged, accountKey: card.accountKey })),
      'bad_signature',
    )
  })

  it('refuses a device certificate issued by another account', () => {
    const me = createIdentity({ now: NOW })
    const other = createIdentity({ now: NOW })
    throwsCode(
      () =>
        signContactCard(me.account, {
          name: 'x',
          created: 1,
          devices: [other.deviceCert],
          addresses: [],
          extensions: [],
        }),
      'invalid_argument',
    )
  })

  it('refuses names and fields outside the limits when signing', () => {
    const me = createIdentity({ now: NOW })
    throwsCode(() => makeContactCard(me, { name: '', now: NOW }), 'invalid_argument')
    throwsCode(() => makeContactCard(me, { name: 'x'.repeat(65), now: NOW }), 'invalid_argument')
    throwsCode(() => makeContactCard(me, { name: 'a\nb', now: NOW }), 'invalid_argument')
  })

  it('an identity rebuilt from its secrets is the same identity', () => {
    const me = createIdentity({ now: NOW })
    const again = identityFromSecrets(me.secrets)
    assert.equal(again.id, me.id)
    assert.deepEqual(again.deviceCert, me.deviceCert)
  })
})

describe('safety numbers', () => {
  it('are the same from both sides and differ for any other key', () => {
    const a = generateSigningKey().publicKey
    const b = generateSigningKey().publicKey
    const c = generateSigningKey().publicKey
    const ab = safetyNumber(a, b)
    assert.equal(ab, safetyNumber(b, a))
    assert.match(ab, /^(\d{5} ){11}\d{5}$/)
    assert.notEqual(ab, safetyNumber(a, c))
    assert.notEqual(ab, safetyNumber(c, b))
    const flipped = new Uint8Array(b)
    flipped[31]! ^= 1
    assert.notEqual(ab, safetyNumber(a, flipped))
  })
})
