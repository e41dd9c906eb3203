/**
 * Talken's mesh core inside the simulator: every scenario, no router errors, no duplicate or
 * misdelivered messages; connected topologies deliver everything; an attacker does not take
 * honest delivery below 95% of the same run without it.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { routerMetrics, runScenario } from '../../src/sim/cli.ts'
import type { RouterMetrics } from '../../src/sim/metrics.ts'

function clean(m: RouterMetrics, what: string): void {
  assert.equal(m.routerErrors, 0, `${what}: router errors`)
  assert.equal(m.duplicatesDelivered, 0, `${what}: duplicates`)
  assert.equal(m.misdelivered, 0, `${what}: misdelivered`)
  assert.ok(m.completed, `${what}: completed`)
}

describe('the mesh core in the simulator', () => {
  for (const scenario of ['line', 'grid'] as const) {
    it(`${scenario}: connected, so everything is delivered`, async () => {
      const r = await runScenario({ scenario, nodes: 25, seed: 3, messages: 40, routers: ['talken'] })
      const m = routerMetrics(r, 'talken')
      clean(m, scenario)
      assert.equal(m.deliveryRatio, 1)
    })
  }

  for (const scenario of ['rwp', 'partition', 'churn'] as const) {
    it(`${scenario}: delivers without errors or duplicates`, async () => {
      const r = await runScenario({ scenario, nodes: 30, seed: 4, messages: 30, routers: ['talken'] })
      const m = routerMetrics(r, 'talken')
      clean(m, scenario)
      assert.ok(m.deliveryRatio > 0, `${scenario}: delivered ${m.deliveryRatio}`)
    })
  }

  it('attack: honest delivery stays at least 95% of the same run without the attacker', async () => {
    const r = await runScenario({
      scenario: 'attack',
      nodes: 25,
      seed: 6,
      messages: 50,
      durationSec: 300,
      routers: ['talken'],
    })
    const hit = routerMetrics(r, 'talken')
    const calm = r.withoutAttacker?.talken
    assert.ok(calm !== undefined)
    assert.ok(hit.attackFrames > 1000)
    clean(hit, 'under attack')
    assert.ok(
      hit.deliveryRatio >= 0.95 * calm.deliveryRatio,
      `${hit.deliveryRatio} under attack vs ${calm.deliveryRatio} without`,
    )
  })
})
