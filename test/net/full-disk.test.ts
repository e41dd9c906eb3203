/**
 * A full disk at the recipient loses nothing and shows nothing twice: the message that did not fit
 * is refused (the session it advanced and its announcement are undone with the failed write), the
 * sender keeps it and sends it again, and once there is room it is delivered and shown once.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { fillable } from '../helpers/full-disk.ts'
import { pairWithBobsDisk, until } from '../helpers/nodes.ts'

test('a full disk at the recipient: the message is refused, comes again, and is shown once', async (t) => {
  // The message record is the last write of a delivery: the session has moved on by then.
  const disk = { full: false }
  const { ada, bob } = await pairWithBobsDisk(t, (store) => fillable(store, disk, ['addMessage']))
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
})
