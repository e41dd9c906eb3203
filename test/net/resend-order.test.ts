/**
 * Messages sent again (a resend request names them in the order they were refused, which the mesh
 * may have reordered) go out in the order they were written, and each new copy says when its
 * author wrote it: the recipient gets "hello" before "are you there?", whatever order it asked in.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { openSessionStore } from '../../src/e2e/session-store.ts'
import { decodePrekeyBundle } from '../../src/e2e/x3dh.ts'
import { decodeContactCard, encodeContactCard } from '../../src/identity/contact-card.ts'
import { createIdentity, makeContactCard } from '../../src/identity/identity.ts'
import { decodeDirectMessage, encodeIdList } from '../../src/messaging/direct-message.ts'
import { CardBook } from '../../src/node/card-book.ts'
import { acceptContactCard } from '../../src/node/contacts.ts'
import { DirectMessages, resentAs } from '../../src/node/direct-messages.ts'
import { conversation } from '../../src/node/inbox.ts'
import { Steps } from '../../src/node/steps.ts'
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

test('messages sent again go out in the order they were written, each with the time it was written', () => {
  const ada = device('Ada')
  const bob = device('Bob')
  acceptContactCard(ada.store, ada.identity.account.publicKey, decodeContactCard(bob.card), { now: NOW })
  // Ada's core, recording only: each message a minute after the one before, on its clock.
  let clock = NOW
  const sent: Array<[id: string, payload: Uint8Array]> = []
  // Steps as the node runs them (src/node/steps.ts); one that is undone is only not kept.
  const steps = new Steps(ada.store, () => {})
  const step = (fn: () => void): boolean => steps.run(fn)
  const dm: DirectMessages = new DirectMessages({
    store: ada.store,
    identity: ada.identity,
    e2e: ada.e2e,
    cardBook: new CardBook(ada.store),
    core: {
      send: (_destination, payload, options) => {
        const id = randomBytes(16).toString('hex')
        clock += 60_000
        ada.store.addMessage({
          id,
          conversation: options?.filing?.conversation ?? '?',
          direction: 'out',
          body: options?.filing?.body ?? payload,
          createdAt: clock,
          state: 'queued',
          updatedAt: clock,
        })
        sent.push([id, payload])
        return id
      },
      abandon: (id, reason) => {
        ada.store.setMessageState(id, 'failed', clock, reason)
        dm.stateChanged({ id, state: 'failed', reason })
        return true
      },
      settle: () => false,
      ackTagFor: () => new Uint8Array(16),
    },
    log: () => {},
    ttlMs: undefined,
    card: () => ada.card,
    refreshCard: () => {},
    afterStep: (fn) => steps.after(fn),
    step,
    act: (fn) => steps.act(fn),
    stopped: () => false,
    message: () => {},
    state: () => {},
  })

  const m1 = dm.send('Bob', 'hello')
  const m2 = dm.send('Bob', 'are you there?')
  const written = [m1, m2].map((h) => ada.store.getMessage(h.id)!.createdAt)
  // Bob could open neither, and got the second first: he asks for them in that order, in a
  // session of his own.
  const request = bob.e2e.seal(
    { deviceKey: ada.identity.device.publicKey, bundle: decodePrekeyBundle(ada.e2e.cardExtension()[1]) },
    encodeIdList('resend', new Uint8Array(0), [m2.id, m1.id], NOW),
    { sentAt: NOW, deliverySecret: randomBytes(16), introduction: bob.card },
  )
  step(() => {
    const filed = dm.deliver({ id: randomBytes(16).toString('hex'), payload: request })
    assert.equal(filed.refused, undefined)
  })

  // The new copies went out in the order Ada wrote the messages, each saying when she did.
  const again = sent.slice(2).map(([, payload]) => decodeDirectMessage(bob.e2e.open(payload).content))
  assert.deepEqual(
    again.map((m) => [m.text, m.sentAt]),
    [
      ['hello', written[0]],
      ['are you there?', written[1]],
    ],
  )
  // Each old copy names its own replacement, and her conversation lists them in that order.
  assert.deepEqual(
    [m1, m2].map((h) => resentAs(ada.store.getMessage(h.id)?.stateReason)),
    sent.slice(2).map(([id]) => id),
  )
  assert.deepEqual(
    conversation(ada.store, 'Bob').map((m) => m.text),
    ['hello', 'are you there?'],
  )
})
