/**
 * A contact link shown to two people hands both the same one-time prekey. The second first
 * message cannot be opened; its recipient asks the sender, in a session that works, to send it
 * again, and nothing is lost: also when the sender is a stranger, known only from the message's
 * introduction.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MAX_GAP, type RatchetState } from '../../src/e2e/ratchet.ts'
import { decodeSessionRecord, encodeSessionRecord } from '../../src/e2e/session-codec.ts'
import { SESSION_NAMESPACE } from '../../src/e2e/session-store.ts'
import { encodeContactCard } from '../../src/identity/contact-card.ts'
import { createIdentity, makeContactCard } from '../../src/identity/identity.ts'
import { decodeDirectMessage, encodeIdList, encodeReadReceipt } from '../../src/messaging/direct-message.ts'
import { addContact } from '../../src/node/contacts.ts'
import { openHome } from '../../src/node/data-dir.ts'
import { resentAs } from '../../src/node/direct-messages.ts'
import { conversation } from '../../src/node/inbox.ts'
import type { IncomingMessage } from '../../src/node/node.ts'
import { throwsCode } from '../helpers/errors.ts'
import { fillable, fullAtCommit } from '../helpers/full-disk.ts'
import {
  introduce,
  linkWithOneOneTimePrekey,
  makeHome,
  startNode,
  startNodeWithDisk,
  until,
} from '../helpers/nodes.ts'

/**
 * Ada, Bob and Cid, contacts of one another, Bob's link listing a single one-time prekey; their
 * homes removed when the test ends.
 */
function threeContacts(t: { after(fn: () => unknown): void }) {
  const homes = { ada: makeHome('Ada'), bob: makeHome('Bob'), cid: makeHome('Cid') }
  t.after(() => {
    for (const h of Object.values(homes)) h.remove()
  })
  const bobLink = { home: homes.bob.home, link: linkWithOneOneTimePrekey(homes.bob.home) }
  introduce({ home: homes.ada.home, link: homes.ada.link }, bobLink, {
    home: homes.cid.home,
    link: homes.cid.link,
  })
  return homes
}

test('two people write first with the same one-time prekey: the second message is sent again, not lost', async (t) => {
  const homes = threeContacts(t)
  const bob = await startNode(homes.bob.home)
  const ada = await startNode(homes.ada.home, { bootstrap: bob.addresses() })
  const cid = await startNode(homes.cid.home, { bootstrap: bob.addresses() })
  try {
    await until(() => bob.peers().filter((p) => p.mesh).length === 2, 10_000, 'both links')
    const got: IncomingMessage[] = []
    bob.on('message', (m) => got.push(m))
    // Ada takes the one-time prekey first.
    await ada.send('Bob', 'hello from Ada').delivered(AbortSignal.timeout(10_000))
    // Cid's first message names the same prekey: Bob cannot open it.
    const first = cid.send('Bob', 'hello from Cid')
    const states: string[] = []
    first.on('state', (s) => states.push(s))
    await until(() => got.some((m) => m.text === 'hello from Cid'), 20_000, "Cid's message, sent again")
    assert.deepEqual(
      got.map((m) => [m.fromName, m.text]),
      [
        ['Ada', 'hello from Ada'],
        ['Cid', 'hello from Cid'],
      ],
    )
    // At Cid, the first copy failed, saying which message replaced it; that one was delivered.
    await until(() => states.includes('failed'), 10_000, 'the first copy given up')
    const old = cid.store.getMessage(first.id)
    assert.equal(old?.state, 'failed')
    const again = resentAs(old?.stateReason)
    assert.ok(again, old?.stateReason)
    await until(() => cid.store.getMessage(again)?.state === 'delivered', 10_000, 'the new copy delivered')
    // Cid's conversation shows the message once: the new copy, not the one given up.
    assert.deepEqual(
      conversation(cid.store, 'Bob').map((m) => [m.id, m.text, m.state]),
      [[again, 'hello from Cid', 'delivered']],
    )
    // And the conversation goes on both ways.
    await bob.send('Cid', 'got it').delivered(AbortSignal.timeout(10_000))
    await cid.send('Bob', 'great').delivered(AbortSignal.timeout(10_000))
  } finally {
    await Promise.all([ada.stop(), cid.stop(), bob.stop()])
  }
})

/** Adds `link` to the contacts of `home` (one way: the link's owner does not learn of it). */
function addLink(home: string, link: string): void {
  const opened = openHome({ home })
  try {
    addContact(opened.store, opened.profile.accountKey, link, { now: Date.now() })
  } finally {
    opened.close()
  }
}

