/**
 * A contact re-installs: their database is lost, their key file kept (`initHome` gives a key file
 * without a profile its profile back). Their device no longer holds the session we write in, and
 * refuses what we sealed in it without a word. Once it writes to us, in a new session, everything
 * of ours still on its way goes to it again in that session, in the order it was written, and
 * arrives once. Two devices that write first to each other at once are not taken for that.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { openSessionStore } from '../../src/e2e/session-store.ts'
import { decodePrekeyBundle } from '../../src/e2e/x3dh.ts'
import { decodeContactCard, encodeContactCard, signContactCard } from '../../src/identity/contact-card.ts'
import { issueDeviceCert } from '../../src/identity/device-cert.ts'
import { createIdentity, makeContactCard } from '../../src/identity/identity.ts'
import { decodeDirectMessage, encodeDirectMessage } from '../../src/messaging/direct-message.ts'
import { CardBook } from '../../src/node/card-book.ts'
import { acceptContactCard, addContact } from '../../src/node/contacts.ts'
import { DATABASE_FILE, initHome } from '../../src/node/data-dir.ts'
import { DirectMessages, resentAs } from '../../src/node/direct-messages.ts'
import { conversation } from '../../src/node/inbox.ts'
import type { IncomingMessage } from '../../src/node/node.ts'
import { Steps } from '../../src/node/steps.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'
import { introduce, makeHome, startNode, until } from '../helpers/nodes.ts'

test('a contact who re-installed gets what we sent meanwhile once they write, once each and in order', async (t) => {
  const a = makeHome('Ada')
  const b = makeHome('Bob')
  t.after(() => {
    a.remove()
    b.remove()
  })
  introduce(a, b)
  let bob = await startNode(b.home)
  const ada = await startNode(a.home, { bootstrap: bob.addresses() })
  t.after(() => ada.stop())
  await until(() => ada.peers().some((p) => p.mesh), 10_000, 'the link')
  await ada.send('Bob', 'hello').delivered(AbortSignal.timeout(10_000))
  const answered = new Promise<void>((resolve) => ada.once('message', () => resolve()))
  await bob.send('Ada', 'hi').delivered(AbortSignal.timeout(10_000))
  await answered
  const port = bob.addresses()[0]!.split('/')[4]!
  await bob.stop()

  // Bob's database is lost; his key file is not. He gets his profile back and adds Ada again.
  for (const suffix of ['', '-wal', '-shm']) rmSync(join(b.home, DATABASE_FILE + suffix), { force: true })
  const again = initHome({ home: b.home, name: 'Bob' })
  try {
    addContact(again.store, again.profile.accountKey, a.link, { now: Date.now() })
  } finally {
    again.close()
  }
  bob = await startNode(b.home, { listen: [`/ip4/127.0.0.1/tcp/${port}`] })
  t.after(() => bob.stop())
  const got: IncomingMessage[] = []
  bob.on('message', (m) => got.push(m))
  await ada.dial(bob.addresses()[0]!).catch(() => {})
  await until(
    () => ada.peers().some((p) => p.mesh) && bob.peers().some((p) => p.mesh),
    15_000,
    'the link again',
  )

  // Ada writes in the session Bob no longer holds: he refuses both, and they stay on their way.
  const m1 = ada.send('Bob', 'did you get my photos?')
  await new Promise((resolve) => setTimeout(resolve, 5))
  const m1b = ada.send('Bob', 'and the video?')
  const writtenAt = [m1, m1b].map((h) => ada.store.getMessage(h.id)!.createdAt)
  await until(() => bob.status().rejected >= 2, 10_000, 'Bob refusing the messages')
  assert.deepEqual(
    [m1, m1b].map((h) => ada.store.getMessage(h.id)?.state),
    ['sent', 'sent'],
  )
  assert.equal(got.length, 0)

  // Bob writes: a first contact in a new session, from the device Ada had a session with.
  const heard = new Promise<void>((resolve) => ada.once('message', () => resolve()))
  await bob.send('Ada', 'I re-installed, sorry').delivered(AbortSignal.timeout(10_000))
  await heard
  const m2 = ada.send('Bob', 'no worries')
  await m2.delivered(AbortSignal.timeout(10_000))
  await until(() => got.some((m) => m.text === 'no worries'), 10_000, 'the message after')

  // At Ada, the old copies were given up, each saying which message replaced it; those were delivered.
  const replacements: string[] = []
  for (const h of [m1, m1b]) {
    await until(() => ada.store.getMessage(h.id)?.state === 'failed', 10_000, 'the old copy given up')
    const old = ada.store.getMessage(h.id)
    const replacement = resentAs(old?.stateReason)
    assert.ok(replacement, old?.stateReason)
    assert.match(old?.stateReason ?? '', /^Bob lost the session it was sealed in/)
    await until(
      () => ada.store.getMessage(replacement)?.state === 'delivered',
      10_000,
      'the new copy delivered',
    )
    replacements.push(replacement)
  }
  assert.deepEqual(
    conversation(ada.store, 'Bob')
      .filter((m) => m.direction === 'out')
      .map((m) => [m.text, m.state]),
    [
      ['hello', 'delivered'],
      ['did you get my photos?', 'delivered'],
      ['and the video?', 'delivered'],
      ['no worries', 'delivered'],
    ],
  )
  assert.equal(ada.status().outbox, 0, 'nothing left on its way')

  // Bob got each once (an old copy, whenever it comes, opens in no session of his), in the order
  // Ada wrote them, before the message she wrote after, each saying when she wrote it.
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.deepEqual(
    got.map((m) => [m.id, m.text]),
    [
      [replacements[0], 'did you get my photos?'],
      [replacements[1], 'and the video?'],
      [m2.id, 'no worries'],
    ],
  )
  assert.deepEqual(
    got.slice(0, 2).map((m) => m.sentAt),
    writtenAt,
  )
  // And the conversation goes on both ways.
  await bob.send('Ada', 'got them').delivered(AbortSignal.timeout(10_000))
  await ada.send('Bob', 'great').delivered(AbortSignal.timeout(10_000))
})

const NOW = 1_750_000_000_000

/** A device with its own store and sessions, and its card listing its prekeys. */
function device(name: string) {
  const identity = createIdentity({ now: NOW, deviceName: name })
  const store = createMemoryStore()
  const e2e = openSessionStore({ store, device: identity.device, now: () => NOW })
  const card = encodeContactCard(
    makeContactCard(identity, { name, extensions: [e2e.cardExtension()], now: NOW }),
  )
  return { identity, store, e2e, card }
}

