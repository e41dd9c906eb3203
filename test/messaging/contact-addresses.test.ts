/**
 * Which contact-card addresses a node keeps dialling (src/node/contacts.ts `contactDialAddresses`):
 * a bounded number, verified contacts and those known longest first, so that strangers who write
 * first (each becomes a contact, with a card of their own making) cannot make it dial without end.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { encodeContactCard } from '../../src/identity/contact-card.ts'
import { createIdentity, makeContactCard } from '../../src/identity/identity.ts'
import { toTextId } from '../../src/identity/text-id.ts'
import { contactDialAddresses, MAX_CONTACT_DIAL_ADDRESSES } from '../../src/node/contacts.ts'
import type { Contact } from '../../src/store/store.ts'
import { MAX_ADDRESSES } from '../../src/wire/limits.ts'

function contact(name: string, addedAt: number, verified = false): Contact {
  const identity = createIdentity({ now: 1_000_000, deviceName: name })
  const addresses = Array.from({ length: MAX_ADDRESSES }, (_, i) => `/dns4/${name}-${i}.example/tcp/4001`)
  const card = makeContactCard(identity, { name, now: 1_000_000, addresses })
  return {
    id: toTextId(identity.account.publicKey),
    accountKey: identity.account.publicKey,
    name,
    card: encodeContactCard(card),
    verified,
    addedAt,
  }
}

describe('contact addresses dialled', () => {
  it('at most a bounded number: verified contacts first, then those known longest, four each', () => {
    const strangers = Array.from({ length: 60 }, (_, i) => contact(`s${i}`, 10_000 + i))
    const friend = contact('friend', 5_000)
    const verified = contact('verified', 20_000, true)
    const out = contactDialAddresses([...strangers, friend, verified])
    assert.equal(out.length, MAX_CONTACT_DIAL_ADDRESSES)
    assert.deepEqual(out.slice(0, 8), [
      ...Array.from({ length: 4 }, (_, i) => `/dns4/verified-${i}.example/tcp/4001`),
      ...Array.from({ length: 4 }, (_, i) => `/dns4/friend-${i}.example/tcp/4001`),
    ])
    assert.ok(
      out.every((a) => !a.startsWith('/dns4/s59-')),
      'the newest strangers are left out',
    )
  })
})
