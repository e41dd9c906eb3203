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
import { encodeContactCard, signContactCard } from '../../src/identity/contact-card.ts'
import { issueDeviceCert } from '../../src/identity/device-cert.ts'
import { createIdentity, type Identity, makeContactCard } from '../../src/identity/identity.ts'
import { toTextId } from '../../src/identity/text-id.ts'
import { encodeDirectMessage } from '../../src/messaging/direct-message.ts'
import { STRANGER_ASKS_PER_WINDOW } from '../../src/node/ask-limits.ts'
import { CardBook } from '../../src/node/card-book.ts'
import { acceptContactCard } from '../../src/node/contacts.ts'
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

/** Bob's receiving side, as his node wires it; `sent` hears what it sends, if it may. */
function receiver(
  bob: ReturnType<typeof device>,
  identity: Identity,
  sent?: (payload: Uint8Array) => void,
): DirectMessages {
  const after: (() => void)[] = []
  let sends = 0
  return new DirectMessages({
    store: bob.store,
    identity,
    e2e: bob.e2e,
    cardBook: new CardBook(bob.store),
    core: {
      send: (_destination: Uint8Array, payload: Uint8Array) => {
        if (sent === undefined) throw new Error('nothing is sent in this test')
        sent(payload)
        return (++sends).toString(16).padStart(32, '0')
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
    act: () => {
      throw new Error('no step of its own in this test')
    },
    stopped: () => false,
    message: () => {},
    state: () => {},
  })
}

/** `from` seals `content` for `to` in a first-contact session, as its node would (with `introduction`). */
function sealFor(
  from: ReturnType<typeof device>,
  to: ReturnType<typeof device>,
  content: Uint8Array,
  introduction?: Uint8Array,
) {
  const bundle = decodePrekeyBundle(to.e2e.cardExtension()[1])
  return from.e2e.seal({ deviceKey: bundle.deviceKey, bundle }, content, {
    sentAt: NOW,
    deliverySecret: randomBytes(16),
    ...(introduction === undefined ? {} : { introduction }),
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
  // Someone who wrote first: under their name and the start of their ID (contacts.ts).
  const eveId = toTextId(eve.identity.account.publicKey)
  assert.deepEqual(
    bob.store.listContacts().map((c) => c.name),
    [`Eve (${eveId.slice(0, 7)})`],
  )
})

test("a card that lists another account's device takes none of that device's messages, and gets none of ours", () => {
  const ada = device('Ada')
  const bob = device('Bob')
  const mal = device('Mal')
  // Mal's account, "Zed", certifies its own device and Ada's device key (public, in Ada's card):
  // a device certificate is the account's signature alone. Bob holds Zed's card before Ada writes,
  // and Zed sorts after Ada: by cards alone Ada's device is Zed's as much as Ada's.
  const created = Math.floor(NOW / 1000)
  const zedCard = signContactCard(mal.identity.account, {
    name: 'Zed',
    created,
    devices: [
      mal.identity.deviceCert,
      issueDeviceCert(mal.identity.account, ada.identity.device.publicKey, 'phone', created),
    ],
    addresses: [],
    extensions: [mal.e2e.cardExtension()],
  })
  const zed = acceptContactCard(bob.store, bob.identity.account.publicKey, zedCard, { now: NOW }).contact
  const sent: Uint8Array[] = []
  const bobMessages = receiver(bob, bob.identity, (payload) => sent.push(payload))
  const deliver = (id: string, payload: Uint8Array) =>
    bob.store.transaction(() => bobMessages.deliver({ id: id.repeat(16), payload }))

  // Ada's first message: a prekey body with her card as its introduction. Her device says it is Ada's.
  const first = deliver('11', sealFor(ada, bob, encodeDirectMessage(new Uint8Array(0), 'one', NOW), ada.card))
  assert.equal(first.refused, undefined)
  assert.equal(first.conversation, ada.identity.id)
  // Its delivery confirms the session: her next message is a plain ratchet message with no card.
  const bobDevice = bob.identity.device.publicKey
  assert.ok(ada.e2e.confirm(bobDevice, ada.e2e.pendingBaseKey(bobDevice)!))
  const plain = (text: string) =>
    ada.e2e.seal({ deviceKey: bobDevice }, encodeDirectMessage(new Uint8Array(0), text, NOW), {
      sentAt: NOW,
      deliverySecret: randomBytes(16),
    })
  assert.equal(deliver('22', plain('two')).conversation, ada.identity.id, "Ada's, not Zed's")

  // Bob writes to Zed: sealed for Mal's own device, not in the session Bob has with Ada's.
  bobMessages.send(zed.id, 'hello Zed')
  assert.equal(sent.length, 1)
  assert.equal(bob.e2e.hasSession(mal.identity.device.publicKey), true)
  assert.equal(mal.e2e.open(sent[0]!).peerDeviceKey.length, 32, 'Mal opens it')
  assert.throws(() => ada.e2e.open(sent[0]!), 'Ada cannot')

  // A device never bound (a session from before bindings were kept) that two cards list is
  // nobody's until it sends its card again.
  bob.store.kvDelete('device-account', Buffer.from(ada.identity.device.publicKey).toString('hex'))
  const fresh = receiver(bob, bob.identity)
  const refused = bob.store.transaction(() => fresh.deliver({ id: '33'.repeat(16), payload: plain('three') }))
  assert.match(refused.refused ?? '', /^unknown_contact: .*more than one contact lists/)
  const withCard = ada.e2e.seal({ deviceKey: bobDevice }, encodeDirectMessage(ada.card, 'four', NOW), {
    sentAt: NOW,
    deliverySecret: randomBytes(16),
  })
  assert.equal(
    bob.store.transaction(() => fresh.deliver({ id: '44'.repeat(16), payload: withCard })).conversation,
    ada.identity.id,
  )
  assert.equal(
    bob.store.transaction(() => fresh.deliver({ id: '55'.repeat(16), payload: plain('five') })).conversation,
    ada.identity.id,
  )
})

test('a message that claims our own account is refused and leaves no session behind', () => {
  const bob = device('Bob')
  const other = device('Other')
  // Another device certified by Bob's account key (only someone holding it could make this card).
  const created = Math.floor(NOW / 1000)
  const card = encodeContactCard(
    signContactCard(bob.identity.account, {
      name: 'Bob',
      created,
      devices: [issueDeviceCert(bob.identity.account, other.identity.device.publicKey, 'tablet', created)],
      addresses: [],
      extensions: [],
    }),
  )
  const bobMessages = receiver(bob, bob.identity)
  const prekeysBefore = bob.e2e.prekeys.oneTimePrekeysLeft()
  const payload = sealFor(other, bob, encodeDirectMessage(new Uint8Array(0), 'it is me', NOW), card)
  const refused = bob.store.transaction(() => bobMessages.deliver({ id: '66'.repeat(16), payload }))
  assert.match(refused.refused ?? '', /^self_contact: /)
  assert.equal(bob.e2e.hasSession(other.identity.device.publicKey), false)
  assert.equal(bob.e2e.prekeys.oneTimePrekeysLeft(), prekeysBefore)
})

test('first messages that cannot be opened make few new contacts: senders asked to send again are limited', () => {
  const bob = device('Bob')
  const bobMessages = receiver(bob, bob.identity, () => {})
  const bobBundle = decodePrekeyBundle(bob.e2e.cardExtension()[1])
  for (let i = 0; i < STRANGER_ASKS_PER_WINDOW + 8; i++) {
    const stranger = device(`M${i}`)
    // A one-time prekey Bob does not hold (taken by someone else first, or made up): he cannot
    // open it, and would ask the sender, whom its introduction names, to send it again.
    const bundle = { ...bobBundle, oneTimePrekeys: [{ id: 424_242, key: bobBundle.oneTimePrekeys[0]!.key }] }
    const sealed = stranger.e2e.seal(
      { deviceKey: bundle.deviceKey, bundle },
      encodeDirectMessage(new Uint8Array(0), 'hi', NOW),
      {
        sentAt: NOW,
        deliverySecret: randomBytes(16),
        introduction: stranger.card,
      },
    )
    const id = i.toString(16).padStart(32, '0')
    const filed = bob.store.transaction(() => bobMessages.deliver({ id, payload: sealed }))
    assert.match(filed.refused ?? '', /^not_found/)
  }
  assert.equal(bob.store.listContacts().length, STRANGER_ASKS_PER_WINDOW)
})
