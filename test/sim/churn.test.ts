import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { RouterFactory } from '../../src/mesh/router.ts'
import { type BaselineStore, createBaselineStore } from '../../src/sim/baselines/baseline-store.ts'
import { createEpidemicRouter } from '../../src/sim/baselines/epidemic.ts'
import { defineRouter } from '../../src/sim/routers.ts'
import { simulate } from '../../src/sim/simulator.ts'
import { deliveries, type ProbeLog, probeFactory, tinyInput } from './helpers.ts'

describe('churn', () => {
  // 0 hands a message for 2 to the carrier 1; 1 leaves, comes back, and only then meets 2.
  const input = tinyInput({
    nodes: 3,
    durationMs: 20_000,
    contacts: [
      [1000, 'up', 0, 1],
      [2000, 'down', 0, 1],
      [9000, 'up', 1, 2],
    ],
    churn: [
      [3000, 'leave', 1],
      [6000, 'return', 1],
    ],
    messages: [{ src: 0, dst: 2, createdAt: 0 }],
  })

  it('gives a returning node a new router over the same store', () => {
    const stores: BaselineStore[] = []
    const created: { store: BaselineStore }[] = []
    const epidemic = createEpidemicRouter()
    const factory: RouterFactory<BaselineStore> = (init) => {
      created.push({ store: init.store })
      return epidemic(init)
    }
    const seen = deliveries()
    const entry = defineRouter({
      factory,
      makeStore: () => {
        const s = createBaselineStore()
        stores.push(s)
        return s
      },
    })
    const m = simulate(input, entry, { seed: 1, strict: true, onDeliver: seen.onDeliver })
    assert.equal(created.length, 4, 'three routers at the start, one more when node 1 returns')
    assert.equal(created[3]!.store, stores[1], 'the same store object')
    assert.equal(m.deliveryRatio, 1, 'the message survived in the store')
    assert.ok(seen.list[0]!.time > 9000)
    assert.equal(m.duplicatesDelivered, 0)
  })

  it('takes a leaving node’s links down for its neighbours and brings them back', () => {
    const logs: ProbeLog[] = []
    const both = tinyInput({
      nodes: 2,
      durationMs: 10_000,
      contacts: [[0, 'up', 0, 1]],
      churn: [
        [1000, 'leave', 1],
        [2000, 'return', 1],
      ],
    })
    simulate(both, defineRouter({ factory: probeFactory(logs), makeStore: () => null }), { seed: 1 })
    const n0 = logs.filter((l) => l.node === 0)
    const n1 = logs.filter((l) => l.node === 1)
    assert.equal(n0.length, 1)
    assert.equal(n1.length, 2)
    assert.deepEqual(n0[0]!.events, ['0 up 1 16384', '1000 down 1', '2000 up 1 16384'])
    assert.deepEqual(n1[0]!.events, ['0 up 0 16384'], 'the discarded router hears nothing more')
    assert.deepEqual(n1[1]!.events, ['2000 up 0 16384'])
  })

  it('does not create messages at a source that is away', () => {
    const away = tinyInput({
      nodes: 2,
      durationMs: 10_000,
      contacts: [[0, 'up', 0, 1]],
      churn: [[100, 'leave', 0]],
      messages: [{ src: 0, dst: 1, createdAt: 500 }],
    })
    const m = simulate(
      away,
      defineRouter({ factory: createEpidemicRouter(), makeStore: () => createBaselineStore() }),
      {
        seed: 1,
      },
    )
    assert.equal(m.created, 0)
    assert.equal(m.sourceOffline, 1)
  })
})
