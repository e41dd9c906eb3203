import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { TalkenError } from '../../src/errors.ts'
import { defineRouter } from '../../src/sim/routers.ts'
import { simulate } from '../../src/sim/simulator.ts'
import { type ProbeLog, probeFactory, tinyInput } from './helpers.ts'

describe('simulator event ordering', () => {
  it('tells both ends of a link in schedule order, and inputs run before dynamic events at one instant', () => {
    const logs: ProbeLog[] = []
    const factory = probeFactory(logs, {
      onLinkUp: (log) => {
        if (log.node === 0 && log.host.now() === 0) log.host.wakeAt(1000)
      },
      onTimer: (log) => log.events.push(`${log.host.now()} timer-ran`),
    })
    const input = tinyInput({
      nodes: 3,
      durationMs: 5000,
      contacts: [
        [0, 'up', 0, 1],
        [0, 'up', 2, 0],
        [1000, 'down', 0, 1],
      ],
    })
    simulate(input, defineRouter({ factory, makeStore: () => null }), { seed: 1 })
    const n0 = logs.find((l) => l.node === 0)!
    assert.deepEqual(n0.events, [
      '0 up 1 16384',
      '0 up 2 16384',
      '1000 down 1',
      '1000 timer',
      '1000 timer-ran',
    ])
  })

  it('keeps only the earliest pending wake-up, and drops stale ones', () => {
    const logs: ProbeLog[] = []
    const rearmed = new Set<number>()
    const factory = probeFactory(logs, {
      onLinkUp: (log) => {
        log.host.wakeAt(3000)
        log.host.wakeAt(2000)
        log.host.wakeAt(2500.2)
      },
      onTimer: (log) => {
        if (rearmed.has(log.node)) return
        rearmed.add(log.node)
        log.host.wakeAt(10) // in the past: as soon as possible
      },
    })
    const input = tinyInput({ nodes: 2, durationMs: 10_000, contacts: [[0, 'up', 0, 1]] })
    simulate(input, defineRouter({ factory, makeStore: () => null }), { seed: 1 })
    for (const log of logs) {
      assert.deepEqual(
        log.events.filter((e) => e.endsWith('timer')),
        ['2000 timer', '2000 timer'],
      )
    }
  })

  it('stops at the event budget and says so', () => {
    const logs: ProbeLog[] = []
    const factory = probeFactory(logs, {
      onLinkUp: (log) => log.host.wakeAt(log.host.now() + 1),
      onTimer: (log) => log.host.wakeAt(log.host.now() + 1),
    })
    const input = tinyInput({ nodes: 2, durationMs: 1_000_000, contacts: [[0, 'up', 0, 1]] })
    const m = simulate(input, defineRouter({ factory, makeStore: () => null }), { seed: 1, maxEvents: 500 })
    assert.equal(m.completed, false)
    assert.equal(m.events, 500)
  })

  it('counts router exceptions, or rethrows them when strict', () => {
    const logs: ProbeLog[] = []
    const factory = probeFactory(logs, {
      onLinkUp: () => {
        throw new TalkenError('malformed', 'boom')
      },
    })
    const input = tinyInput({ nodes: 2, durationMs: 1000, contacts: [[0, 'up', 0, 1]] })
    const entry = defineRouter({ factory, makeStore: () => null })
    assert.equal(simulate(input, entry, { seed: 1 }).routerErrors, 2)
    assert.throws(() => simulate(input, entry, { seed: 1, strict: true }), /boom/)
  })
})