test('two strangers write first with the same one-time prekey: the second learns through its introduction and sends again', async (t) => {
  const homes = { ada: makeHome('Ada'), bob: makeHome('Bob'), cid: makeHome('Cid') }
  t.after(() => {
    for (const h of Object.values(homes)) h.remove()
  })
  // A link shown to two people Bob has never heard of.
  const bobLink = linkWithOneOneTimePrekey(homes.bob.home)
  addLink(homes.ada.home, bobLink)
  addLink(homes.cid.home, bobLink)
  const bob = await startNode(homes.bob.home)
  const ada = await startNode(homes.ada.home, { bootstrap: bob.addresses() })
  const cid = await startNode(homes.cid.home, { bootstrap: bob.addresses() })
  try {
    await until(() => bob.peers().filter((p) => p.mesh).length === 2, 10_000, 'both links')
    assert.deepEqual(bob.store.listContacts(), [])
    const got: IncomingMessage[] = []
    bob.on('message', (m) => got.push(m))
    await ada.send('Bob', 'hello from Ada').delivered(AbortSignal.timeout(10_000))
    // Cid's first message names the prekey Ada took: Bob cannot open it, but its introduction
    // (Cid's card, tagged with Cid's identity key) says who wrote, and Bob asks Cid to send again.
    const first = cid.send('Bob', 'hello from Cid')
    await until(() => got.some((m) => m.text === 'hello from Cid'), 20_000, "Cid's message, sent again")
    // People who wrote first: their names carry the start of their IDs (contacts.ts).
    const [adaName, cidName] = [`Ada (${ada.id.slice(0, 7)})`, `Cid (${cid.id.slice(0, 7)})`]
    assert.deepEqual(
      got.map((m) => [m.fromName, m.text]),
      [
        [adaName, 'hello from Ada'],
        [cidName, 'hello from Cid'],
      ],
    )
    assert.deepEqual(
      bob.store
        .listContacts()
        .map((c) => [c.name, c.verified])
        .sort(),
      [
        [adaName, false],
        [cidName, false],
      ],
    )
    await until(() => cid.store.getMessage(first.id)?.state === 'failed', 10_000, 'the first copy given up')
    const again = resentAs(cid.store.getMessage(first.id)?.stateReason)
    assert.ok(again)
    await until(() => cid.store.getMessage(again)?.state === 'delivered', 10_000, 'the new copy delivered')
    assert.deepEqual(
      conversation(cid.store, 'Bob').map((m) => [m.text, m.state]),
      [['hello from Cid', 'delivered']],
    )
    await bob.send(cidName, 'got it').delivered(AbortSignal.timeout(10_000))
  } finally {
    await Promise.all([ada.stop(), cid.stop(), bob.stop()])
  }
})

test('a resend request is told apart from a receipt, and bounded', () => {
  const ada = createIdentity({ now: 1_000, deviceName: 'ada' })
  const card = encodeContactCard(makeContactCard(ada, { name: 'Ada', now: 1_000 }))
  const id = '00112233445566778899aabbccddeeff'
  const request = decodeDirectMessage(encodeIdList('resend', card, [id], 1))
  assert.deepEqual(request.resendIds, [id])
  assert.equal(request.readIds, undefined)
  assert.equal(decodeDirectMessage(encodeReadReceipt(card, [id], 1)).resendIds, undefined)
  throwsCode(() => encodeIdList('resend', card, Array(65).fill(id), 1), 'invalid_argument')
})

test('a resend request undone with its step (a disk full at commit) is asked again when the message comes again', async (t) => {
  const homes = threeContacts(t)
  const disk = { full: false }
  const { node: bob, failures } = await startNodeWithDisk(t, homes.bob.home, (store) =>
    fullAtCommit(store, disk),
  )
  const ada = await startNode(homes.ada.home, { bootstrap: bob.addresses(), mesh: { hopAckTimeoutMs: 500 } })
  const cid = await startNode(homes.cid.home, { bootstrap: bob.addresses(), mesh: { hopAckTimeoutMs: 500 } })
  t.after(() => Promise.all([ada.stop(), cid.stop()]))
  await until(() => bob.peers().filter((p) => p.mesh).length === 2, 10_000, 'both links')
  const got: string[] = []
  bob.on('message', (m) => got.push(m.text))
  await ada.send('Bob', 'hello from Ada').delivered(AbortSignal.timeout(10_000))
  // Cid's first message names the prekey Ada took, and arrives while Bob's disk is full: the
  // step that would ask Cid to send it again is undone.
  disk.full = true
  cid.send('Bob', 'hello from Cid')
  await until(() => failures.length > 0, 10_000, "a step of Bob's that did not commit")
  disk.full = false
  // The message comes again, still cannot be opened, and this time the request goes out.
  await until(() => got.includes('hello from Cid'), 20_000, "Cid's message, sent again")
  assert.deepEqual(got, ['hello from Ada', 'hello from Cid'])
})

