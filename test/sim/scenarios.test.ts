import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { routerMetrics, runScenario } from '../../src/sim/cli.ts'
import type { RouterMetrics } from '../../src/sim/metrics.ts'
import { ROUTERS } from '../../src/sim/routers.ts'
import { buildScenario } from '../../src/sim/scenarios.ts'
import { components, gridEdges, lineEdges } from '../../src/sim/topology.ts'
import { throwsCode } from '../helpers/errors.ts'

const BASELINES = ['epidemic', 'direct', 'sprayAndWait']

/** What every correct router run satisfies. */
function sane(m: RouterMetrics, label: string): void {
  assert.equal(m.duplicatesDelivered, 0, `${label}: duplicates`)
  assert.equal(m.misdelivered, 0, `${label}: misdelivered`)
  assert.equal(m.routerErrors, 0, `${label}: router errors`)
  assert.equal(m.oversize, 0, `${label}: oversize`)
  assert.ok(m.completed, `${label}: completed`)
  assert.ok(m.deliveryRatio >= 0 && m.deliveryRatio <= 1)
}

describe('topologies', () => {
  it('line and grid are connected', () => {
    for (const n of [2, 3, 10, 17, 100]) {
      assert.equal(components(n, lineEdges(n)), 1)
      assert.equal(components(n, gridEdges(n)), 1, `grid of ${n}`)
    }
    assert.equal(gridEdges(9).length / 2, 12) // 3×3: 6 horizontal + 6 vertical
  })
})

describe('scenarios', () => {
  it('line: flooding delivers everything; direct only reaches neighbours', async () => {
    const r = await runScenario({ scenario: 'line', nodes: 12, seed: 1 })
    for (const name of BASELINES) sane(routerMetrics(r, name), name)
    assert.equal(routerMetrics(r, 'epidemic').deliveryRatio, 1)
    assert.ok(routerMetrics(r, 'direct').deliveryRatio < 0.5)
  })

  it('grid: connected, flooding delivers everything', async () => {
    const r = await runScenario({ scenario: 'grid', nodes: 49, seed: 2 })
    assert.equal(r.scenarioInfo.gridWidth, 7)
    for (const name of BASELINES) sane(routerMetrics(r, name), name)
    assert.equal(routerMetrics(r, 'epidemic').deliveryRatio, 1)
  })

  it('rwp: sparse, 0.5–2 neighbours on average, and mobility still delivers', async () => {
    const r = await runScenario({ scenario: 'rwp', nodes: 60, seed: 3, messages: 60 })
    const degree = r.scenarioInfo.meanDegree as number
    assert.ok(degree >= 0.5 && degree <= 2, `mean degree ${degree}`)
    for (const name of BASELINES) sane(routerMetrics(r, name), name)
    const e = routerMetrics(r, 'epidemic')
    const d = routerMetrics(r, 'direct')
    assert.ok(e.deliveryRatio >= d.deliveryRatio)
    assert.ok(e.deliveryRatio > 0.5, `epidemic ${e.deliveryRatio}`)
  })

  it('partition: cross-island messages need the carrier (or the heal)', async () => {
    const r = await runScenario({ scenario: 'partition', nodes: 21, seed: 4, messages: 40 })
    assert.equal(r.scenarioInfo.carrier, 20)
    for (const name of BASELINES) sane(routerMetrics(r, name), name)
    assert.equal(routerMetrics(r, 'epidemic').deliveryRatio, 1)
  })

  it('churn: nodes come and go without duplicates or errors', async () => {
    const r = await runScenario({ scenario: 'churn', nodes: 40, seed: 5, messages: 60 })
    assert.ok((r.scenarioInfo.departures as number) > 0)
    for (const name of BASELINES) sane(routerMetrics(r, name), name)
  })

  it('attack: forged frames reach the routers, which survive them; withoutAttacker is the same run without', async () => {
    const r = await runScenario({ scenario: 'attack', nodes: 25, seed: 6, messages: 50, durationSec: 300 })
    assert.ok(r.withoutAttacker !== undefined)
    for (const name of BASELINES) {
      const hit = routerMetrics(r, name)
      const calm: RouterMetrics = r.withoutAttacker[name]!
      assert.ok(hit.attackFrames > 1000, `${name}: ${hit.attackFrames} attack frames`)
      assert.equal(calm.attackFrames, 0)
      assert.deepEqual(Object.keys(hit), Object.keys(calm))
      assert.equal(hit.created, calm.created, 'the flood is not counted')
      assert.equal(hit.routerErrors, 0)
      assert.equal(hit.duplicatesDelivered, 0)
      sane(calm, `${name} without attacker`)
    }
  })

  it('rejects bad options', () => {
    throwsCode(() => buildScenario({ scenario: 'grid', nodes: 1, seed: 1 }), 'invalid_argument')
    throwsCode(() => buildScenario({ scenario: 'grid', nodes: 10, seed: -1 }), 'invalid_argument')
    throwsCode(() => buildScenario({ scenario: 'trace', nodes: 10, seed: 1 }), 'invalid_argument')
    throwsCode(() => buildScenario({ scenario: 'partition', nodes: 4, seed: 1 }), 'invalid_argument')
    throwsCode(
      () => buildScenario({ scenario: 'line', nodes: 4, seed: 1, link: { mtu: 10 } }),
      'invalid_argument',
    )
    throwsCode(
      () => buildScenario({ scenario: 'line', nodes: 4, seed: 1, link: { loss: 1 } }),
      'invalid_argument',
    )
  })

  it('the registry holds the three baselines', () => {
    assert.deepEqual(
      Object.keys(ROUTERS)
        .filter((k) => BASELINES.includes(k))
        .sort(),
      [...BASELINES].sort(),
    )
  })
})
