import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { AckTags } from '../../src/mesh/ack-tags.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'

const random = (n: number) => new Uint8Array(randomBytes(n))

describe('ack tags', () => {
  it('are the same for a message after a restart, and differ between nodes and messages', () => {
    const store = createMemoryStore()
    const id = new Uint8Array(16).fill(7)
    const before = new AckTags(store, random).tagOf(id)
    assert.equal(before.length, 16)
    assert.deepEqual(new AckTags(store, random).tagOf(id), before, 'the key is kept in the store')
    assert.notDeepEqual(new AckTags(createMemoryStore(), random).tagOf(id), before, 'another node')
    assert.notDeepEqual(new AckTags(store, random).tagOf(new Uint8Array(16).fill(8)), before)
  })

  it('a key made in a transaction that is undone is not kept in memory either', () => {
    const store = createMemoryStore()
    const tags = new AckTags(store, random)
    const id = new Uint8Array(16).fill(1)
    let lost: Uint8Array | undefined
    assert.throws(() =>
      store.transaction(() => {
        lost = tags.tagOf(id)
        throw new Error('the send failed')
      }),
    )
    const kept = tags.tagOf(id)
    assert.notDeepEqual(kept, lost)
    assert.deepEqual(new AckTags(store, random).tagOf(id), kept, 'what a restart remakes')
  })

  it('name the held message they answer until it is forgotten', () => {
    const tags = new AckTags(createMemoryStore(), random)
    const tag = tags.tagOf(new Uint8Array(16))
    const hex = Buffer.from(tag).toString('hex')
    tags.remember(hex, 'ab'.repeat(16))
    assert.equal(tags.messageOf(tag), 'ab'.repeat(16))
    tags.forget(hex)
    assert.equal(tags.messageOf(tag), undefined)
  })
})