test('sending again is one step: when giving up the old copy fails, no second copy is left live', async (t) => {
  const homes = threeContacts(t)
  const bob = await startNode(homes.bob.home)
  const ada = await startNode(homes.ada.home, { bootstrap: bob.addresses() })
  // Cid's disk refuses the one write that gives up a message (its outbox entry removed).
  const disk = { full: true }
  const { node: cid, failures } = await startNodeWithDisk(t, homes.cid.home, (store) =>
    fillable(store, disk, ['removeOutbox']),
  )
  await cid.dial(bob.addresses()[0]!)
  t.after(() => Promise.all([ada.stop(), bob.stop()]))
  await until(() => bob.peers().filter((p) => p.mesh).length === 2, 10_000, 'both links')
  await ada.send('Bob', 'hello from Ada').delivered(AbortSignal.timeout(10_000))
  // Cid's first message names the prekey Ada took: Bob asks Cid to send it again, and Cid's
  // attempt fails where the old copy is given up.
  const first = cid.send('Bob', 'hello from Cid')
  const bobId = cid.store.listContacts().find((c) => c.name === 'Bob')!.id
  const live = () =>
    cid.store.listMessages(bobId).filter((m) => m.direction === 'out' && m.state !== 'failed')
  await until(() => failures.length > 0 || live().length > 1, 15_000, "Cid's attempt to send again")
  assert.deepEqual(
    live().map((m) => m.id),
    [first.id],
    'the old copy only: the new one went with the failed step',
  )
})

/** Rewrites the active session of the only device Ada has one with (her node stopped). */
function editAdaSession(home: string, edit: (ratchet: RatchetState) => RatchetState): void {
  const opened = openHome({ home })
  try {
    const [[device, record]] = opened.store.kvList(SESSION_NAMESPACE) as [[string, Uint8Array]]
    const [session, ...rest] = decodeSessionRecord(record)
    const ratchet = edit(session!.ratchet)
    opened.store.kvSet(SESSION_NAMESPACE, device, encodeSessionRecord([{ ...session!, ratchet }, ...rest]))
  } finally {
    opened.close()
  }
}

test('a chain that fell too far behind: the recipient asks once, the sender starts a new chain, and the message arrives', async (t) => {
  const homes = { ada: makeHome('Ada'), bob: makeHome('Bob') }
  t.after(() => {
    homes.ada.remove()
    homes.bob.remove()
  })
  introduce(homes.ada, homes.bob)
  const bob = await startNode(homes.bob.home)
  t.after(() => bob.stop())
  let ada = await startNode(homes.ada.home, { bootstrap: bob.addresses() })
  await ada.send('Bob', 'one').delivered(AbortSignal.timeout(10_000))
  await ada.stop()
  // More than MAX_GAP of Ada's messages to Bob were lost on the way (they expired, say): her
  // sending chain is that far ahead of his receiving one.
  editAdaSession(homes.ada.home, (ratchet) => ({ ...ratchet, ns: ratchet.ns + MAX_GAP + 1 }))
  ada = await startNode(homes.ada.home, { bootstrap: bob.addresses() })
  t.after(() => ada.stop())
  const got: string[] = []
  bob.on('message', (m: IncomingMessage) => got.push(m.text))
  const far = ada.send('Bob', 'after the gap')
  await until(() => got.includes('after the gap'), 20_000, 'the message sent again')
  await until(
    () => resentAs(ada.store.getMessage(far.id)?.stateReason) !== undefined,
    10_000,
    'the old copy given up',
  )
  // The conversation goes on.
  await ada.send('Bob', 'and on').delivered(AbortSignal.timeout(10_000))
  assert.deepEqual(got, ['after the gap', 'and on'])
})

test("a gap at the start of the sender's next chain: the recipient takes the step its header asks for, asks once, and the message arrives", async (t) => {
  const homes = { ada: makeHome('Ada'), bob: makeHome('Bob') }
  t.after(() => {
    homes.ada.remove()
    homes.bob.remove()
  })
  introduce(homes.ada, homes.bob)
  const bob = await startNode(homes.bob.home)
  t.after(() => bob.stop())
  let ada = await startNode(homes.ada.home, { bootstrap: bob.addresses() })
  await ada.send('Bob', 'one').delivered(AbortSignal.timeout(10_000))
  // Bob answers: Ada takes a DH step, and her next message opens a new chain, which Bob knows
  // only by its next header key.
  const answered = new Promise<void>((resolve) => ada.once('message', () => resolve()))
  await bob.send('Ada', 'hi').delivered(AbortSignal.timeout(10_000))
  await answered
  await ada.stop()
  // More than MAX_GAP of Ada's messages in that new chain were lost before any reached Bob.
  editAdaSession(homes.ada.home, (ratchet) => {
    assert.equal(ratchet.ns, 0, 'Ada has not written in her new chain yet')
    return { ...ratchet, ns: MAX_GAP + 1 }
  })
  ada = await startNode(homes.ada.home, { bootstrap: bob.addresses() })
  t.after(() => ada.stop())
  const got: string[] = []
  bob.on('message', (m: IncomingMessage) => got.push(m.text))
  ada.send('Bob', 'after the gap')
  await until(() => got.includes('after the gap'), 20_000, 'the message sent again')
  await ada.send('Bob', 'and on').delivered(AbortSignal.timeout(10_000))
  assert.deepEqual(got, ['after the gap', 'and on'])
})
