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
const bob = createIdentity({ now: 1_750_000_000_000, deviceName: 'bob' })
const eve = createIdentity({ now: 1_750_000_000_000, deviceName: 'eve' })
const adaCard = encodeContactCard(makeContactCard(ada, { name: 'Ada', now: 1_750_000_000_000 }))

describe('direct message', () => {
  it('round-trips text with line breaks and tabs, naming the sender', () => {
    const bytes = encodeDirectMessage(ada, adaCard, bob.account.publicKey, 'hi\n\tBob', 1_750_000_000_123)
    const m = decodeDirectMessage(bytes, bob.account.publicKey)
    assert.equal(m.text, 'hi\n\tBob')
    assert.equal(m.sentAt, 1_750_000_000_123)
    assert.equal(m.sender.name, 'Ada')
    assert.deepEqual(m.sender.accountKey, ada.account.publicKey)
  })

  it('cannot be re-addressed: the signature names the recipient', () => {
    const bytes = encodeDirectMessage(ada, adaCard, bob.account.publicKey, 'for Bob only', 1)
    throwsCode(() => decodeDirectMessage(bytes, eve.account.publicKey), 'bad_signature')
  })

  it('a changed text or time breaks the signature', () => {
    const bytes = encodeDirectMessage(ada, adaCard, bob.account.publicKey, 'pay 10', 1)
    const fields = decodeCbor(bytes, 1 << 20, 'test') as unknown[]
    const altered = encodeCbor([...fields.slice(0, 4), 'pay 1000', fields[5]] as never)
    throwsCode(() => decodeDirectMessage(altered, bob.account.publicKey), 'bad_signature')
    const retimed = encodeCbor([...fields.slice(0, 3), 2, ...fields.slice(4)] as never)
    throwsCode(() => decodeDirectMessage(retimed, bob.account.publicKey), 'bad_signature')
  })

  it("someone else's card with the sender's signature is refused", () => {
    const eveCard = encodeContactCard(makeContactCard(eve, { name: 'Ada', now: 1_750_000_000_000 }))
    const bytes = encodeDirectMessage(ada, adaCard, bob.account.publicKey, 'hello', 1)
    const fields = decodeCbor(bytes, 1 << 20, 'test') as unknown[]
    const swapped = encodeCbor([fields[0], fields[1], eveCard, ...fields.slice(3)] as never)
    throwsCode(() => decodeDirectMessage(swapped, bob.account.publicKey), 'bad_signature')
  })

  it('refuses empty, oversized and control-character text before signing', () => {
    throwsCode(() => encodeDirectMessage(ada, adaCard, bob.account.publicKey, '', 1), 'invalid_argument')
    throwsCode(
      () => encodeDirectMessage(ada, adaCard, bob.account.publicKey, 'x'.repeat(MAX_TEXT_BYTES + 1), 1),
      'too_large',
    )
    throwsCode(
      () => encodeDirectMessage(ada, adaCard, bob.account.publicKey, 'bell\u0007', 1),
      'invalid_argument',
    )
  })
})
