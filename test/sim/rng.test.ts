import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Rng } from '../../src/sim/rng.ts'

const draw = (rng: Rng, n: number) => Array.from({ length: n }, () => rng.uint32())

describe('Rng', () => {
  it('is a pure function of the seed', () => {
    assert.deepEqual(draw(Rng.fromSeed(42), 100), draw(Rng.fromSeed(42), 100))
    assert.notDeepEqual(draw(Rng.fromSeed(42), 100), draw(Rng.fromSeed(43), 100))
    assert.notDeepEqual(draw(Rng.fromSeed(2 ** 40), 10), draw(Rng.fromSeed(0), 10))
  })

  it('forks streams that depend only on the name, not on draws made before', () => {
    const a = Rng.fromSeed(7)
    const b = Rng.fromSeed(7)
    draw(b, 1000) // b's own position must not matter
    assert.deepEqual(draw(a.fork('traffic'), 50), draw(b.fork('traffic'), 50))
    assert.notDeepEqual(draw(a.fork('traffic'), 50), draw(a.fork('mobility'), 50))
    assert.notDeepEqual(draw(a.fork('router:1'), 50), draw(a.fork('router:10'), 50))
    assert.notDeepEqual(draw(a.fork('x').fork('y'), 10), draw(a.fork('y').fork('x'), 10))
  })

  it('draws uniform numbers in range', () => {
    const rng = Rng.fromSeed(1)
    const buckets = new Array(10).fill(0)
    for (let i = 0; i < 100_000; i++) {
      const x = rng.next()
      assert.ok(x >= 0 && x < 1)
      buckets[Math.floor(x * 10)]++
    }
    for (const b of buckets) assert.ok(b > 9_000 && b < 11_000, `bucket count ${b}`)
    for (let i = 0; i < 1000; i++) {
      const k = rng.int(7)
      assert.ok(Number.isInteger(k) && k >= 0 && k < 7)
    }
  })
})
