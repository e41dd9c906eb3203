import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { isTalkenError } from '../../src/errors.ts'
import { CardExtension, cardExtension, decodeContactCard } from '../../src/identity/contact-card.ts'
import { parseContactLink } from '../../src/identity/contact-link.ts'
import { parseTextId } from '../../src/identity/text-id.ts'
import { createNode } from '../../src/node/node.ts'
import { introduce, makeHome, startNode, startPair, until } from '../helpers/nodes.ts'

/**
 * Asserts that an outbox envelope (what crosses the link, and what relays hold) exists and holds
 * neither `text` nor the sender's account: its text ID, raw key, or the key in hex or base64.
 */
function assertSealed(envelope: Uint8Array | undefined, text: string, senderId: string): void {
  assert.ok(envelope !== undefined && envelope.length > 0, 'the message waits in the outbox')
  const bytes = Buffer.from(envelope)
  const account = Buffer.from(parseTextId(senderId))
  const secrets: Array<[string, Buffer]> = [
    ['the text', Buffer.from(text, 'utf8')],
    ["the sender's text ID", Buffer.from(senderId, 'utf8')],
    ["the sender's account key", account],
    ["the sender's account key in hex", Buffer.from(account.toString('hex'), 'utf8')],
    ["the sender's account key in base64", Buffer.from(account.toString('base64').slice(0, 40), 'utf8')],
  ]
  for (const [what, secret] of secrets) assert.equal(bytes.indexOf(secret), -1, `${what} is in the envelope`)
}

test('two nodes on loopback: bootstrap link, message delivered, state reaches delivered', async (t) => {
  const { ada: na, bob: nb } = await startPair(t)
  try {
    await until(() => na.peers().some((p) => p.mesh) && nb.peers().some((p) => p.mesh), 10_000, 'mesh link')
    const received = (async () => {
      for await (const m of nb.messages()) return m
    })()
    const handle = na.send('Bob', 'hello over libp2p')
    assertSealed(na.store.getOutbox(handle.id)?.envelope, 'hello over libp2p', na.id)
    const firstEnvelope = na.store.getOutbox(handle.id)?.envelope.length ?? 0
    const states: string[] = []
    handle.on('state', (s) => states.push(s))
    await handle.delivered(AbortSignal.timeout(10_000))
    const m = await received
    assert.equal(m?.text, 'hello over libp2p')
    assert.equal(m?.fromName, 'Ada')
    assert.equal(na.store.getMessage(handle.id)?.state, 'delivered')
    assert.ok(states.includes('delivered'), states.join(','))
    // Bob has Ada's card now, and the first message's delivery proof showed that he holds the
    // session: the next message leaves the card out and is a plain ratchet message, sealed into the
    // smallest bucket (256 bytes) with no prekey header and no fresh X25519 key.
    const second = na.send('Bob', 'hello again')
    assertSealed(na.store.getOutbox(second.id)?.envelope, 'hello again', na.id)
    const secondEnvelope = na.store.getOutbox(second.id)?.envelope.length ?? 0
    await second.delivered(AbortSignal.timeout(10_000))
    const third = na.send('Bob', 'hello over libp2p')
    assert.ok(
      secondEnvelope > 256 && secondEnvelope < 400 && firstEnvelope > 4096,
      `envelopes: first ${firstEnvelope} bytes (with the card), second ${secondEnvelope}`,
    )
    await third.delivered(AbortSignal.timeout(10_000))
  } finally {
    await na.stop()
    await nb.stop()
  }
})

test('a contact link carries the addresses of a node that ran: a new contact dials it with no bootstrap and no mDNS', async () => {
  const a = makeHome('Ada')
  const b = makeHome('Bob')
  after(() => {
    a.remove()
    b.remove()
  })
  const nb = await startNode(b.home)
  let na: Awaited<ReturnType<typeof startNode>> | undefined
  try {
    assert.ok(nb.addresses().length > 0)
    const link = nb.link
    const card = parseContactLink(link)
    assert.deepEqual([...card.addresses], nb.addresses())
    introduce(a, { home: b.home, link })
    na = await startNode(a.home)
    const bPeer = nb.peerId
    await until(
      () => na!.peers().some((p) => p.peerId === bPeer && p.mesh),
      10_000,
      'A dials B from its card',
    )
  } finally {
    await na?.stop()
    await nb.stop()
  }
})

