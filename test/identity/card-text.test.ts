/**
 * What a contact card may say: addresses are text fit to show, no device is listed twice, and
 * names (the account's, each device's) carry no invisible characters nor whitespace at either end.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  type ContactCardFields,
  decodeContactCard,
  encodeContactCard,
  signContactCard,
} from '../../src/identity/contact-card.ts'
import { deviceCertToCbor, issueDeviceCert } from '../../src/identity/device-cert.ts'
import { domainSeparated } from '../../src/identity/ed25519.ts'
import { createIdentity, type Identity } from '../../src/identity/identity.ts'
import { type CborValue, encodeCbor, nameProblem, textProblem } from '../../src/wire/cbor.ts'
import { throwsCode } from '../helpers/errors.ts'

const me = createIdentity({ deviceName: 'phone', now: 1_750_000_000_000 })

/** A card signed by `who` over whatever fields, without signContactCard's checks: what a stranger could send. */
function forgedCard(who: Identity, fields: Omit<ContactCardFields, 'accountKey'>): Uint8Array {
  const body: CborValue[] = [
    1,
    who.account.publicKey,
    fields.name,
    fields.created,
    fields.devices.map(deviceCertToCbor),
    [...fields.addresses],
    fields.extensions.map(([k, v]) => [k, v]),
  ]
  const signature = who.account.sign(domainSeparated('talken/card/v1', encodeCbor(body)))
  return encodeCbor([...body, signature])
}

const base = { name: 'Ada', created: 1, devices: [me.deviceCert], addresses: [], extensions: [] }

describe('contact card text', () => {
  it('refuses addresses with control characters or a leading BOM, signing and decoding', () => {
    for (const address of [
      '\u001b]0;pwned\u0007\u001b[2J/ip4/1.2.3.4',
      '/ip4/1.2.3.4\n',
      '\ufeff/ip4/1.2.3.4',
    ]) {
      const fields = { ...base, addresses: [address] }
      throwsCode(() => signContactCard(me.account, fields), 'invalid_argument')
      // (A leading BOM is dropped by the CBOR decoder, so that card is not canonical.)
      throwsCode(() => decodeContactCard(forgedCard(me, fields)), 'malformed', 'non_canonical')
    }
    const ok = signContactCard(me.account, { ...base, addresses: ['/ip4/1.2.3.4/tcp/4001'] })
    assert.deepEqual(decodeContactCard(encodeContactCard(ok)).addresses, ['/ip4/1.2.3.4/tcp/4001'])
  })

  it('refuses a card listing one device key twice', () => {
    const fields = { ...base, devices: [me.deviceCert, me.deviceCert] }
    throwsCode(() => signContactCard(me.account, fields), 'invalid_argument')
    throwsCode(() => decodeContactCard(forgedCard(me, fields)), 'malformed')
    // The same key under another name and date is the same device too.
    const again = issueDeviceCert(me.account, me.device.publicKey, 'other', 2)
    throwsCode(
      () => decodeContactCard(forgedCard(me, { ...base, devices: [me.deviceCert, again] })),
      'malformed',
    )
  })

  const badNames = [
    'Alice\u200b', // zero-width space
    'Bob\u202eecila', // right-to-left override
    '\u2066Bob\u2069', // isolates
    'Bo\u2060b', // word joiner
    'Bo\ufeffb', // BOM inside
    '\u00adBob', // soft hyphen
    'Bo\u2028b', // line separator
    'Alice ',
    ' Alice',
    '\u00a0Alice',
    'Alice\u3000',
    ' ',
    '\u2003',
  ]

  it('refuses names with invisible characters or whitespace at either end, signing and decoding', () => {
    for (const name of badNames) {
      assert.notEqual(nameProblem(name), undefined, JSON.stringify(name))
      throwsCode(() => signContactCard(me.account, { ...base, name }), 'invalid_argument')
      throwsCode(() => decodeContactCard(forgedCard(me, { ...base, name })), 'malformed')
    }
    // Joiners are part of Persian and Indic names and of emoji sequences; tags, of flags.
    const joined = [
      '\u0645\u06cc\u200c\u0631\u0648\u0645',
      '\u{1f468}\u200d\u{1f469}\u200d\u{1f467}',
      '\u{1f3f4}\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}',
    ]
    for (const name of ['Ada', 'Ada Lovelace', 'Zoë', '李小龍', 'Ωmega 2', ...joined]) {
      const card = signContactCard(me.account, { ...base, name })
      assert.equal(decodeContactCard(encodeContactCard(card)).name, name)
    }
  })

  it('refuses such device names, issuing and decoding', () => {
    for (const name of badNames) {
      throwsCode(() => issueDeviceCert(me.account, me.device.publicKey, name, 1), 'invalid_argument')
      // Signed by the account without issueDeviceCert's checks.
      const signature = me.account.sign(
        domainSeparated(
          'talken/device-cert/v1',
          encodeCbor([1, me.account.publicKey, me.device.publicKey, name, 1]),
        ),
      )
      const cert = { deviceKey: me.device.publicKey, deviceName: name, created: 1, signature }
      throwsCode(() => decodeContactCard(forgedCard(me, { ...base, devices: [cert] })), 'malformed')
    }
    assert.equal(issueDeviceCert(me.account, me.device.publicKey, '', 1).deviceName, '')
  })

  it('leaves message texts as they were: invisible characters and edge whitespace are allowed there', () => {
    for (const text of ['hi\u200b', ' indented', 'a\u200db', 'line\nbreak\t']) {
      assert.equal(textProblem(text, true), undefined, JSON.stringify(text))
    }
  })
})
