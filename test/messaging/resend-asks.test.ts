/**
 * Resend requests that refused messages make a node send, and what they must not do: be provoked
 * without end (forged or replayed first-contact bodies naming a contact's device, or many
 * contacts at once), nor keep a stranger's session beyond the bound of devices with sessions.
 * Runs the real DirectMessages over a recording core.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { generateDhKey, hmac, systemRandom } from '../../src/e2e/primitives.ts'
import { openSealedPrekey, sealPrekeyMessage } from '../../src/e2e/sealed.ts'
import { decodePrekeyMessage, encodePrekeyMessage } from '../../src/e2e/session.ts'
import { decodeSessionRecord, encodeSessionRecord } from '../../src/e2e/session-codec.ts'
import { openSessionStore, SESSION_NAMESPACE, type SessionStore } from '../../src/e2e/session-store.ts'
import { encodeContactCard } from '../../src/identity/contact-card.ts'
import { toContactLink } from '../../src/identity/contact-link.ts'
import { createIdentity, type Identity, makeContactCard } from '../../src/identity/identity.ts'
import { toTextId } from '../../src/identity/text-id.ts'
import { decodeDirectMessage, encodeDirectMessage } from '../../src/messaging/direct-message.ts'
import { DEVICE_ASKS_PER_WINDOW, STRANGER_ASKS_PER_WINDOW } from '../../src/node/ask-limits.ts'
import { CardBook } from '../../src/node/card-book.ts'
import { addContact, verifyContact } from '../../src/node/contacts.ts'
import { DirectMessages } from '../../src/node/direct-messages.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'
import type { Store } from '../../src/store/store.ts'

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

interface Party {
  readonly name: string
  readonly store: Store
  readonly identity: Identity
  e2e: SessionStore
  card(): Uint8Array
}

function party(name: string, maxDevices?: number): Party {
  const store = createMemoryStore()
  const identity = createIdentity({ now: Date.now() })
  const p: Party = {
    name,
    store,
    identity,
    e2e: openSessionStore({
      store,
      device: identity.device,
      now: Date.now,
      ...(maxDevices ? { maxDevices } : {}),
    }),
    card: () =>
      encodeContactCard(
        makeContactCard(identity, { name, extensions: [p.e2e.cardExtension()], now: Date.now() }),
      ),
  }
  return p
}

/** `owner` adds `other` as a contact (from its link), verified if asked. */
function add(owner: Party, other: Party, verified = false): void {
  const card = makeContactCard(other.identity, {
    name: other.name,
    extensions: [other.e2e.cardExtension()],
    now: Date.now(),
  })
  addContact(owner.store, owner.identity.account.publicKey, toContactLink(card), { now: Date.now() })
  if (verified)
    verifyContact(
      owner.store,
      owner.identity.account.publicKey,
      toTextId(other.identity.account.publicKey),
      true,
    )
}

/** Bob's DirectMessages over a core that records what it sends. */
function node(bob: Party) {
  const sent: Uint8Array[] = []
  const after: Array<() => void> = []
  const dm = new DirectMessages({
    store: bob.store,
    identity: bob.identity,
    e2e: bob.e2e,
    cardBook: new CardBook(bob.store),
    core: {
      send: (_tag: unknown, sealed: Uint8Array) => {
        sent.push(sealed)
        return randomBytes(16).toString('hex')
      },
      abandon: () => {},
      settle: () => false,
      ackTagFor: () => new Uint8Array(16),
    } as never,
    log: () => {},
    ttlMs: undefined,
    card: () => bob.card(),
    refreshCard: () => {},
    afterStep: (fn) => after.push(fn),
    step: (fn) => {
      bob.store.transaction(fn)
      return true
    },
    act: (fn) => bob.store.transaction(fn),
    stopped: () => false,
    message: () => {},
    state: () => {},
  })
  const deliver = (payload: Uint8Array, id = randomBytes(16).toString('hex')) => {
    const filing = bob.store.transaction(() => dm.deliver({ id, payload, hops: 1 } as never))
    for (const f of after.splice(0)) f()
    return filing
  }
  return { dm, sent, deliver }
}

/**
 * A first message from `from`'s device to `to` that `to` cannot open (its one-time prekey unknown
 * to it, as if someone else took it first), sealed as the node seals it: with an introduction.
 */
function collidingFirstContact(from: Party, to: Party, text: string): Uint8Array {
  const fresh = openSessionStore({ store: createMemoryStore(), device: from.identity.device, now: Date.now })
  const bundle = {
    ...to.e2e.bundle(),
    oneTimePrekeys: [
      { id: 0x7000_0000 + (randomBytes(2).readUInt16BE() + 1), key: generateDhKey().publicKey },
    ],
  }
  return fresh.seal(
    { deviceKey: to.identity.device.publicKey, bundle },
    encodeDirectMessage(new Uint8Array(0), text, Date.now()),
    { introduction: from.card() },
  )
}

/** The message IDs `alice` is asked to send again in `sealed`. */
function resendIds(alice: Party, sealed: Uint8Array): readonly string[] {
  const opened = alice.e2e.open(sealed)
  return decodeDirectMessage(opened.content, () => undefined as never).resendIds ?? []
}

