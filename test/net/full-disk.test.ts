/**
 * A full disk at the recipient loses nothing and shows nothing twice: the message that did not fit
 * is refused (the session it advanced and its announcement are undone with the failed write), the
 * sender keeps it and sends it again, and once there is room it is delivered and shown once.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadIdentity, openHome } from '../../src/node/data-dir.ts'
import { createNode } from '../../src/node/node.ts'
import { fillable } from '../helpers/full-disk.ts'
import { introduce, makeHome, startNode, until } from '../helpers/nodes.ts'

test('a full disk at the recipient: the message is refused, comes again, and is shown once', async (t) => {
  const homes = { ada: makeHome('Ada'), bob: makeHome('Bob') }
  introduce(homes.ada, homes.bob)
  const opened = openHome({ home: homes.bob.home })
  t.after(() => {
    opened.close()
    for (const h of Object.values(homes)) h.remove()
  })
  // The message record is the last write of a delivery: the session has moved on by then.
  const disk = { full: false }
  const bob = await createNode({
    store: fillable(opened.store, disk, ['addMessage']),
    identity: loadIdentity({ home: homes.bob.home }),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: false,
  })
  await bob.start()
  // A refusal lasts three hop-ack timeouts: a short one, so that the test need not wait 30 s.
  const ada = await startNode(homes.ada.home, { bootstrap: bob.addresses(), mesh: { hopAckTimeoutMs: 500 } })
  try {
    await until(() => ada.peers().some((p) => p.mesh) && bob.peers().some((p) => p.mesh), 10_000, 'the link')
    await ada.send('Bob', 'first').delivered(AbortSignal.timeout(10_000))
    const shown: string[] = []
    bob.on('message', (m) => shown.push(m.text))

    disk.full = true
    const handle = ada.send('Bob', 'while the disk is full')
    await until(() => bob.status().mesh.deliveriesRefused > 0, 10_000, 'a refusal')
    assert.deepEqual(shown, [], 'nothing shown that was not stored')
    assert.notEqual(handle.state, 'delivered')

    disk.full = false
    await handle.delivered(AbortSignal.timeout(15_000))
    await until(() => shown.length > 0, 5_000, 'the message shown')
    await ada.send('Bob', 'and after').delivered(AbortSignal.timeout(10_000))
    await until(() => shown.length > 1, 5_000, 'the next message shown')
    assert.deepEqual(shown, ['while the disk is full', 'and after'])
    assert.equal(
      bob.store.listMessages(ada.identity.id).filter((m) => m.body.length > 0).length,
      3,
      'each message stored once',
    )
  } finally {
    await ada.stop()
    await bob.stop()
  }
})
