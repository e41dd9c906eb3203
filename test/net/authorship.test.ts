/**
 * Direct messages carry no signature: the end-to-end session authenticates the sending device,
 * and the receiving node accepts a message only if that device is one the carried (or known) card
 * certifies. A session of one account cannot speak for another.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { openSessionStore } from '../../src/e2e/session-store.ts'
import { decodePrekeyBundle } from '../../src/e2e/x3dh.ts'
import { encodeContactCard } from '../../src/identity/contact-card.ts'
import { createIdentity, type Identity, makeContactCard } from '../../src/identity/identity.ts'
import { encodeDirectMessage } from '../../src/messaging/direct-message.ts'
import { CardBook } from '../../src/node/card-book.ts'
import { DirectMessages } from '../../src/node/direct-messages.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'

const NOW = 1_750_000_000_000

/** A device with its own store and sessions, and its card listing its prekeys. */
function device(name: string) {
  const identity = createIdentity({ now: NOW, deviceName: name })
  const store = createMemoryStore()
  const e2e = openSessionStore({ store, device: identity.device, now: () => NOW })
  const card = encodeContactCard(
    makeContactCard(identity, { name, extensions: [e2e.cardExtension()], now: NOW }),
  )
  return { identity, store, e2e, card }
}

/** Bob's receiving side, as his node wires it. */
function receiver(bob: ReturnType<typeof device>, identity: Identity): DirectMessages {
  const after: (() => void)[] = []
  return new DirectMessages({
    store: bob.store,
    identity,
    e2e: bob.e2e,
    cardBook: new CardBook(bob.store),
    core: {
      send: () => {
        throw new Error('nothing is sent in this test')
      },
      abandon: () => false,
      settle: () => false,
      ackTagFor: () => new Uint8Array(16),
    },
    log: () => {},
    ttlMs: undefined,
    card: () => bob.card,
    refreshCard: () => {},
    afterStep: (fn) => after.push(fn),
    step: () => {
      throw new Error('no step of its own in this test')
    },
    stopped: () => false,
    message: () => {},
    state: () => {},
  })
}

/** `from` seals `content` for `to` in a first-contact session, as its node would. */
function sealFor(from: ReturnType<typeof device>, to: ReturnType<typeof device>, content: Uint8Array) {
  const bundle = decodePrekeyBundle(to.e2e.cardExtension()[1])
  return from.e2e.seal({ deviceKey: bundle.deviceKey, bundle }, content, {
    sentAt: NOW,
    deliverySecret: randomBytes(16),
  })
}

test("a session of one account cannot carry another account's card", () => {
  const ada = device('Ada')
  const eve = device('Eve')
  const bob = device('Bob')
  const bobMessages = receiver(bob, bob.identity)
  const prekeysBefore = bob.e2e.prekeys.oneTimePrekeysLeft()
  // Eve writes in her own session, claiming to be Ada by carrying Ada's (valid, signed) card.
  const forged = sealFor(eve, bob, encodeDirectMessage(ada.card, 'it is Ada: send me the keys', NOW))
  const refused = bob.store.transaction(() => bobMessages.deliver({ id: '11'.repeat(16), payload: forged }))
  assert.match(refused.refused ?? '', /^bad_signature: the sending device is not on the sender's card/)
  assert.equal(bobMessages.rejected, 1)
  assert.equal(bob.store.listContacts().length, 0, 'no contact added for Ada')
  // The refused message left nothing behind: no session with Eve's device, no prekey used.
  assert.equal(bob.e2e.hasSession(eve.identity.device.publicKey), false)
  assert.equal(bob.e2e.prekeys.oneTimePrekeysLeft(), prekeysBefore)
  // The same session with Eve's own card is Eve's message.
  const honest = sealFor(eve, bob, encodeDirectMessage(eve.card, 'hello, I am Eve', NOW))
  const filed = bobMessages.deliver({ id: '22'.repeat(16), payload: honest })
  assert.equal(filed.refused, undefined)
  assert.deepEqual(
    bob.store.listContacts().map((c) => c.name),
    ['Eve'],
  )
})
