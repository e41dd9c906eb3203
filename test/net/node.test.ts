import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { introduce, makeHome, startNode, until } from '../helpers/nodes.ts'

test('two nodes on loopback: bootstrap link, message delivered, state reaches delivered', async () => {
  const a = makeHome('Ada')
  const b = makeHome('Bob')
  after(() => {
    a.remove()
    b.remove()
  })
  introduce(a, b)
  const nb = await startNode(b.home)
  const na = await startNode(a.home, { bootstrap: nb.addresses() })
  try {
    await until(() => na.peers().some((p) => p.mesh) && nb.peers().some((p) => p.mesh), 10_000, 'mesh link')
    const received = (async () => {
      for await (const m of nb.messages()) return m
    })()
    const handle = na.send('Bob', 'hello over libp2p')
    const states: string[] = []
    handle.on('state', (s) => states.push(s))
    await handle.delivered(AbortSignal.timeout(10_000))
    const m = await received
    assert.equal(m?.text, 'hello over libp2p')
    assert.equal(m?.fromName, 'Ada')
    assert.equal(na.store.getMessage(handle.id)?.state, 'delivered')
    assert.ok(states.includes('delivered'), states.join(','))
  } finally {
    await na.stop()
    await nb.stop()
  }
})
