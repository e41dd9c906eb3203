import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runScenario, type SimReport } from '../../src/sim/cli.ts'
import { buildScenario } from '../../src/sim/scenarios.ts'

/** The report without its measurements of the machine. */
function stable(r: SimReport): string {
  const { wallSeconds: _w, peakRssMB: _p, cpuSeconds: _c, ...rest } = r
  return JSON.stringify(rest)
}

describe('determinism', () => {
  for (const scenario of ['rwp', 'churn', 'attack'] as const) {
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
