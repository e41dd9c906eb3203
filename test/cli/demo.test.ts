/**
 * `npm run demo`, run in-process: four real nodes on 127.0.0.1 with mDNS off, held to the line
 * A–B–D–C by their connection gaters. Timeouts are generous; nothing here asserts on durations.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { test } from 'node:test'
import { type DemoEvent, runDemo } from '../../src/cli/demo.ts'

test('the demo routes A → C over three hops, and holds a message for C while C is offline', async () => {
  const events: DemoEvent[] = []
  const summary = await runDemo({ output: (e) => events.push(e), timeoutMs: 120_000, awayMs: 500 })

  // The line, and only the line: A reaches C through B, three hops away.
  assert.deepEqual(summary.line, { A: ['B'], B: ['A', 'D'], D: ['B', 'C'], C: ['D'] })
  assert.deepEqual(summary.route, { from: 'A', to: 'C', nextHop: 'B', metric: 3 })

  // The first message crossed three links, once, and A saw each state up to delivered.
  assert.equal(summary.first.hops, 3)
  assert.equal(summary.first.arrivals, 1)
  assert.deepEqual(summary.first.states, ['queued', 'sent', 'relayed', 'delivered'])

  // The second waited with a relay while C was away, then arrived once and A saw it delivered.
  assert.ok(summary.second.heldBy.length > 0, 'a relay held the message while C was offline')
  assert.ok(['sent', 'relayed'].includes(summary.second.stateWhileAway), summary.second.stateWhileAway)
  assert.equal(summary.second.arrivals, 1)
  assert.equal(summary.second.states.at(-1), 'delivered')
  const received = events.filter((e) => e.event === 'message' && e.data.id === summary.second.id)
  assert.equal(received.length, 1)
  const restart = events.findIndex((e) => e.event === 'restart')
  const arrival = events.findIndex((e) => e.event === 'message' && e.data.id === summary.second.id)
  assert.ok(restart >= 0 && arrival > restart, 'the second message arrived only after C came back')

  // Every node and its data directory is gone.
  const dir = events.find((e) => e.event === 'homes')?.data.dir as string
  assert.ok(dir !== undefined && !existsSync(dir), `${dir} was removed`)
  assert.equal(events.at(-1)?.step, 'cleanup')
})

test('a demo that cannot finish in time fails with what it waited for, and still cleans up', async () => {
  const events: DemoEvent[] = []
  // The run's deadline is already over when the line is first checked.
  await assert.rejects(
    runDemo({ output: (e) => events.push(e), timeoutMs: 0 }),
    /timed out waiting for the line/,
  )
  const dir = events.find((e) => e.event === 'homes')?.data.dir as string
  assert.ok(dir !== undefined && !existsSync(dir), `${dir} was removed`)
  assert.equal(events.at(-1)?.step, 'cleanup')
})
