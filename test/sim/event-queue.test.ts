import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { EventQueue } from '../../src/sim/event-queue.ts'
import { prng, testSeed } from '../helpers/prng.ts'

describe('EventQueue', () => {
  it('pops by time, then by insertion order', () => {
    const q = new EventQueue(2)
    q.push(5, 1, 0)
    q.push(3, 1, 1)
    q.push(5, 1, 2)
    q.push(3, 1, 3)
    q.push(0, 1, 4)
    const order: number[] = []
    while (q.pop()) order.push(q.current.a)
    assert.deepEqual(order, [4, 1, 3, 0, 2])
    assert.equal(q.peekTime(), Number.POSITIVE_INFINITY)
  })

  it('matches a stable sort under random interleaved pushes and pops', () => {
    const seed = testSeed()
    const rand = prng(seed)
    const q = new EventQueue(4)
    const reference: { time: number; seq: number }[] = []
    let seq = 0
    let now = 0
    for (let step = 0; step < 20_000; step++) {
      if (rand() < 0.6 || reference.length === 0) {
        const time = now + Math.floor(rand() * 50)
        q.push(time, 2, seq, 0, 0, 0, { seq })
        reference.push({ time, seq })
        seq++
      } else {
        reference.sort((x, y) => x.time - y.time || x.seq - y.seq)
        const want = reference.shift()!
        assert.ok(q.pop(), `seed ${seed}`)
        assert.equal(q.current.time, want.time, `seed ${seed}`)
        assert.equal(q.current.a, want.seq, `seed ${seed}`)
        assert.deepEqual(q.current.ref, { seq: want.seq })
        now = want.time
      }
      assert.equal(q.size, reference.length)
    }
  })
})
