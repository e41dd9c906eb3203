/**
 * Contact names are petnames that pick one contact: a card's own name (a stranger who writes first
 * chooses it) never shadows a contact we have, and a petname given twice is refused.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createIdentity, makeContactCard } from '../../src/identity/identity.ts'
import { toTextId } from '../../src/identity/text-id.ts'
import { acceptContactCard, findContact } from '../../src/node/contacts.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'
import { MAX_NAME_BYTES } from '../../src/wire/limits.ts'
import { throwsCode } from '../helpers/errors.ts'

const NOW = 1_700_000_000_000
const me = createIdentity({ now: NOW })
const person = (name: string) => {
  const identity = createIdentity({ now: NOW, deviceName: name })
  return { id: toTextId(identity.account.publicKey), card: makeContactCard(identity, { name, now: NOW }) }
}
const accept = (
  store: ReturnType<typeof createMemoryStore>,
  card: ReturnType<typeof person>['card'],
  name?: string,
) => acceptContactCard(store, me.account.publicKey, card, { name, now: NOW }).contact

describe('contact names', () => {
  it("a card naming itself as a contact we have gets a name of its own, so 'Hal' still means our Hal", () => {
    const store = createMemoryStore()
    const hal = person('Hal')
    const impostor = person('hal')
    accept(store, hal.card)
    const other = accept(store, impostor.card)
    assert.equal(other.name, `hal (${impostor.id.slice(0, 7)})`)
    assert.equal(findContact(store, 'Hal').id, hal.id)
    // Its next card (every message may carry one) does not take the name back.
    assert.equal(accept(store, impostor.card).name, other.name)
  })

  it('someone who wrote first carries the start of their ID, so they cannot take a name before its contact is added', () => {
    const store = createMemoryStore()
    const impostor = person('Hal')
    const hal = person('Hal')
    const first = acceptContactCard(store, me.account.publicKey, impostor.card, {
      now: NOW,
      stranger: true,
    }).contact
    assert.equal(first.name, `Hal (${impostor.id.slice(0, 7)})`)
    assert.equal(accept(store, hal.card).name, 'Hal')
    assert.equal(findContact(store, 'Hal').id, hal.id)
  })

  it('keeps the made-up name within the name limit, and unique', () => {
    const store = createMemoryStore()
    const long = 'é'.repeat(MAX_NAME_BYTES / 2)
    accept(store, person(long).card)
    const names = new Set([long])
    for (let i = 0; i < 3; i++) {
      const name = accept(store, person(long).card).name
      assert.ok(Buffer.byteLength(name) <= MAX_NAME_BYTES, name)
      assert.ok(!names.has(name))
      names.add(name)
    }
  })

  it('refuses a petname another contact has, and a rename to one, storing nothing', () => {
    const store = createMemoryStore()
    const bob = person('Bob')
    const rob = person('Rob')
    accept(store, bob.card)
    throwsCode(() => accept(store, rob.card, 'bob'), 'conflict')
    assert.equal(store.getContact(rob.id), undefined)
    accept(store, rob.card)
    throwsCode(() => accept(store, rob.card, 'BOB'), 'conflict')
    assert.equal(store.getContact(rob.id)?.name, 'Rob')
    // Its own name again, or a free one, is fine.
    assert.equal(accept(store, bob.card, 'Bob').name, 'Bob')
    assert.equal(accept(store, rob.card, 'Robert').name, 'Robert')
  })
})
