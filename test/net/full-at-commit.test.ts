/**
 * A disk that fills up when a step of the node commits: nothing the step did may leave the node.
 * Its hop acknowledgements and delivery proofs would promise custody or delivery of what the disk
 * did not keep (the sender would drop it, or show it delivered); held back, they never go, the
 * sender sends again, and once there is room the message is delivered and shown once.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decodeContactCard } from '../../src/identity/contact-card.ts'
import { toContactLink } from '../../src/identity/contact-link.ts'
import type { DeliveryState, MessageRecord, Store } from '../../src/store/store.ts'
import { fullAtCommit } from '../helpers/full-disk.ts'
import {
  introduce,
  makeHome,
  pairWithBobsDisk,
  startNode,
  startNodeWithDisk,
  until,
} from '../helpers/nodes.ts'

/**
 * `store`, counting the calls of the write `method` that `pick` names a message ID for: the steps
 * that tried it, whether they committed or not.
 */
function counting(
  store: Store,
  method: 'addMessage' | 'setMessageState',
  pick: (...args: never[]) => string | undefined,
  calls: Map<string, number>,
): Store {
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop)
      if (typeof value !== 'function') return value
      if (prop !== method) return value.bind(target)
      return (...args: never[]) => {
        const id = pick(...args)
        if (id !== undefined) calls.set(id, (calls.get(id) ?? 0) + 1)
        return value.apply(target, args)
      }
    },
  })
}

test('a disk full at commit: nothing of the failed step is sent, and the message arrives once later', async (t) => {
  // The disk is full for the steps that store Ada's message, and only those: Bob's other steps
  // commit, and what they send follows on the same stream whatever the failed steps might have sent.
  let full = false
  let storing = false
  const disk = {
    get full() {
      const it = full && storing
      storing = false
      return it
    },
  }
  const text = 'while the disk is full'
  const tries = new Map<string, number>()
  const failures: Error[] = []
  const { ada, bob } = await pairWithBobsDisk(t, (store) =>
    fullAtCommit(
      counting(
        store,
        'addMessage',
        (m: MessageRecord) => {
          if (m.direction === 'in' && new TextDecoder().decode(m.body).includes(text)) storing = true
          return m.id
        },
        tries,
      ),
      disk,
    ),
  )
  bob.on('error', (err) => failures.push(err))
  const shown: string[] = []
  bob.on('message', (m) => shown.push(m.text))

  full = true
  const handle = ada.send('Bob', text)
  await until(() => (tries.get(handle.id) ?? 0) >= 1, 30_000, 'Bob to try to store the message')
  await until(() => failures.length > 0, 10_000, "Bob's step with the message to be undone")
  // A barrier: Bob writes to Ada after that step. His frames reach Ada in the order he sent them,
  // so once Ada has his message, she has whatever the undone step might have let out before it.
  let barrier = false
  ada.on('message', (m) => {
    if (m.text === 'sent after the undone step') barrier = true
  })
  bob.send('Ada', 'sent after the undone step')
  await until(() => barrier, 30_000, "Bob's later message at Ada")
  assert.notEqual(handle.state, 'delivered', 'no proof left Bob for a delivery his disk did not keep')
  assert.notEqual(ada.store.getMessage(handle.id)?.state, 'delivered')
  assert.deepEqual(shown, [], 'nothing shown that was not stored')
  assert.equal(bob.store.getMessage(handle.id), undefined, 'nothing stored')

  full = false
  await handle.delivered(AbortSignal.timeout(15_000))
  await until(() => shown.length > 0, 5_000, 'the message shown')
  assert.deepEqual(shown, [text])
  assert.equal(
    bob.store.listMessages(ada.identity.id).filter((m) => m.direction === 'in' && m.body.length > 0).length,
    2,
    'each message stored once',
  )
})

test('a first contact undone at commit leaves the card in memory as it is on disk', async (t) => {
  const disk = { full: false }
  const { ada, bob, failures } = await pairWithBobsDisk(t, (store) => fullAtCommit(store, disk), {
    firstMessage: false,
  })
  await until(() => bob.peers().some((p) => p.mesh) && ada.peers().some((p) => p.mesh), 10_000, 'the link')
  const stored = () => toContactLink(decodeContactCard(bob.store.getIdentity()!.card))
  const before = bob.link
  assert.equal(stored(), before)
  disk.full = true
  const handle = ada.send('Bob', 'first contact')
  await until(() => failures.length > 0, 10_000, "a step of Bob's that did not commit")
  // The step took a one-time prekey and re-signed the card; both were undone, in memory too.
  assert.equal(bob.link, before)
  assert.equal(stored(), before)
  disk.full = false
  await handle.delivered(AbortSignal.timeout(15_000))
  assert.notEqual(bob.link, before, 'a fresh card once the first contact is stored')
  assert.equal(bob.link, stored())
})

test('a link that came up while the disk was full carries messages once there is room', async (t) => {
  const disk = { full: true }
  const { ada, failures } = await pairWithBobsDisk(t, (store) => fullAtCommit(store, disk), {
    firstMessage: false,
  })
  // Bob's side of the link came up in a step that did not commit: his Hello never left.
  await until(() => failures.length > 0, 10_000, "a step of Bob's that did not commit")
  disk.full = false
  // Bob starts his links again once a step commits: Ada learns who he is, and the message goes.
  await ada.send('Bob', 'after the disk had room').delivered(AbortSignal.timeout(15_000))
})

test("the sender's disk full at commit when the proof comes: the send handle still settles once it comes again", async (t) => {
  const homes = { ada: makeHome('Ada'), bob: makeHome('Bob') }
  t.after(() => {
    for (const h of Object.values(homes)) h.remove()
  })
  introduce(homes.ada, homes.bob)
  const disk = { full: false }
  const bob = await startNode(homes.bob.home)
  t.after(() => bob.stop())
  const proofSteps = new Map<string, number>()
  const { node: ada, failures } = await startNodeWithDisk(t, homes.ada.home, (s) =>
    fullAtCommit(
      counting(
        s,
        'setMessageState',
        (id: string, state: DeliveryState) => (state === 'delivered' ? id : undefined),
        proofSteps,
      ),
      disk,
    ),
  )
  await ada.dial(bob.addresses()[0]!)
  await until(() => ada.peers().some((p) => p.mesh) && bob.peers().some((p) => p.mesh), 10_000, 'the link')
  await ada.send('Bob', 'first').delivered(AbortSignal.timeout(10_000))

  const handle = ada.send('Bob', 'second') // stored: the disk fills only now
  disk.full = true // every step of Ada's fails at commit, the one with the proof too
  // The step with Bob's proof tried to mark the message delivered, and did not commit.
  await until(() => (proofSteps.get(handle.id) ?? 0) >= 1, 30_000, "a step of Ada's with the proof")
  await until(() => failures.length > 0, 10_000, 'a step of Ada that did not commit')
  assert.notEqual(ada.store.getMessage(handle.id)?.state, 'delivered')
  disk.full = false
  await handle.delivered(AbortSignal.timeout(20_000))
  assert.equal(ada.store.getMessage(handle.id)?.state, 'delivered')
})
