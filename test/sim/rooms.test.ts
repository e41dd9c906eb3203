/**
 * The rooms scenario at a small size: Talken's room gossip over the real mesh core beside naive
 * flooding, on the same topology and posts. Checks behaviour (everyone gets everything, few
 * duplicates, fewer transmissions than flooding, same seed same result), not speed.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { parseRoomsCli } from '../../src/sim/cli.ts'
import { runRooms } from '../../src/sim/rooms.ts'
import { throwsCode } from '../helpers/errors.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const small = { nodes: 150, seed: 5, members: 12, posts: 60 }

describe('rooms scenario', () => {
  const report = runRooms(small)

  it('delivers every post to every member, with few duplicates and fewer transmissions than flooding', () => {
    const { talken, flooding } = report
    assert.equal(talken.deliveryRatio, 1)
    assert.equal(flooding.deliveryRatio, 1)
    assert.equal(talken.delivered, small.posts * (small.members - 1))
    assert.ok(
      talken.duplicatesPerMember <= 1.5,
      `duplicates per member per post: ${talken.duplicatesPerMember}`,
    )
    assert.ok(
      talken.txPerPostPerMember < flooding.txPerPostPerMember,
      `talken ${talken.txPerPostPerMember} vs flooding ${flooding.txPerPostPerMember}`,
    )
    assert.ok(flooding.duplicatesPerMember > 1, 'flooding sends each post over every link')
    assert.equal(talken.completed, true)
  })

  it('is deterministic: the same seed gives the same figures', () => {
    const again = runRooms(small)
    assert.deepEqual(again.talken, report.talken)
    assert.deepEqual(again.flooding, report.flooding)
  })

  it('refuses bad options with invalid_argument', () => {
    throwsCode(() => runRooms({ nodes: 10, seed: 1, members: 20 }), 'invalid_argument')
    throwsCode(() => runRooms({ nodes: 100, seed: 1, members: 1 }), 'invalid_argument')
    throwsCode(() => parseRoomsCli(['--scenario', 'rooms', '--members', 'many']), 'invalid_argument')
    throwsCode(() => parseRoomsCli(['--scenario', 'rooms', '--routers', 'x']), 'invalid_argument')
  })

  it('prints one JSON object with both modes from the command line', () => {
    const out = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/sim/cli.ts',
        '--scenario',
        'rooms',
        '--nodes',
        '60',
        '--members',
        '6',
        '--posts',
        '10',
        '--seed',
        '2',
        '--json',
      ],
      { cwd: root, encoding: 'utf8' },
    )
    assert.equal(out.status, 0, out.stderr)
    const r = JSON.parse(out.stdout)
    assert.equal(r.scenario, 'rooms')
    for (const mode of ['talken', 'flooding']) {
      for (const key of ['deliveryRatio', 'latencyP95', 'txPerPostPerMember', 'duplicatesPerMember']) {
        assert.equal(typeof r[mode][key], 'number', `${mode}.${key}`)
      }
    }
    assert.equal(typeof r.wallSeconds, 'number')
  })
})
