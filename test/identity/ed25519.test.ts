/**
 * Ed25519 public keys and signature R values that prove nothing are refused: points of small
 * order (libsodium's `has_small_order` list) and non-canonical encodings (y ≥ p). OpenSSL alone
 * accepts them: with A of small order, R = identity and S = 0 verify for 1 message in 8 (or 4,
 * or 2; every one for the identity).
 */
import assert from 'node:assert/strict'
import { verify } from 'node:crypto'
import { describe, it } from 'node:test'
import { decodeContactCard, encodeContactCard, signContactCard } from '../../src/identity/contact-card.ts'
import { decodeDeviceCert, encodeDeviceCert } from '../../src/identity/device-cert.ts'
import {
  domainSeparated,
  generateSigningKey,
  pointProblem,
  signingKeyFromSeed,
  verifySignature,
} from '../../src/identity/ed25519.ts'
import { createIdentity } from '../../src/identity/identity.ts'
import { publicKeyFromBytes } from '../../src/identity/raw-keys.ts'
import { encodeCbor } from '../../src/wire/cbor.ts'
import { throwsCode } from '../helpers/errors.ts'

const P = 2n ** 255n - 19n
function le(n: bigint, sign = false): Uint8Array {
  const b = new Uint8Array(32)
  for (let i = 0; i < 32; i++) {
    b[i] = Number(n & 255n)
    n >>= 8n
  }
  if (sign) b[31]! |= 0x80
  return b
}
const fromHex = (hex: string) => new Uint8Array(Buffer.from(hex, 'hex'))

/** The y values of the 8 small-order points; each with both sign bits below. */
const SMALL_ORDER: [string, Uint8Array][] = [
  ['identity (y = 1)', le(1n)],
  ['order 2 (y = p − 1)', le(P - 1n)],
  ['order 4 (y = 0)', le(0n)],
  ['order 8', fromHex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05')],
  ['order 8', fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a')],
]
const withBothSigns = SMALL_ORDER.flatMap(([name, y]): [string, Uint8Array][] => {
  const signed = new Uint8Array(y)
  signed[31]! |= 0x80
  return [
    [name, y],
    [`${name}, sign bit set`, signed],
  ]
})

/** R = the identity point, S = 0. */
const FORGED = (() => {
  const s = new Uint8Array(64)
  s[0] = 1
  return s
})()
const messages = Array.from({ length: 256 }, (_, i) => new TextEncoder().encode(`message ${i}`))

/** What OpenSSL alone says, without our checks. */
function opensslVerifies(key: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify(null, message, publicKeyFromBytes('Ed25519', key), signature)
  } catch {
    return false
  }
}

describe('Ed25519 key validity', () => {
  it('the small-order list is right: OpenSSL takes a forged signature for some messages, never for a real key', () => {
    for (const [name, key] of withBothSigns) {
      const forged = messages.filter((m) => opensslVerifies(key, m, FORGED)).length
      // 1 in 8 at worst: missing all 256 would happen with probability (7/8)^256 < 1e-14.
      assert.ok(forged > 0, `${name}: a small-order point (OpenSSL verified none of 256)`)
    }
    const real = generateSigningKey().publicKey
    assert.equal(messages.filter((m) => opensslVerifies(real, m, FORGED)).length, 0)
  })

  it('verifySignature refuses every small-order key, whatever the message', () => {
    for (const [name, key] of withBothSigns) {
      assert.equal(pointProblem(key), 'is a point of small order', name)
      for (const m of messages) assert.equal(verifySignature(key, m, FORGED), false, name)
    }
  })

  it('refuses non-canonical encodings (y ≥ p), which OpenSSL reads as another point', () => {
    // y = p + 1 is the identity again: OpenSSL takes the forged signature under it too.
    assert.equal(opensslVerifies(le(P + 1n), messages[0]!, FORGED), true)
    for (let y = P; y < 2n ** 255n; y++) {
      for (const sign of [false, true]) {
        assert.equal(pointProblem(le(y, sign)), 'is not in canonical encoding', `y = p + ${y - P}`)
        assert.equal(verifySignature(le(y, sign), messages[0]!, FORGED), false)
      }
    }
    assert.equal(pointProblem(le(P - 20n)), undefined)
  })

  it('refuses a signature whose R is of small order or not canonical, and accepts real ones', () => {
    const me = signingKeyFromSeed(new Uint8Array(32).fill(7))
    const message = messages[1]!
    const good = me.sign(message)
    assert.equal(verifySignature(me.publicKey, message, good), true)
    for (const [name, r] of [...withBothSigns, ['y = p + 1', le(P + 1n)] as [string, Uint8Array]]) {
      const bad = new Uint8Array(good)
      bad.set(r, 0)
      assert.equal(verifySignature(me.publicKey, message, bad), false, name)
    }
  })

  it('never refuses keys made from seeds', () => {
    for (let i = 0; i < 500; i++) {
      const key = generateSigningKey()
      assert.equal(pointProblem(key.publicKey), undefined)
      const sig = key.sign(messages[0]!)
      assert.equal(pointProblem(sig.subarray(0, 32)), undefined)
    }
  })

  it('refuses cards and certificates naming small-order keys, as malformed', () => {
    const identity = le(1n)
    // A card by the identity point, every signature R = identity and S = 0: every check but ours passes.
    const dev = [1, identity, 'phone', 1, FORGED]
    const card = [1, identity, 'Anyone', 1, [dev], [], [], FORGED]
    throwsCode(() => decodeContactCard(encodeCbor(card)), 'malformed')
    throwsCode(() => decodeDeviceCert(encodeCbor(dev)), 'malformed')
    // A real account certifying a small-order device key: refused too (its signatures prove nothing).
    const me = createIdentity({ deviceName: 'phone', now: 1_750_000_000_000 })
    const cert = { deviceKey: le(0n), deviceName: 'ghost', created: 1 }
    const signature = me.account.sign(
      domainSeparated(
        'talken/device-cert/v1',
        encodeCbor([1, me.account.publicKey, cert.deviceKey, cert.deviceName, cert.created]),
      ),
    )
    throwsCode(() => decodeDeviceCert(encodeDeviceCert({ ...cert, signature })), 'malformed')
    const good = signContactCard(me.account, {
      name: 'Ada',
      created: 1,
      devices: [me.deviceCert],
      addresses: [],
      extensions: [],
    })
    assert.equal(decodeContactCard(encodeContactCard(good)).name, 'Ada')
  })
})