/** The text of a direct message from `sender`, opened (whose card need not ride along). */
function textOf(opened: { content: Uint8Array }, sender: { card: Uint8Array }): string {
  return decodeDirectMessage(opened.content, (card) =>
    decodeContactCard(card.length > 0 ? card : sender.card),
  ).text
}

/**
 * Ada's direct messages, as her node wires them to a core that only records: what she seals
 * (`sent`, by message ID), and her steps run at once, their announcements after.
 */
function adaSide(ada: ReturnType<typeof device>) {
  const sent = new Map<string, Uint8Array>()
  // Steps as the node runs them (src/node/steps.ts): one that is undone throws, failing the test.
  const steps = new Steps(ada.store, () => {})
  const step = (fn: () => void): boolean => {
    steps.act(fn)
    return true
  }
  const dm: DirectMessages = new DirectMessages({
    store: ada.store,
    identity: ada.identity,
    e2e: ada.e2e,
    cardBook: new CardBook(ada.store),
    core: {
      send: (_destination, payload, options) => {
        const id = randomBytes(16).toString('hex')
        ada.store.addMessage({
          id,
          conversation: options?.filing?.conversation ?? '?',
          direction: 'out',
          body: options?.filing?.body ?? payload,
          createdAt: Date.now(),
          state: 'queued',
          updatedAt: Date.now(),
        })
        ada.store.putOutbox({
          messageId: id,
          envelope: payload,
          attempts: 0,
          nextAttemptAt: 0,
          expiresAt: 1e15,
        })
        sent.set(id, payload)
        return id
      },
      abandon: (id, reason) => {
        ada.store.setMessageState(id, 'failed', Date.now(), reason)
        ada.store.removeOutbox(id)
        dm.stateChanged({ id, state: 'failed', reason })
        return true
      },
      settle: () => false,
      ackTagFor: () => new Uint8Array(16),
    },
    log: () => {},
    ttlMs: undefined,
    card: () => ada.card,
    refreshCard: () => {},
    afterStep: (fn) => steps.after(fn),
    step,
    act: (fn) => steps.act(fn),
    stopped: () => false,
    message: () => {},
    state: () => {},
  })
  /** Ada's node receives `payload` (a step of its own, as the core's). */
  const deliver = (payload: Uint8Array) => {
    let refused: string | undefined
    step(() => {
      refused = dm.deliver({ id: randomBytes(16).toString('hex'), payload }).refused
    })
    assert.equal(refused, undefined)
  }
  /** The core's word that a message of Ada's was delivered (its proof came back). */
  const delivered = (id: string) => {
    step(() => {
      ada.store.setMessageState(id, 'delivered', Date.now())
      ada.store.removeOutbox(id)
      dm.stateChanged({ id, state: 'delivered' })
    })
  }
  return { dm, sent, deliver, delivered }
}

