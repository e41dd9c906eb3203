/**
 * The embedding API as an app uses it (src/node/node.ts, send-handle.ts): every state a handle
 * goes through reaches a listener added after `send` returns, `read` included; `messages()`
 * answers every `next()`; and after `stop()` nothing waits for ever, and calls fail with `closed`.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { DeliveryState } from '../../src/store/store.ts'
import { rejectsCode, throwsCode } from '../helpers/errors.ts'
import { introduce, makeHome, startNode, startPair, until } from '../helpers/nodes.ts'

test('a listener added right after send hears every state, read after delivered too', async (t) => {
  const { ada, bob } = await startPair(t)
  t.after(async () => {
    await ada.stop()
    await bob.stop()
  })
  await until(() => ada.peers().some((p) => p.mesh) && bob.peers().some((p) => p.mesh), 10_000, 'mesh link')
  const handle = ada.send('Bob', 'hello')
  const states: DeliveryState[] = []
  handle.on('state', (s) => states.push(s))
  await handle.delivered(AbortSignal.timeout(10_000))
  await until(() => bob.store.getMessage(handle.id) !== undefined, 10_000, 'the message at Bob')
  bob.markRead('Ada')
  await until(() => states.at(-1) === 'read', 10_000, 'read')
  assert.deepEqual(states, ['queued', 'sent', 'delivered', 'read'])
})

test("a handle listener that throws is reported as the node's error, and the others still hear", async (t) => {
  const { ada, bob } = await startPair(t)
  t.after(async () => {
    await ada.stop()
    await bob.stop()
  })
  const errors: string[] = []
  ada.on('error', (e) => errors.push(e.message))
  const handle = ada.send('Bob', 'hello')
  handle.on('state', () => {
    throw new Error('a bug in the application')
  })
  const states: DeliveryState[] = []
  handle.on('state', (s) => states.push(s))
  await handle.delivered(AbortSignal.timeout(10_000))
  await until(() => states.includes('delivered'), 10_000, 'delivered')
  assert.equal(states[0], 'queued')
  assert.equal(errors.length, states.length)
})

test('messages(): next() asked twice at once is answered twice, in order; stop() ends a waiting one', {
  timeout: 30_000,
}, async (t) => {
  const { ada, bob } = await startPair(t)
  t.after(async () => {
    await ada.stop()
    await bob.stop()
  })
  const it = bob.messages()
  const first = it.next()
  const second = it.next()
  ada.send('Bob', 'one')
  ada.send('Bob', 'two')
  assert.equal((await first).value?.text, 'one')
  assert.equal((await second).value?.text, 'two')
  const third = it.next()
  await bob.stop()
  assert.deepEqual(await third, { done: true, value: undefined })
})

test('after stop(): a handle no longer waits, and dial and send fail with closed', {
  timeout: 30_000,
}, async (t) => {
  const a = makeHome('Ada')
  const b = makeHome('Bob')
  t.after(() => {
    a.remove()
    b.remove()
  })
  introduce(a, b)
  const ada = await startNode(a.home)
  const handle = ada.send('Bob', 'while Bob is away')
  const waiting = handle.delivered()
  await ada.stop()
  await rejectsCode(() => waiting, 'closed')
  await rejectsCode(() => handle.delivered(), 'closed')
  await rejectsCode(() => ada.dial('/ip4/127.0.0.1/tcp/9'), 'closed')
  throwsCode(() => ada.send('Bob', 'again'), 'closed')
})

test('a room post holding control characters is refused', async (t) => {
  const a = makeHome('Ada')
  t.after(() => a.remove())
  const ada = await startNode(a.home)
  t.after(() => ada.stop())
  ada.rooms.create('club')
  throwsCode(() => ada.rooms.post('club', 'clear \u001b[2J'), 'invalid_argument')
  throwsCode(() => ada.rooms.post('club', 'csi \u009b2J'), 'invalid_argument')
  ada.rooms.post('club', 'two\nlines')
  assert.deepEqual(
    ada.rooms
      .history('club')
      .filter((h) => h.kind === 'post')
      .map((h) => h.text),
    ['two\nlines'],
  )
})
