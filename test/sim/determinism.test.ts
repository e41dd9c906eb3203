import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, it } from 'node:test'
import { runScenario, type SimReport } from '../../src/sim/cli.ts'
import { ROUTERS } from '../../src/sim/routers.ts'
import { buildScenario, type ScenarioOptions } from '../../src/sim/scenarios.ts'
import { simulate } from '../../src/sim/simulator.ts'
import { HELSINKI } from './helpers.ts'

/** The report without its measurements of the machine. */
function stable(r: SimReport): string {
  const { wallSeconds: _w, peakRssMB: _p, cpuSeconds: _c, ...rest } = r
  return JSON.stringify(rest)
}

/**
 * Every delivery of one router's run, in order: which node, which message, when, over how many
 * hops, with which payload, hashed; and how many there were.
 */
function deliveries(o: ScenarioOptions, router: string): { hash: string; count: number } {
  const { input } = buildScenario(o)
  const h = createHash('sha256')
  let count = 0
  simulate(input, ROUTERS[router]!, {
    seed: o.seed,
    onDeliver: (node, d, now) => {
      count++
      h.update(`${node} ${d.id} ${now} ${d.hops} ${Buffer.from(d.payload).toString('hex')}\n`)
    },
  })
  return { hash: h.digest('hex'), count }
}

const SMALL = { nodes: 30, messages: 40, durationSec: 600 } as const

describe('determinism', () => {
  for (const scenario of ['rwp', 'churn', 'attack', 'partition'] as const) {
    it(`${scenario}: the same seed gives the same deliveries, one by one, for every router`, () => {
      for (const router of Object.keys(ROUTERS)) {
        const a = deliveries({ scenario, seed: 11, ...SMALL }, router)
        const b = deliveries({ scenario, seed: 11, ...SMALL }, router)
        assert.ok(a.count > 0, `${router} delivered nothing in ${scenario}: the comparison would be empty`)
        assert.deepEqual(a, b, router)
      }
    })
  }

  it('trace: the same seed gives the same deliveries, one by one, for every router', () => {
    for (const router of Object.keys(ROUTERS)) {
      const o = { scenario: 'trace', nodes: 0, seed: 3, traceDir: HELSINKI, durationSec: 3600 } as const
      const a = deliveries(o, router)
      assert.ok(a.count > 0, `${router} delivered nothing in the trace`)
      assert.deepEqual(a, deliveries(o, router), router)
    }
  })

  it('a different seed gives different deliveries for every router', () => {
    for (const router of Object.keys(ROUTERS)) {
      const a = deliveries({ scenario: 'rwp', seed: 11, ...SMALL }, router)
      const b = deliveries({ scenario: 'rwp', seed: 12, ...SMALL }, router)
      assert.ok(a.count > 0 && b.count > 0, router)
      assert.notEqual(a.hash, b.hash, router)
    }
  })

  for (const scenario of ['rwp', 'churn', 'attack', 'partition'] as const) {
    it(`${scenario}: the same seed gives byte-identical results`, async () => {
      const a = await runScenario({ scenario, nodes: 30, seed: 11, messages: 40, durationSec: 600 })
      const b = await runScenario({ scenario, nodes: 30, seed: 11, messages: 40, durationSec: 600 })
      assert.equal(stable(a), stable(b))
    })
  }

  it('a different seed gives a different contact trace and message schedule', () => {
    const a = buildScenario({ scenario: 'rwp', nodes: 50, seed: 1, durationSec: 600 }).input
    const b = buildScenario({ scenario: 'rwp', nodes: 50, seed: 2, durationSec: 600 }).input
    const trace = (i: typeof a) =>
      JSON.stringify([[...i.schedule.time], [...i.schedule.a], [...i.schedule.b]])
    assert.notEqual(trace(a), trace(b))
    assert.notDeepEqual([...a.messages.src], [...b.messages.src])
  })

  it('the inputs do not depend on which routers run', async () => {
    const one = await runScenario({ scenario: 'rwp', nodes: 30, seed: 5, messages: 30, routers: ['direct'] })
    const all = await runScenario({ scenario: 'rwp', nodes: 30, seed: 5, messages: 30 })
    assert.deepEqual(one.direct, all.direct)
    assert.deepEqual(one.scenarioInfo, all.scenarioInfo)
  })
})