test('first contact while the recipient is offline, then a ratcheted conversation both ways', async () => {
  const a = makeHome('Ada')
  const b = makeHome('Bob')
  after(() => {
    a.remove()
    b.remove()
  })
  introduce(a, b)
  const na = await startNode(a.home)
  let nb: Awaited<ReturnType<typeof startNode>> | undefined
  try {
    // Bob has never run: Ada seals from the prekeys in his link, and the message waits.
    const bobCardBefore = na.store.listContacts().find((c) => c.name === 'Bob')!.card
    const first = na.send('Bob', 'are you there?')
    assert.equal(first.state, 'queued')
    // What waits in the outbox, and will cross the link, is sealed: neither the text nor Ada's
    // account appear in it.
    assertSealed(na.store.getOutbox(first.id)?.envelope, 'are you there?', na.id)
    nb = await startNode(b.home, { bootstrap: na.addresses() })
    const bob = nb
    const inbox = bob.messages()
    assert.equal((await inbox.next()).value?.text, 'are you there?')
    await first.delivered(AbortSignal.timeout(10_000))
    const replies = na.messages()
    const reply = bob.send('Ada', 'yes, here')
    assertSealed(bob.store.getOutbox(reply.id)?.envelope, 'yes, here', bob.id)
    await reply.delivered(AbortSignal.timeout(10_000))
    assert.equal((await replies.next()).value?.text, 'yes, here')
    // Bob used a one-time prekey, listed fresh ones, and his reply carried the re-signed card.
    const prekeysOf = (card: Uint8Array) => cardExtension(decodeContactCard(card), CardExtension.prekeys)
    const bobCardAfter = na.store.listContacts().find((c) => c.name === 'Bob')!.card
    assert.notDeepEqual(prekeysOf(bobCardAfter), prekeysOf(bobCardBefore))
    const good = na.send('Bob', 'good (a ratchet message)')
    assertSealed(na.store.getOutbox(good.id)?.envelope, 'good (a ratchet message)', na.id)
    await good.delivered(AbortSignal.timeout(10_000))
    assert.equal((await inbox.next()).value?.text, 'good (a ratchet message)')
    await inbox.return?.(undefined)
    await replies.return?.(undefined)
  } finally {
    await nb?.stop()
    await na.stop()
  }
})

test('a backlog of large messages written offline goes out in bursts of whole frames, and every one arrives', async (t) => {
  const homes = { ada: makeHome('Ada'), bob: makeHome('Bob') }
  t.after(() => {
    for (const h of Object.values(homes)) h.remove()
  })
  introduce(homes.ada, homes.bob)
  // Ada writes while offline: 40 messages of 16 kB wait in her outbox, and leave together.
  const offline = await createNode({ home: homes.ada.home, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false })
  const ids = Array.from({ length: 40 }, (_, i) => offline.send('Bob', `${i} `.padEnd(16_000, 'x')).id)
  await offline.stop()
  const bob = await startNode(homes.bob.home)
  t.after(() => bob.stop())
  const ada = await startNode(homes.ada.home, { bootstrap: bob.addresses() })
  t.after(() => ada.stop())
  await until(
    () => ids.every((id) => bob.store.getMessage(id) !== undefined),
    30_000,
    'the 40 messages at Bob',
  )
  assert.equal(bob.status().links.badStreams, 0, 'no honest stream was taken for a broken one')
})

test('stop() while start() is under way: start fails with closed, and nothing it started is left running', async (t) => {
  const home = makeHome('Ada')
  t.after(() => home.remove())
  const node = await createNode({ home: home.home, mdns: false, listen: ['/ip4/127.0.0.1/tcp/0'] })
  const started = node.start()
  await node.stop()
  await assert.rejects(started, (err) => isTalkenError(err, 'closed'))
  assert.equal(node.running, false)
  assert.equal(node.links?.libp2p.status, 'stopped')
  assert.deepEqual(node.links?.addresses(), [])
})
