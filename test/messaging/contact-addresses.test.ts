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

/** The `i`th address of the contact numbered `n` (plain TCP: the only kind taken from cards). */
const address = (n: number, i: number) => `/ip4/10.0.${n}.${i + 1}/tcp/4001`

function contact(name: string, n: number, addedAt: number, verified = false): Contact {
  const identity = createIdentity({ now: 1_000_000, deviceName: name })
  const addresses = Array.from({ length: MAX_ADDRESSES }, (_, i) => address(n, i))
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
    const strangers = Array.from({ length: 60 }, (_, i) => contact(`s${i}`, i, 10_000 + i))
    const friend = contact('friend', 100, 5_000)
    const verified = contact('verified', 101, 20_000, true)
    const out = contactDialAddresses([...strangers, friend, verified])
    assert.equal(out.length, MAX_CONTACT_DIAL_ADDRESSES)
    assert.deepEqual(out.slice(0, 8), [
      ...Array.from({ length: 4 }, (_, i) => address(101, i)),
      ...Array.from({ length: 4 }, (_, i) => address(100, i)),
    ])
    assert.ok(
      out.every((a) => !a.startsWith('/ip4/10.0.59.')),
      'the newest strangers are left out',
    )
  })

  it('only plain TCP addresses: a card listing /unix/ or DNS ones offers none of those', () => {
    const identity = createIdentity({ now: 1_000_000, deviceName: 'mallory' })
    const card = makeContactCard(identity, {
      name: 'Mallory',
      now: 1_000_000,
      addresses: [
        '/unix/%2Frun%2Fdocker.sock',
        '/dns4/mallory.example/tcp/4001',
        '/ip6/::1/tcp/4001',
        address(7, 0),
      ],
    })
    const mallory: Contact = {
      id: toTextId(identity.account.publicKey),
      accountKey: identity.account.publicKey,
      name: 'Mallory',
      card: encodeContactCard(card),
      verified: false,
      addedAt: 1,
    }
    assert.deepEqual(contactDialAddresses([mallory]), ['/ip6/::1/tcp/4001', address(7, 0)])
  })
})
