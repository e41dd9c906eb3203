import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { decodeContactCard, encodeContactCard, signContactCard } from '../../src/identity/contact-card.ts'
import { parseContactLink, toContactLink } from '../../src/identity/contact-link.ts'
import { decodeDeviceCert, encodeDeviceCert, issueDeviceCert } from '../../src/identity/device-cert.ts'
import { signingKeyFromSeed } from '../../src/identity/ed25519.ts'
import { safetyNumber } from '../../src/identity/safety-number.ts'
import { parseTextId, toTextId } from '../../src/identity/text-id.ts'
import { decodeEnvelope, encodeEnvelope } from '../../src/wire/envelope.ts'

const v = JSON.parse(readFileSync(new URL('../vectors/wire.json', import.meta.url), 'utf8'))
const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'))
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex')

describe('known-answer vectors (test/vectors/wire.json)', () => {
  it('Ed25519, RFC 8032 §7.1 test 1', () => {
    const key = signingKeyFromSeed(hex(v.ed25519.seed))
    assert.equal(toHex(key.publicKey), v.ed25519.publicKey)
    assert.equal(toHex(key.sign(hex(v.ed25519.message))), v.ed25519.signature)
  })

  it('text ID', () => {
    assert.equal(toTextId(hex(v.textId.publicKey)), v.textId.id)
    assert.equal(toHex(parseTextId(v.textId.id)), v.textId.publicKey)
  })

  it('device certificate', () => {
    const d = v.deviceCert
    const account = signingKeyFromSeed(hex(d.accountSeed))
    const device = signingKeyFromSeed(hex(d.deviceSeed))
    const cert = issueDeviceCert(account, device.publicKey, d.deviceName, d.created)
    assert.equal(toHex(encodeDeviceCert(cert)), d.encoded)
    assert.deepEqual(decodeDeviceCert(hex(d.encoded)), cert)
  })

  it('contact card and link', () => {
    const c = v.contactCard
    const account = signingKeyFromSeed(hex(c.accountSeed))
    const device = signingKeyFromSeed(hex(v.deviceCert.deviceSeed))
    const cert = issueDeviceCert(account, device.publicKey, v.deviceCert.deviceName, v.deviceCert.created)
    const card = signContactCard(account, {
      name: c.name,
      created: c.created,
      devices: [cert],
      addresses: c.addresses,
      extensions: c.extensions.map(([k, x]: [number, string]) => [k, hex(x)] as const),
    })
    assert.equal(toHex(encodeContactCard(card)), c.encoded)
    assert.equal(toContactLink(card), c.link)
    assert.deepEqual(decodeContactCard(hex(c.encoded)), card)
    assert.deepEqual(parseContactLink(c.link), card)
  })

  it('envelope', () => {
    const e = v.envelope
    const env = {
      id: hex(e.id),
      destination: hex(e.destination),
      hopLimit: e.hopLimit,
      expires: e.expires,
      copies: e.copies,
      flags: e.flags,
      payload: hex(e.payload),
    }
    assert.equal(toHex(encodeEnvelope(env)), e.encoded)
    assert.deepEqual(decodeEnvelope(hex(e.encoded)), env)
  })

  it('safety number', () => {
    assert.equal(safetyNumber(hex(v.safetyNumber.a), hex(v.safetyNumber.b)), v.safetyNumber.number)
  })
})
