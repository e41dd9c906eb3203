import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import { compareText, createMemoryStore } from '../../src/store/memory-store.ts'
import { storeCompliance } from '../compliance/store.ts'

storeCompliance('memory', (options) => createMemoryStore(options))

describe('compareText', () => {
  it('orders by code point, like SQLite over UTF-8', () => {
    const words = ['b', 'a', '', 'ab', '\uFFFD', '\u{1F600}', '\uE000', '\uD7FF', 'é']
    const byUtf8 = [...words].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
    assert.deepEqual([...words].sort(compareText), byUtf8)
  })
})
