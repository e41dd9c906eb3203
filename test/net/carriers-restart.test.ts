/**
 * A first message (a prekey message carrying our card) whose sender restarts before it is
 * delivered: once it is, the session is confirmed and the card noted as delivered, as without the
 * restart, so later messages are plain ratchet messages (src/node/carriers.ts).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { openSessionStore } from '../../src/e2e/session-store.ts'
import { loadIdentity, openHome } from '../../src/node/data-dir.ts'
import { introduce, makeHome, startNode, until } from '../helpers/nodes.ts'

/** Whether Ada's session with Bob still sends prekey messages, and whether her card is noted as Bob's. */
function afterwards(home: string): { pending: boolean; cardNoted: boolean } {
  const opened = openHome({ home })
  try {
    const e2e = openSessionStore({
      store: opened.store,
      device: loadIdentity({ home }).device,
      now: () => Date.now(),
    })
    const [peer] = e2e.peers()
    assert.ok(peer !== undefined)
    return {
      pending: e2e.pendingBaseKey(Buffer.from(peer, 'hex')) !== undefined,
      cardNoted: opened.store.kvList('card-delivered').length === 1,
    }
  } finally {
    opened.close()
  }
}

test('a restart between sending a first message and its delivery forgets neither the session nor the card', async (t) => {
  const homes = { ada: makeHome('Ada'), bob: makeHome('Bob') }
  t.after(() => {
    homes.ada.remove()
    homes.bob.remove()
  })
  introduce(homes.ada, homes.bob)
  let ada = await startNode(homes.ada.home)
  const first = ada.send('Bob', 'first').id
  await ada.stop()
  const bob = await startNode(homes.bob.home)
  t.after(() => bob.stop())
  ada = await startNode(homes.ada.home, { bootstrap: bob.addresses() })
  await until(() => ada.store.getMessage(first)?.state === 'delivered', 20_000, 'the first message delivered')
  await ada.stop()
  assert.deepEqual(afterwards(homes.ada.home), { pending: false, cardNoted: true })
})