test('two devices that write first to each other at once are not taken for a re-install, whatever order their messages come in; a re-install later is', () => {
  const ada = device('Ada')
  const bob = device('Bob')
  acceptContactCard(ada.store, ada.identity.account.publicKey, decodeContactCard(bob.card), { now: NOW })
  acceptContactCard(bob.store, bob.identity.account.publicKey, decodeContactCard(ada.card), { now: NOW })
  const { dm, sent, deliver, delivered } = adaSide(ada)
  const adaDevice = ada.identity.device.publicKey
  const bobDevice = bob.identity.device.publicKey

  // Ada writes first (a prekey body), and Bob, at the same time, writes first too (sealed earlier).
  const adaFirst = dm.send('Bob', 'hi Bob')
  const bobFirst = bob.e2e.seal(
    { deviceKey: adaDevice, bundle: decodePrekeyBundle(ada.e2e.cardExtension()[1]) },
    encodeDirectMessage(new Uint8Array(0), 'hi Ada', NOW),
    { sentAt: NOW, deliverySecret: randomBytes(16), introduction: bob.card },
  )
  // Bob opens Ada's: that session becomes his active one, and he answers in it, later.
  bob.e2e.open(sent.get(adaFirst.id)!)
  delivered(adaFirst.id)
  assert.equal(ada.e2e.pendingBaseKey(bobDevice), undefined, 'confirmed')
  const bobAnswer = bob.e2e.seal(
    { deviceKey: adaDevice },
    encodeDirectMessage(new Uint8Array(0), 'so', NOW + 5),
    {
      sentAt: NOW + 5,
      deliverySecret: randomBytes(16),
    },
  )
  // Ada has a message on its way in the session Bob holds.
  const pending = dm.send('Bob', 'still there?')

  // Bob's answer comes first, then his first contact (the mesh reordered them).
  deliver(bobAnswer)
  deliver(bobFirst)
  assert.equal(ada.store.getMessage(pending.id)?.state, 'queued', 'not given up')
  assert.deepEqual([...sent.keys()], [adaFirst.id, pending.id], 'nothing sent again')
  // Bob opens it: it was never lost (and its delivery comes back).
  assert.equal(textOf(bob.e2e.open(sent.get(pending.id)!), ada), 'still there?')
  delivered(pending.id)

  // Later Bob's device loses its store (its key kept), while a message of Ada's is on its way,
  // and writes first again: that one is sent again in his new session, the old copy given up.
  const lost = dm.send('Bob', 'are you coming?')
  const reinstalled = openSessionStore({
    store: createMemoryStore(),
    device: bob.identity.device,
    now: () => NOW,
  })
  deliver(
    reinstalled.seal(
      { deviceKey: adaDevice, bundle: decodePrekeyBundle(ada.e2e.cardExtension()[1]) },
      encodeDirectMessage(new Uint8Array(0), 'I lost everything', NOW + 100),
      { sentAt: NOW + 100, deliverySecret: randomBytes(16), introduction: bob.card },
    ),
  )
  const [again, ...more] = [...sent.keys()].slice(3)
  assert.ok(again !== undefined && more.length === 0, 'one message sent again')
  assert.equal(resentAs(ada.store.getMessage(lost.id)?.stateReason), again)
  assert.equal(ada.store.getMessage(pending.id)?.state, 'delivered', 'a delivered one is not')
  assert.throws(() => reinstalled.open(sent.get(lost.id)!), 'the old copy opens nowhere')
  assert.equal(textOf(reinstalled.open(sent.get(again)!), ada), 'are you coming?')
})

test("a contact's new device writes first: nothing is sent again", () => {
  const ada = device('Ada')
  const bob = device('Bob')
  acceptContactCard(ada.store, ada.identity.account.publicKey, decodeContactCard(bob.card), { now: NOW })
  const { dm, sent, deliver, delivered } = adaSide(ada)
  const adaDevice = ada.identity.device.publicKey
  const bobDevice = bob.identity.device.publicKey
  const hello = dm.send('Bob', 'hello')
  bob.e2e.open(sent.get(hello.id)!)
  delivered(hello.id)
  assert.equal(ada.e2e.pendingBaseKey(bobDevice), undefined, 'confirmed')
  deliver(
    bob.e2e.seal({ deviceKey: adaDevice }, encodeDirectMessage(bob.card, 'hi', NOW + 1), {
      sentAt: NOW + 1,
      deliverySecret: randomBytes(16),
    }),
  )
  const pending = dm.send('Bob', 'on its way')
  // Bob's account certifies a second device, which writes first, later.
  const tablet = device('tablet')
  const created = Math.floor(NOW / 1000) + 60
  const twoDevices = encodeContactCard(
    signContactCard(bob.identity.account, {
      name: 'Bob',
      created,
      devices: [
        bob.identity.deviceCert,
        issueDeviceCert(bob.identity.account, tablet.identity.device.publicKey, 'tablet', created),
      ],
      addresses: [],
      extensions: [bob.e2e.cardExtension()],
    }),
  )
  deliver(
    tablet.e2e.seal(
      { deviceKey: adaDevice, bundle: decodePrekeyBundle(ada.e2e.cardExtension()[1]) },
      encodeDirectMessage(new Uint8Array(0), 'from my tablet', NOW + 10),
      { sentAt: NOW + 10, deliverySecret: randomBytes(16), introduction: twoDevices },
    ),
  )
  assert.deepEqual(
    ada.store.listContacts().map((c) => c.name),
    ['Bob'],
    "the tablet's message is Bob's",
  )
  assert.deepEqual([...sent.keys()], [hello.id, pending.id], 'nothing sent again')
  assert.equal(ada.store.getMessage(pending.id)?.state, 'queued')
  assert.equal(textOf(bob.e2e.open(sent.get(pending.id)!), ada), 'on its way')
})
