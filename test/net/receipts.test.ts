/**
 * Read receipts between two real nodes: on by default, off per contact, never shown as messages.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isTalkenError } from '../../src/errors.ts'
import { encodeContactCard } from '../../src/identity/contact-card.ts'
import { createIdentity, makeContactCard } from '../../src/identity/identity.ts'
import { decodeDirectMessage, encodeReadReceipt } from '../../src/messaging/direct-message.ts'
import { addContact } from '../../src/node/contacts.ts'
import { recentMessages } from '../../src/node/inbox.ts'
import { startPair, until } from '../helpers/nodes.ts'

test('reading a conversation tells the sender, unless receipts are off for that contact', async (t) => {
  const { ada: na, bob: nb } = await startPair(t)
  try {
    const first = na.send('Bob', 'are you there?')
    await first.delivered(AbortSignal.timeout(10_000))
    const states: string[] = []
    na.on('state', (s) => {
      if (s.id === first.id) states.push(s.state)
    })
    const queued = nb.store.outboxSize()
    assert.equal(nb.markRead('Ada'), 1)
    assert.equal(nb.store.outboxSize(), queued + 1, 'Bob queued a receipt')
    await until(() => na.store.getMessage(first.id)?.state === 'read', 10_000, 'read at Ada')
    assert.deepEqual(states, ['read'])
    assert.equal(nb.markRead('Ada'), 0, 'nothing left unread')

    // Off for Ada: Bob reads, Ada's message stays delivered.
    nb.setReadReceipts('Ada', false)
    const second = na.send('Bob', 'quietly')
    await second.delivered(AbortSignal.timeout(10_000))
    const before = nb.store.outboxSize()
    assert.equal(nb.markRead('Ada'), 1)
    assert.equal(nb.store.outboxSize(), before, 'Bob queued no receipt')
    // A message Bob sends after reading goes the same way a receipt would, after it: once it is
    // at Ada, a receipt sent before it would have been too.
    await nb.send('Ada', 'after reading').delivered(AbortSignal.timeout(10_000))
    assert.equal(na.store.getMessage(second.id)?.state, 'delivered')
    assert.equal(nb.store.getMessage(second.id)?.state, 'read', 'read on Bob’s side all the same')

    // Receipts are not messages: neither inbox shows them.
    for (const node of [na, nb]) {
      const texts = recentMessages(node.store, { all: true, limit: 100 }).map((m) => m.text)
      assert.deepEqual(texts.sort(), ['after reading', 'are you there?', 'quietly'])
    }
  } finally {
    await na.stop()
    await nb.stop()
  }
})

test('a read receipt names 1 to 64 message IDs', () => {
  const ada = createIdentity({ now: 1_000, deviceName: 'ada' })
  const card = encodeContactCard(makeContactCard(ada, { name: 'Ada', now: 1_000 }))
  const id = '00112233445566778899aabbccddeeff'
  const receipt = encodeReadReceipt(card, [id], 1)
  assert.deepEqual(decodeDirectMessage(receipt).readIds, [id])
  for (const ids of [[], Array(65).fill(id), ['00']]) {
    assert.throws(
      () => encodeReadReceipt(card, ids, 1),
      (e) => isTalkenError(e, 'invalid_argument'),
    )
  }
})

test('someone who wrote first, without being added, gets no read receipts until turned on', async (t) => {
  const { ada, bob } = await startPair(t, { introduce: false })
  try {
    addContact(ada.store, ada.identity.account.publicKey, bob.link, { now: Date.now() })
    const first = ada.send(bob.id, 'hello, we met at the crag')
    await first.delivered(AbortSignal.timeout(10_000))
    const before = bob.store.outboxSize()
    assert.equal(bob.markRead(ada.id), 1)
    assert.equal(bob.store.outboxSize(), before, 'Bob queued no receipt')
    // Bob answers after reading: once the answer is at Ada, a receipt sent before it would be too.
    await bob.send(ada.id, 'hello, who is this?').delivered(AbortSignal.timeout(10_000))
    assert.equal(ada.store.getMessage(first.id)?.state, 'delivered', 'no receipt to a stranger')
    bob.setReadReceipts(ada.id, true)
    const second = ada.send(bob.id, 'still there?')
    await second.delivered(AbortSignal.timeout(10_000))
    bob.markRead(ada.id)
    await until(() => ada.store.getMessage(second.id)?.state === 'read', 10_000, 'read once turned on')
  } finally {
    await ada.stop()
    await bob.stop()
  }
})
