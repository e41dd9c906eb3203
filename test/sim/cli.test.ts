import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { parseCli } from '../../src/sim/cli.ts'
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
