/**
 * What `talken inbox` shows (src/node/inbox.ts): the newest incoming messages, however many of
 * our own came after them.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { contactSummaries, recentMessages } from '../../src/node/inbox.ts'
import { createMemoryStore } from '../../src/store/index.ts'
import type { Store } from '../../src/store/store.ts'

function withContacts(...names: string[]): Store {
  const store = createMemoryStore()
  for (const name of names) {
    store.putContact({
      id: `tk1${name.toLowerCase()}`,
      name,
      accountKey: new Uint8Array(32).fill(name.length),
      card: new Uint8Array([1]),
      verified: false,
      addedAt: 0,
    })
  }
  return store
}

let serial = 0
function message(store: Store, contact: string, direction: 'in' | 'out', at: number, text: string): void {
  store.addMessage({
    id: (serial++).toString(16).padStart(32, '0'),
    conversation: `tk1${contact.toLowerCase()}`,
    direction,
    body: new TextEncoder().encode(text),
    createdAt: at,
    state: direction === 'in' ? 'received' : 'sent',
    updatedAt: at,
  })
}

describe('inbox', () => {
  it('shows an incoming message followed by many of ours', () => {
    const store = withContacts('Bob')
    message(store, 'Bob', 'in', 1_000, 'hi Ada')
    for (let i = 0; i < 81; i++) message(store, 'Bob', 'out', 2_000 + i, `reply ${i}`)
    assert.deepEqual(
      recentMessages(store).map((m) => m.text),
      ['hi Ada'],
    )
    assert.equal(recentMessages(store, { all: true }).at(-1)?.text, 'reply 80')
  })

  it('finds the newest `limit` incoming ones across pages, messages of one time included', () => {
    const store = withContacts('Bob', 'Cy')
    // Far apart: 3 of Bob's, 500 of ours; then 300 of ours and 2 of Bob's all at one time
    // (more than a page), then Cy's.
    for (let i = 0; i < 3; i++) message(store, 'Bob', 'in', 1_000 + i, `early ${i}`)
    for (let i = 0; i < 500; i++) message(store, 'Bob', 'out', 2_000 + i, `out ${i}`)
    for (let i = 0; i < 300; i++) message(store, 'Bob', 'out', 5_000, `same ${i}`)
    message(store, 'Bob', 'in', 5_000, 'same time a')
    message(store, 'Bob', 'in', 5_000, 'same time b')
    for (let i = 0; i < 300; i++) message(store, 'Bob', 'out', 6_000 + i, `late ${i}`)
    message(store, 'Cy', 'in', 1_500, 'from Cy')
    assert.deepEqual(
      recentMessages(store, { limit: 5 }).map((m) => m.text),
      ['early 1', 'early 2', 'from Cy', 'same time a', 'same time b'],
    )
    assert.deepEqual(
      recentMessages(store, { limit: 10 }).map((m) => m.text),
      ['early 0', 'early 1', 'early 2', 'from Cy', 'same time a', 'same time b'],
    )
  })

  it('counts every unread message of a contact, however many came after', () => {
    const store = withContacts('Bob')
    message(store, 'Bob', 'in', 1_000, 'early')
    for (let i = 0; i < 800; i++) message(store, 'Bob', 'out', 2_000 + i, `ours ${i}`)
    message(store, 'Bob', 'in', 3_000, 'late')
    assert.deepEqual(
      contactSummaries(store).map((c) => [c.name, c.unread, c.lastAt]),
      [['Bob', 2, 3_000]],
    )
  })
})
