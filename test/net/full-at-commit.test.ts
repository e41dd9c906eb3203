/**
 * A disk that fills up when a step of the node commits: nothing the step did may leave the node.
 * Its hop acknowledgements and delivery proofs would promise custody or delivery of what the disk
 * did not keep (the sender would drop it, or show it delivered); held back, they never go, the
 * sender sends again, and once there is room the message is delivered and shown once.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { fullAtCommit } from '../helpers/full-disk.ts'
import { pairWithBobsDisk, until } from '../helpers/nodes.ts'

test('a disk full at commit: nothing of the failed step is sent, and the message arrives once later', async (t) => {
  const disk = { full: false }
  const failures: Error[] = []
  const { ada, bob } = await pairWithBobsDisk(t, (store) => fullAtCommit(store, disk))
  bob.on('error', (err) => failures.push(err))
  const shown: string[] = []
  bob.on('message', (m) => shown.push(m.text))

  disk.full = true
  const handle = ada.send('Bob', 'while the disk is full')
  await until(() => failures.length > 0, 10_000, "a step of Bob's that did not commit")
  // Long enough for anything the failed step queued to have arrived (several hop-ack timeouts).
  await new Promise((resolve) => setTimeout(resolve, 2_000))
  assert.notEqual(handle.state, 'delivered', 'no proof left Bob for a delivery his disk did not keep')
  assert.deepEqual(shown, [], 'nothing shown that was not stored')

  disk.full = false
  await handle.delivered(AbortSignal.timeout(15_000))
  await until(() => shown.length > 0, 5_000, 'the message shown')
  assert.deepEqual(shown, ['while the disk is full'])
  assert.equal(
    bob.store.listMessages(ada.identity.id).filter((m) => m.body.length > 0).length,
    2,
    'each message stored once',
  )
})
