/**
 * Acceptance: on the Helsinki chat trace (The ONE's default scenario, 126 nodes, 733 messages),
 * our baselines land within 3 points of The ONE's own delivery ratios for the same routers.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { routerMetrics, runScenario } from '../../src/sim/cli.ts'
import { HELSINKI } from './helpers.ts'

/** The ONE v1.6.0 on this trace (README of the trace). */
const THE_ONE = { epidemic: 0.963, sprayAndWait: 0.925, direct: 0.483 } as const

describe('Helsinki chat trace against The ONE', () => {
  it('epidemic, spray-and-wait (binary, L=16) and direct delivery match within 3 points', async () => {
    const r = await runScenario({
      scenario: 'trace',
      nodes: 0,
      seed: 1,
      traceDir: HELSINKI,
      routers: Object.keys(THE_ONE),
    })
    assert.equal(r.nodes, 126)
    for (const [name, theirs] of Object.entries(THE_ONE)) {
      const m = routerMetrics(r, name)
      assert.equal(m.created, 733)
      assert.ok(
        Math.abs(m.deliveryRatio - theirs) <= 0.03,
        `${name}: ${m.deliveryRatio} against The ONE's ${theirs}`,
      )
      assert.equal(m.duplicatesDelivered, 0)
      assert.equal(m.misdelivered, 0)
    }
    // Overheads (The ONE: epidemic 123.1, spray-and-wait 15.5, direct 0) are ours minus one.
    assert.equal(routerMetrics(r, 'direct').txPerDelivered, 1)
    assert.ok(Math.abs(routerMetrics(r, 'sprayAndWait').txPerDelivered! - 16.5) < 2)
    assert.ok(Math.abs(routerMetrics(r, 'epidemic').txPerDelivered! - 124.1) < 10)
  })
})
