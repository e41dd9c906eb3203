/**
 * The daemon logs what goes wrong in its node (a step that did not commit, a listener that threw)
 * and goes on: neither ends it.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runDaemon } from '../../src/daemon/daemon.ts'
import type { LogLevel } from '../../src/mesh/router.ts'
import { introduce, makeHome, startNode, until } from '../helpers/nodes.ts'

test('a listener that throws in the daemon is logged, and the daemon goes on', async (t) => {
  const homes = { ada: makeHome('Ada'), bob: makeHome('Bob') }
  t.after(() => {
    for (const h of Object.values(homes)) h.remove()
  })
  introduce(homes.ada, homes.bob)
  const logged: Array<{ level: LogLevel; message: string; error?: unknown }> = []
  const daemon = await runDaemon({
    home: homes.ada.home,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: false,
    logger: (level, message, fields) => logged.push({ level, message, error: fields?.error }),
  })
  t.after(() => daemon.stop())
  const bob = await startNode(homes.bob.home, { bootstrap: daemon.node.addresses() })
  t.after(() => bob.stop())

  // An application embedding the daemon's node with a bug in a listener.
  daemon.node.on('state', (e) => {
    if (e.state === 'delivered') throw new Error('a bug in the application')
  })
  await daemon.node.send('Bob', 'one').delivered(AbortSignal.timeout(10_000))
  await until(
    () => logged.some((l) => l.level === 'error' && l.error === 'a bug in the application'),
    5_000,
    'the error logged',
  )
  assert.ok(daemon.node.status().running)
  await daemon.node.send('Bob', 'two').delivered(AbortSignal.timeout(10_000))
})
