/**
 * A timer step that a full disk undoes at commit (an expiry, here): the mesh core's timer has
 * returned by then and cannot back off, and what it did is due again at once. The node tries it
 * again twice as late each time (up to 30 s), and resyncs its links as rarely: a resync stores
 * nothing, so its commit must not reset that backoff. The disk is SQLite's: only a transaction that
 * wrote something fails (fullAtCommitIfWritten). Time is the test's own (mocked timers and clock).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MeshCore } from '../../src/mesh/mesh-core.ts'
import { loadIdentity, openHome } from '../../src/node/data-dir.ts'
import { createNode } from '../../src/node/node.ts'
import { fullAtCommitIfWritten } from '../helpers/full-disk.ts'
import { introduce, makeHome } from '../helpers/nodes.ts'

const SECOND = 1_000

test('a timer step undone by a full disk is tried again with doubling waits, and all resumes once there is room', async (t) => {
  const ada = makeHome('Ada')
  const bob = makeHome('Bob')
  t.after(() => {
    ada.remove()
    bob.remove()
  })
  introduce(ada, bob)
  const opened = openHome({ home: ada.home })
  const disk = { full: false }
  const failed: number[] = []
  const node = await createNode({
    store: fullAtCommitIfWritten(opened.store, disk),
    identity: loadIdentity({ home: ada.home }),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: false,
    ttlMs: 1_500,
    logger: (_level, message) => {
      if (message === 'mesh step failed') failed.push(Date.now())
    },
  })
  const errors: Error[] = []
  node.on('error', (err) => errors.push(err))
  const resyncs: number[] = []
  const resync = MeshCore.prototype.resync
  t.mock.method(MeshCore.prototype, 'resync', function (this: MeshCore) {
    resyncs.push(Date.now())
    resync.call(this)
  })
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() })
  t.after(async () => {
    t.mock.timers.reset()
    await node.stop()
    opened.close()
  })
  const tick = (ms: number) => {
    for (let i = 0; i < ms / 100; i++) t.mock.timers.tick(100)
  }
  const gaps = (times: number[]) => times.slice(1).map((at, i) => at - times[i]!)

  // Bob is never reached: the message waits in the outbox, and expires while the disk is full.
  const first = node.send('Bob', 'never reaches Bob')
  disk.full = true
  tick(5 * SECOND)
  assert.ok(failed.length > 0, 'the expiry was undone')
  const start = failed[0]!
  tick(start + 120 * SECOND - Date.now())
  // Undone at +0, then tried at +1, +3, +7, +15, +31, +61, +91 s (+121 is beyond): not each second.
  assert.deepEqual(
    gaps(failed),
    [1, 2, 4, 8, 16, 30, 30].map((s) => s * SECOND),
  )
  // Each resync comes after the step undone before it, as late as the retry: once per failure, not
  // once a second (the resync commits, having written nothing; that proves no room on the disk).
  assert.equal(resyncs.length, failed.length - 1)
  assert.deepEqual(
    gaps(resyncs),
    [2, 4, 8, 16, 30, 30].map((s) => s * SECOND),
  )
  assert.equal(errors.length, failed.length)
  assert.equal(node.store.getMessage(first.id)?.state, 'queued', 'the expiry is not stored yet')

  // Room again: the next try (within 30 s) stores the expiry, and nothing more is undone.
  disk.full = false
  tick(30 * SECOND)
  assert.equal(node.store.getMessage(first.id)?.state, 'expired')
  assert.equal(node.store.outboxSize(), 0)
  const settled = { failed: failed.length, resyncs: resyncs.length }
  tick(120 * SECOND)
  assert.deepEqual({ failed: failed.length, resyncs: resyncs.length }, settled)

  // The backoff starts anew after a step that stored something: the next full disk is met as the
  // first was, the first retry a second later.
  const second = node.send('Bob', 'nor this')
  disk.full = true
  tick(5 * SECOND)
  const again = failed.slice(settled.failed)
  assert.deepEqual(
    gaps(again),
    [1, 2].map((s) => s * SECOND),
  )
  assert.deepEqual(resyncs.slice(settled.resyncs), again.slice(1), 'resynced 1 s, then 2 s after')
  disk.full = false
  tick(5 * SECOND)
  assert.equal(node.store.getMessage(second.id)?.state, 'expired')
})
