/**
 * An application's listeners run once what they announce is stored, outside the node's store
 * transactions: a listener that throws undoes nothing and silences no other listener, and a
 * listener may send.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import Database from 'better-sqlite3'
import { DATABASE_FILE } from '../../src/node/data-dir.ts'
import type { MessageStateEvent } from '../../src/node/node.ts'
import { startPair, until } from '../helpers/nodes.ts'

/** A message's state as another connection sees it: only what has committed. */
function committedState(home: string, id: string): string | undefined {
  const db = new Database(join(home, DATABASE_FILE), { readonly: true })
  try {
    const row = db.prepare('SELECT state FROM messages WHERE id = ?').get(id) as { state: string } | undefined
    return row?.state
  } finally {
    db.close()
  }
}

test('a state listener hears a state once it has committed; one that throws undoes nothing and the others still hear', async (t) => {
  const { ada, bob, homes } = await startPair(t)
  t.after(async () => {
    await ada.stop()
    await bob.stop()
  })
  const errors: Error[] = []
  ada.on('error', (e) => errors.push(e))
  ada.on('state', (e) => {
    if (e.state === 'delivered') throw new Error('a bug in the application')
  })
  const heard: Array<{ event: MessageStateEvent; committed: string | undefined }> = []
  ada.on('state', (event) => heard.push({ event, committed: committedState(homes.ada, event.id) }))

  const handle = ada.send('Bob', 'hello')
  await handle.delivered(AbortSignal.timeout(10_000))
  await until(() => heard.some((h) => h.event.state === 'delivered'), 5_000, 'the delivered event')

  // Each event came after its state was committed: another connection saw it already.
  for (const h of heard)
    assert.equal(h.committed, h.event.state, `state ${h.event.state} heard before it committed`)
  // The listener's exception came out as an error event, and undid nothing.
  assert.deepEqual(
    errors.map((e) => e.message),
    ['a bug in the application'],
  )
  assert.equal(ada.store.getMessage(handle.id)?.state, 'delivered')
  assert.equal(ada.status().outbox, 0)
  // The node goes on: the next message is delivered too.
  await ada.send('Bob', 'still here').delivered(AbortSignal.timeout(10_000))
})

test('a message listener that throws silences no other listener, and a listener may send', async (t) => {
  const { ada, bob } = await startPair(t)
  t.after(async () => {
    await ada.stop()
    await bob.stop()
  })
  const errors: Error[] = []
  bob.on('error', (e) => errors.push(e))
  bob.on('message', () => {
    throw new Error('a bug in the application')
  })
  const seen: string[] = []
  bob.on('message', (m) => seen.push(m.text))
  // Bob answers from a listener: the answer is stored before send returns, like any other.
  const answers: string[] = []
  bob.on('message', (m) => {
    const answer = bob.send(m.from, `re: ${m.text}`)
    assert.equal(bob.store.getMessage(answer.id)?.state, answer.state)
    answers.push(answer.id)
  })
  const got: string[] = []
  ada.on('message', (m) => got.push(m.text))

  await ada.send('Bob', 'one').delivered(AbortSignal.timeout(10_000))
  await ada.send('Bob', 'two').delivered(AbortSignal.timeout(10_000))
  await until(() => got.length === 2, 10_000, "Bob's answers")

  assert.deepEqual(seen, ['one', 'two'])
  assert.deepEqual(got.sort(), ['re: one', 're: two'])
  assert.equal(answers.length, 2)
  assert.deepEqual(
    errors.map((e) => e.message),
    ['a bug in the application', 'a bug in the application'],
  )
})

test('a link listener that throws is reported as an error and stops nothing, not even stop()', async (t) => {
  const { ada, bob } = await startPair(t)
  t.after(() => bob.stop())
  await until(() => ada.peers().some((p) => p.mesh), 10_000, 'the link')
  const errors: Error[] = []
  ada.on('error', (err) => errors.push(err))
  ada.on('link:down', () => {
    throw new Error('a bug in a link:down listener')
  })
  await ada.stop()
  assert.equal(ada.running, false)
  assert.equal(ada.links?.libp2p.status, 'stopped')
  assert.ok(errors.some((e) => e.message === 'a bug in a link:down listener'))
})
