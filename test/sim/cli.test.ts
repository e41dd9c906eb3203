import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { parseCli, runScenario } from '../../src/sim/cli.ts'
import { buildScenario } from '../../src/sim/scenarios.ts'
import type { SimProgress } from '../../src/sim/simulator.ts'
import { throwsCode } from '../helpers/errors.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))

describe('sim command line', () => {
  it('parses options', () => {
    const { options, json } = parseCli([
      '--scenario',
      'grid',
      '--nodes',
      '100',
      '--seed',
      '7',
      '--json',
      '--routers',
      'epidemic, direct',
      '--loss',
      '0.1',
      '--mtu',
      '512',
    ])
    assert.equal(json, true)
    assert.equal(options.scenario, 'grid')
    assert.equal(options.nodes, 100)
    assert.equal(options.seed, 7)
    assert.deepEqual(options.routers, ['epidemic', 'direct'])
    assert.deepEqual(options.link, { loss: 0.1, mtu: 512 })
    assert.equal(parseCli(['--scenario', 'grid']).progress, false)
    assert.equal(parseCli(['--scenario', 'grid', '--progress']).progress, true)
  })

  it('reports progress as the run goes, and the run is the same with or without it', async () => {
    const options = {
      scenario: 'rwp',
      nodes: 20,
      seed: 4,
      messages: 20,
      routers: ['talken', 'epidemic'],
    } as const
    const seen: Array<{ router: string } & SimProgress> = []
    const watched = await runScenario({
      ...options,
      progressEvery: 2_000,
      onProgress: (router, p) => seen.push({ router, ...p }),
    })
    const plain = await runScenario(options)
    for (const r of options.routers) assert.deepEqual(watched[r], plain[r])
    // Every router reports, in order.
    for (const r of options.routers) {
      const mine = seen.filter((p) => p.router === r)
      assert.ok(mine.length > 0, `no progress from ${r}`)
      for (let i = 1; i < mine.length; i++) {
        assert.ok(mine[i]!.simulatedMs >= mine[i - 1]!.simulatedMs)
        assert.ok(mine[i]!.events > mine[i - 1]!.events)
        assert.ok(mine[i]!.delivered >= mine[i - 1]!.delivered)
      }
      const last = mine.at(-1)!
      assert.ok(last.simulatedMs <= last.durationMs && last.delivered <= last.sent)
    }
  })

  it('rejects bad arguments with invalid_argument', () => {
    for (const argv of [
      [],
      ['--scenario', 'moon'],
      ['--scenario', 'grid', '--nodes', 'ten'],
      ['--scenario', 'grid', '--nodes', '1'],
      ['--scenario', 'grid', '--seed', '-3'],
      ['--scenario', 'grid', '--loss', 'lots'],
      ['--scenario', 'grid', '--frobnicate'],
    ]) {
      throwsCode(() => parseCli(argv), 'invalid_argument')
    }
    // Below Talken's smallest fragment: its cores would refuse every link, and deliver nothing.
    throwsCode(
      () => buildScenario({ scenario: 'line', nodes: 5, seed: 1, link: { mtu: 83 } }),
      'invalid_argument',
    )
    assert.equal(
      buildScenario({ scenario: 'line', nodes: 5, seed: 1, link: { mtu: 84 } }).input.link(0, 1).mtu,
      84,
    )
  })

  it('prints one JSON object, or an error with exit code 2', () => {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'src/sim/cli.ts', ...args], {
        cwd: root,
        encoding: 'utf8',
      })
    const ok = run('--scenario', 'line', '--nodes', '5', '--seed', '3', '--json', '--routers', 'direct')
    assert.equal(ok.status, 0, ok.stderr)
    const report = JSON.parse(ok.stdout)
    assert.deepEqual(Object.keys(report), [
      'scenario',
      'nodes',
      'seed',
      'direct',
      'scenarioInfo',
      'wallSeconds',
      'peakRssMB',
      'cpuSeconds',
    ])
    assert.equal(report.direct.duplicatesDelivered, 0)
    const bad = run('--scenario', 'line', '--routers', 'nope', '--json')
    assert.equal(bad.status, 2)
    assert.equal(JSON.parse(bad.stdout).error.code, 'invalid_argument')
  })
})