describe('resend requests for first messages that could not be opened', () => {
  it('are not made for a body that names a contact only by its identity signature', () => {
    const [alice, bob, mallory] = [party('Alice'), party('Bob'), party('Mallory')]
    add(bob, alice, true)
    // Alice once wrote first to Mallory: Mallory holds her identity signature over IK_A.
    const pm = decodePrekeyMessage(
      openSealedPrekey(
        alice.e2e.seal(
          { deviceKey: mallory.identity.device.publicKey, bundle: mallory.e2e.bundle() },
          new Uint8Array(10),
        ),
        mallory.e2e.identity.identityDh,
      ),
    )
    const { sent, deliver } = node(bob)
    for (let i = 0; i < 5; i++) {
      const forged = encodePrekeyMessage({
        ...pm,
        ephemeral: generateDhKey().publicKey,
        oneTimePrekeyId: 0x7fff_0000 + i,
        signedPrekeyId: bob.e2e.bundle().signedPrekeyId,
        introduction: new Uint8Array(0),
        introductionTag: new Uint8Array(0),
      })
      const inner = new Uint8Array(512 - 49)
      inner.set(forged)
      const filing = deliver(sealPrekeyMessage(inner, bob.e2e.bundle().identityDh, systemRandom))
      assert.match(filing.refused ?? '', /^not_found/)
    }
    assert.equal(sent.length, 0, 'Bob sent Alice nothing')
  })

  it('are made once per body: the same body again (the mesh hands it over until it expires, or a replay) is not asked for again', () => {
    const [alice, bob] = [party('Alice'), party('Bob')]
    add(bob, alice, true)
    const { sent, deliver } = node(bob)
    const body = collidingFirstContact(alice, bob, 'hello')
    const id = randomBytes(16).toString('hex')
    assert.match(deliver(body, id).refused ?? '', /^not_found/)
    assert.equal(sent.length, 1)
    assert.deepEqual(resendIds(alice, sent[0]!), [id])
    for (let i = 0; i < 3; i++) deliver(body, i === 0 ? id : randomBytes(16).toString('hex'))
    assert.equal(sent.length, 1, 'no ask for the same body again')
    // Another message of hers that could not be opened is asked for.
    deliver(collidingFirstContact(alice, bob, 'are you there?'))
    assert.equal(sent.length, 2)
  })

  it('to one device are at most DEVICE_ASKS_PER_WINDOW an hour, even a verified contact', () => {
    const [alice, bob] = [party('Alice'), party('Bob')]
    add(bob, alice, true)
    const { sent, deliver } = node(bob)
    for (let i = 0; i < DEVICE_ASKS_PER_WINDOW + 4; i++) deliver(collidingFirstContact(alice, bob, `m${i}`))
    assert.equal(sent.length, DEVICE_ASKS_PER_WINDOW)
  })

  it('to unverified contacts share the few an hour of asks to strangers', () => {
    const bob = party('Bob')
    const { sent, deliver } = node(bob)
    const others = Array.from({ length: STRANGER_ASKS_PER_WINDOW + 4 }, (_, i) => party(`C${i}`))
    for (const c of others) add(bob, c)
    for (const c of others) deliver(collidingFirstContact(c, bob, 'hi'))
    assert.equal(sent.length, STRANGER_ASKS_PER_WINDOW)
  })
})

describe('automatic messages and the bound of devices with sessions', () => {
  /** `s` writes first to Bob, then jumps its sending chain beyond MAX_GAP: Bob asks it to send again. */
  function provoke(bob: Party, deliver: (p: Uint8Array) => { refused?: string }, s: Party): void {
    const bk = bob.identity.device.publicKey
    const content = (t: string) => encodeDirectMessage(new Uint8Array(0), t, Date.now())
    const f = deliver(
      s.e2e.seal({ deviceKey: bk, bundle: bob.e2e.prekeys.replenishOneTimePrekeys() }, content('hi'), {
        introduction: s.card(),
      }),
    )
    assert.equal(f.refused, undefined)
    s.e2e.confirm(bk, s.e2e.pendingBaseKey(bk)!)
    const list = decodeSessionRecord(s.store.kvGet(SESSION_NAMESPACE, hex(bk))!)
    const r = list[0]!.ratchet
    let ck = r.cks!
    for (let j = 0; j < 10_001; j++) ck = hmac(ck, Uint8Array.of(2))
    list[0] = { ...list[0]!, ratchet: { ...r, cks: ck, ns: r.ns + 10_001 } }
    s.store.kvSet(SESSION_NAMESPACE, hex(bk), encodeSessionRecord(list))
    s.e2e = openSessionStore({ store: s.store, device: s.identity.device, now: Date.now })
    assert.match(deliver(s.e2e.seal({ deviceKey: bk }, content('x'))).refused ?? '', /^too_large/)
  }

  it('a stranger that provokes a resend request does not keep its session beyond the bound', () => {
    const bob = party('Bob', 3)
    const { sent, deliver, dm } = node(bob)
    const strangers = Array.from({ length: 8 }, (_, i) => party(`S${i}`))
    // The first one Bob answers himself: that one is kept.
    provoke(bob, deliver, strangers[0]!)
    dm.send(toTextId(strangers[0]!.identity.account.publicKey), 'hello S0')
    for (const s of strangers.slice(1)) provoke(bob, deliver, s)
    assert.equal(sent.length, 9, 'eight asks and one message')
    const kept = bob.e2e.peers()
    assert.ok(kept.length <= 3, `sessions kept: ${kept.length}`)
    assert.ok(kept.includes(hex(strangers[0]!.identity.device.publicKey)), 'the one Bob wrote to')
    assert.ok(bob.e2e.answered(strangers[0]!.identity.device.publicKey))
    assert.ok(!bob.e2e.answered(strangers[7]!.identity.device.publicKey))
  })
})
