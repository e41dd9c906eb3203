import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { encodeContactCard } from '../../src/identity/contact-card.ts'
import { createIdentity, makeContactCard } from '../../src/identity/identity.ts'
import {
  decodeDirectMessage,
  encodeDirectMessage,
  MAX_TEXT_BYTES,
} from '../../src/messaging/direct-message.ts'
import { decodeCbor, encodeCbor } from '../../src/wire/cbor.ts'
import { throwsCode } from '../helpers/errors.ts'

const ada = createIdentity({ now: 1_750_000_000_000, deviceName: 'ada' })
const adaCard = encodeContactCard(makeContactCard(ada, { name: 'Ada', now: 1_750_000_000_000 }))

describe('direct message', () => {
  it('round-trips text with line breaks and tabs, naming the sender', () => {
    const bytes = encodeDirectMessage(adaCard, 'hi\n\tBob', 1_750_000_000_123)
    const m = decodeDirectMessage(bytes)
    assert.equal(m.text, 'hi\n\tBob')
    assert.equal(m.sentAt, 1_750_000_000_123)
    assert.equal(m.sender.name, 'Ada')
    assert.deepEqual(m.sender.accountKey, ada.account.publicKey)
  })

  it('carries no signature: five fields, nothing that proves authorship to a third party', () => {
    const fields = decodeCbor(encodeDirectMessage(adaCard, 'hello', 1), 1 << 20, 'test') as unknown[]
    assert.deepEqual(fields.slice(0, 2), [2, 1])
    assert.equal(fields.length, 5)
    throwsCode(() => decodeDirectMessage(encodeCbor([...fields, new Uint8Array(64)] as never)), 'malformed')
  })

  it('refuses version 1 (signed by the account key) as an unsupported version', () => {
    const v1 = encodeCbor([1, 1, adaCard, 1, 'hello', new Uint8Array(64)])
    throwsCode(() => decodeDirectMessage(v1), 'unsupported_version')
  })

  it('refuses a card that does not verify', () => {
    const forged = new Uint8Array(adaCard)
    forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1
    throwsCode(() => decodeDirectMessage(encodeDirectMessage(forged, 'hello', 1)), 'bad_signature')
  })

  it('refuses empty, oversized and control-character text', () => {
    throwsCode(() => encodeDirectMessage(adaCard, '', 1), 'invalid_argument')
    throwsCode(() => encodeDirectMessage(adaCard, 'x'.repeat(MAX_TEXT_BYTES + 1), 1), 'too_large')
    throwsCode(() => encodeDirectMessage(adaCard, 'bell\u0007', 1), 'invalid_argument')
  })

  it('refuses C1 controls (a terminal may act on them) and a leading byte-order mark, sending and receiving', () => {
    for (const text of ['clear \u009b2J', 'next\u0085line', '\ufeffhello']) {
      // Never sent: the recipient would refuse it on every try, and it would wait until it expired.
      throwsCode(() => encodeDirectMessage(adaCard, text, 1), 'invalid_argument')
      // Nor taken from someone who sends it anyway.
      throwsCode(
        () => decodeDirectMessage(encodeCbor([2, 1, adaCard, 1, text])),
        'malformed',
        'non_canonical',
      )
    }
    // A mark inside the text is an ordinary character.
    assert.equal(decodeDirectMessage(encodeDirectMessage(adaCard, 'a\ufeffb', 1)).text, 'a\ufeffb')
    throwsCode(() => createIdentity({ now: 1, deviceName: 'tab\u009bname' }), 'invalid_argument')
  })
})
