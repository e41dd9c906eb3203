/**
 * The end-to-end acceptance scenario at the library level: first contact from a contact card while
 * the recipient is offline, a ratcheted conversation both ways, forward secrecy and
 * post-compromise security against a stolen state, out-of-order and gapped delivery, restarts and
 * replays.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { PREKEY_NAMESPACE } from '../../src/e2e/prekey-store.ts'
import { systemRandom } from '../../src/e2e/primitives.ts'
import { MAX_SKIPPED_KEYS } from '../../src/e2e/ratchet.ts'
import {
  MAX_SEALED_CONTENT,
  openSealedPrekey,
  SEALED_BUCKETS,
  sealPrekeyMessage,
} from '../../src/e2e/sealed.ts'
import { decodePrekeyMessage, encodePrekeyMessage, MAX_INTRODUCTION_BYTES } from '../../src/e2e/session.ts'
import { decodeSessionRecord, encodeSessionRecord } from '../../src/e2e/session-codec.ts'
import { openSessionStore, SESSION_NAMESPACE } from '../../src/e2e/session-store.ts'
import { decodePrekeyBundle } from '../../src/e2e/x3dh.ts'
import {
  CardExtension,
  cardExtension,
  decodeContactCard,
  encodeContactCard,
} from '../../src/identity/contact-card.ts'
import { createIdentity, makeContactCard } from '../../src/identity/identity.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'
import { throwsCode } from '../helpers/errors.ts'
import { prng } from '../helpers/prng.ts'
import { type Device, device, shuffle, stealState, str, text } from './helpers.ts'

const keyOf = (d: Device) => d.key.publicKey
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

function firstContact(from: Device, to: Device, body: string): Uint8Array {
  return from.e2e.seal({ deviceKey: keyOf(to), bundle: to.e2e.bundle() }, text(body))
}

function send(from: Device, to: Device, body: string): Uint8Array {
  return from.e2e.seal({ deviceKey: keyOf(to) }, text(body))
}

function skippedKeys(d: Device): number {
  let n = 0
  for (const [, v] of d.store.kvList('e2e-session')) {
    for (const s of decodeSessionRecord(v)) n += s.ratchet.skipped.length
  }
  return n
}

describe('e2e sessions: first contact from a contact card', () => {
  it('A writes from B’s card while B is offline; B reads later and both go on', () => {
    // B publishes its bundle in its contact card (extension 1), signed by its account.
    const bId = createIdentity({ now: 1_750_000_000_000, deviceName: 'b-phone' })
    const bStore = createMemoryStore()
    const b = openSessionStore({ store: bStore, device: bId.device, now: () => 1_750_000_000_000 })
    const card = makeContactCard(bId, { name: 'B', extensions: [b.cardExtension()], now: 1_750_000_000_000 })
    const cardBytes = encodeContactCard(card)
    assert.ok(cardBytes.length < 1500, `card with prekeys is ${cardBytes.length} bytes`)

    // A reads the card from a link: the bundle must be of a device the card certifies.
    const received = decodeContactCard(cardBytes)
    const bundle = decodePrekeyBundle(cardExtension(received, CardExtension.prekeys)!)
    assert.ok(received.devices.some((d) => Buffer.compare(d.deviceKey, bundle.deviceKey) === 0))

    const a = device()
    const early = ['hello B', 'are you there?', 'third, before any reply'].map((m) =>
      a.e2e.seal({ deviceKey: bundle.deviceKey, bundle }, text(m)),
    )
    for (const sealed of early) assert.ok(SEALED_BUCKETS.includes(sealed.length))

    // B comes online later and gets them in the wrong order.
    const got = [early[2]!, early[0]!, early[1]!].map((s) => b.open(s))
    assert.deepEqual(
      got.map((m) => str(m.content)),
      ['third, before any reply', 'hello B', 'are you there?'],
    )
    assert.deepEqual(
      got.map((m) => m.firstContact),
      [true, false, false],
    )
    assert.deepEqual(got[0]!.peerDeviceKey, keyOf(a))
    assert.equal(got[0]!.sentAt, 1_750_000_000_000)

    // The conversation goes on in both directions.
    const bDevice = { key: bId.device, store: bStore, e2e: b, reopen() {} }
    for (let round = 0; round < 5; round++) {
      assert.equal(str(a.e2e.open(send(bDevice, a, `b says ${round}`)).content), `b says ${round}`)
      assert.equal(str(b.open(send(a, bDevice, `a says ${round}`)).content), `a says ${round}`)
    }
  })

  it('a one-time prekey is used once; a second initiator using it is refused', () => {
    const b = device()
    assert.equal(b.e2e.bundle().oneTimePrekeys.length, 8)
    const bundle = b.e2e.prekeys.replenishOneTimePrekeys(1)
    const a1 = device()
    const a2 = device()
    const m1 = a1.e2e.seal({ deviceKey: keyOf(b), bundle }, text('first'))
    const m2 = a2.e2e.seal({ deviceKey: keyOf(b), bundle }, text('second'))
    assert.equal(b.e2e.prekeys.oneTimePrekeysLeft(), 9)
    assert.equal(str(b.e2e.open(m1).content), 'first')
    assert.equal(b.e2e.prekeys.oneTimePrekeysLeft(), 8)
    throwsCode(() => b.e2e.open(m2), 'not_found')
    // The refusal changed nothing: A1's session goes on.
    assert.equal(str(b.e2e.open(send(a1, b, 'again')).content), 'again')
  })

  it('an introduction names who wrote even when the one-time prekey is gone; it cannot be forged', () => {
    const b = device()
    const bundle = b.e2e.prekeys.replenishOneTimePrekeys(1)
    const [a1, a2, a3, mallory] = [device(), device(), device(), device()]
    const m1 = a1.e2e.seal({ deviceKey: keyOf(b), bundle }, text('first'), {
      introduction: text('card of a1'),
    })
    const m2 = a2.e2e.seal({ deviceKey: keyOf(b), bundle }, text('second'), {
      introduction: text('card of a2'),
    })
    const m3 = a3.e2e.seal({ deviceKey: keyOf(b), bundle }, text('third'))
    const first = b.e2e.open(m1)
    assert.equal(str(first.introduction!), 'card of a1')
    // The one-time prekey is gone: A2's message does not open, but B learns who wrote.
    const refused = throwsCode(() => b.e2e.open(m2), 'not_found')
    assert.deepEqual(refused.details, {
      peerDevice: hex(keyOf(a2)),
      introduction: hex(text('card of a2')),
    })
    // With no introduction, only the device.
    assert.deepEqual(throwsCode(() => b.e2e.open(m3), 'not_found').details, { peerDevice: hex(keyOf(a3)) })
    // Ratchet bodies (A1 has B's reply: no more prekey bodies) never carry one.
    a1.e2e.open(send(b, a1, 'reply'))
    assert.equal(
      b.e2e.open(a1.e2e.seal({ deviceKey: keyOf(b) }, text('x'), { introduction: text('no') })).introduction,
      undefined,
    )

    // Mallory writes as A2 (A2's device key, identity key and signature are public) with her
    // card: she cannot make the tag, which needs A2's identity key.
    const ik = b.e2e.identity.identityDh
    const own = decodePrekeyMessage(
      openSealedPrekey(
        mallory.e2e.seal({ deviceKey: keyOf(b), bundle }, text('hi'), {
          introduction: text('card of mallory'),
        }),
        ik,
      ),
    )
    const forged = encodePrekeyMessage({
      ...own,
      senderDeviceKey: keyOf(a2),
      senderIdentityDh: a2.e2e.identity.identityDh.publicKey,
      identitySignature: a2.e2e.identity.identitySignature,
    })
    throwsCode(() => b.e2e.open(sealPrekeyMessage(forged, ik.publicKey, systemRandom)), 'bad_signature')
    // Nor can anyone alter a genuine one.
    const genuine = decodePrekeyMessage(openSealedPrekey(m2, ik))
    const altered = new Uint8Array(genuine.introduction)
    altered[0]! ^= 1
    const tampered = encodePrekeyMessage({ ...genuine, introduction: altered })
    throwsCode(() => b.e2e.open(sealPrekeyMessage(tampered, ik.publicKey, systemRandom)), 'bad_signature')
    // An introduction longer than a card, or than the message, is refused before anything else.
    const bytes = encodePrekeyMessage(genuine)
    const lengthAt = 32 + 32 + 32 + 64 + 8
    for (const n of [MAX_INTRODUCTION_BYTES + 1, bytes.length]) {
      const bad = new Uint8Array(bytes)
      new DataView(bad.buffer).setUint16(lengthAt, n)
      throwsCode(() => decodePrekeyMessage(bad), 'malformed')
    }
    throwsCode(
      () => encodePrekeyMessage({ ...genuine, introduction: new Uint8Array(MAX_INTRODUCTION_BYTES + 1) }),
      'too_large',
    )
    // A first contact naming a signed prekey retired since says who wrote too.
    const a4 = device()
    const old = a4.e2e.seal({ deviceKey: keyOf(b), bundle }, text('late'), {
      introduction: text('card of a4'),
    })
    for (let i = 0; i < 4; i++) b.e2e.prekeys.rotateSignedPrekey()
    assert.deepEqual(throwsCode(() => b.e2e.open(old), 'not_found').details, {
      peerDevice: hex(keyOf(a4)),
      introduction: hex(text('card of a4')),
    })
  })

  it('a session stored before introductions existed goes on, introducing nobody', () => {
    const a = device()
    const b = device()
    firstContact(a, b, 'not delivered yet')
    assert.equal(a.e2e.introduces(keyOf(b)), true)
    // Its stored pending prekeys had no introduction key.
    const [key, record] = a.store.kvList('e2e-session')[0]!
    const sessions = decodeSessionRecord(record).map((s) => {
      const { introductionKey: _, ...pending } = s.pending!
      return { ...s, pending }
    })
    a.store.kvSet('e2e-session', key, encodeSessionRecord(sessions))
    a.reopen()
    assert.equal(a.e2e.introduces(keyOf(b)), false)
    assert.equal(a.e2e.introduces(keyOf(device())), true)
    const opened = b.e2e.open(
      a.e2e.seal({ deviceKey: keyOf(b) }, text('after an upgrade'), { introduction: text('card') }),
    )
    assert.equal(str(opened.content), 'after an upgrade')
    assert.equal(opened.introduction, undefined)
  })

  it('two devices that write first to each other at once both keep working', () => {
    const a = device()
    const b = device()
    const fromA = firstContact(a, b, 'hi from a')
    const fromB = firstContact(b, a, 'hi from b')
    assert.equal(str(b.e2e.open(fromA).content), 'hi from a')
    assert.equal(str(a.e2e.open(fromB).content), 'hi from b')
    for (let i = 0; i < 4; i++) {
      assert.equal(str(b.e2e.open(send(a, b, `a${i}`)).content), `a${i}`)
      assert.equal(str(a.e2e.open(send(b, a, `b${i}`)).content), `b${i}`)
    }
  })

  it('strangers who write first are forgotten beyond the bound, least recently used first; answered ones never', () => {
    const bob = device()
    bob.e2e = openSessionStore({
      store: bob.store,
      device: bob.key,
      now: () => 1_750_000_000_000,
      maxDevices: 3,
    })
    const [ada, eve1, eve2, eve3] = [device(), device(), device(), device()]
    // A first contact each, with a fresh one-time prekey for the next (as a node lists new ones).
    const welcome = (from: Device, body: string) => {
      bob.e2e.open(firstContact(from, bob, body))
      bob.e2e.prekeys.replenishOneTimePrekeys()
    }
    welcome(ada!, 'hi bob')
    ada!.e2e.open(send(bob, ada!, 'hi ada')) // Bob answered Ada
    welcome(eve1!, 'one')
    welcome(eve2!, 'two')
    bob.e2e.open(send(ada!, bob, 'still here')) // Ada is the most recent now
    welcome(eve3!, 'three') // one too many: eve1 goes
    const kept = bob.store.kvList(SESSION_NAMESPACE).map(([k]) => k)
    assert.deepEqual(kept.sort(), [keyOf(ada!), keyOf(eve2!), keyOf(eve3!)].map(hex).sort())
    // Eve's next message (a prekey message still: she never heard back) opens no more; it names
    // her, so that she can be asked to send it again (test/e2e/evicted-sessions.test.ts).
    throwsCode(() => bob.e2e.open(send(eve1!, bob, 'again')), 'not_found')
    // Ada, whom Bob wrote to, stays whatever comes: all the others are strangers.
    for (let i = 0; i < 4; i++) welcome(device(), `more ${i}`)
    assert.ok(bob.store.kvGet(SESSION_NAMESPACE, hex(keyOf(ada!))))
    assert.equal(str(bob.e2e.open(send(ada!, bob, 'still')).content), 'still')
    assert.equal(bob.store.kvList(SESSION_NAMESPACE).length, 3)
  })

  it('a stranger starting sessions again and again keeps one; a device we wrote to keeps three', () => {
    const bob = device()
    const sessionsOf = (d: Device) =>
      decodeSessionRecord(bob.store.kvGet(SESSION_NAMESPACE, hex(keyOf(d)))!).length
    // One device key, its state lost twice (two installs of one seed): three first contacts.
    const eve = [device(7), device(7), device(7)] as const
    for (const [i, e] of eve.entries()) {
      bob.e2e.open(firstContact(e, bob, `eve ${i}`))
      bob.e2e.prekeys.replenishOneTimePrekeys()
    }
    assert.equal(sessionsOf(eve[0]), 1)
    // Her newest session works; the ones before are gone (her next message there asks again).
    assert.equal(str(bob.e2e.open(send(eve[2], bob, 'newest')).content), 'newest')
    throwsCode(() => bob.e2e.open(send(eve[0], bob, 'oldest')), 'not_found')
    // Someone Bob answered keeps up to three: two sides that wrote first at once need two.
    const ada = [device(9), device(9)] as const
    bob.e2e.open(firstContact(ada[0], bob, 'ada'))
    bob.e2e.prekeys.replenishOneTimePrekeys()
    ada[0].e2e.open(send(bob, ada[0], 'hi ada'))
    bob.e2e.open(firstContact(ada[1], bob, 'ada again'))
    assert.equal(sessionsOf(ada[0]), 2)
    assert.equal(str(bob.e2e.open(send(ada[0], bob, 'first install')).content), 'first install')
  })

  it('content up to the limit fits; more is refused', () => {
    const a = device()
    const b = device()
    const big = new Uint8Array(MAX_SEALED_CONTENT).fill(7)
    const sealed = a.e2e.seal({ deviceKey: keyOf(b), bundle: b.e2e.bundle() }, big)
    assert.equal(sealed.length, 65024)
    assert.deepEqual(b.e2e.open(sealed).content, big)
    throwsCode(() => send(a, b, 'x'.repeat(MAX_SEALED_CONTENT + 1)), 'too_large')
    throwsCode(() => a.e2e.seal({ deviceKey: keyOf(device()) }, text('no bundle')), 'not_found')
  })
})

describe('e2e sessions: compromise of B’s current state', () => {
  it('earlier messages stay unreadable (forward secrecy); after a round trip, new ones too (post-compromise)', () => {
    const a = device()
    const b = device()
    const received: Uint8Array[] = [firstContact(a, b, 'secret 0')]
    b.e2e.open(received[0]!)
    for (let i = 1; i < 6; i++) {
      const fromA = send(a, b, `secret ${i}`)
      received.push(fromA)
      b.e2e.open(fromA)
      a.e2e.open(b.e2e.seal({ deviceKey: keyOf(a) }, text(`ok ${i}`)))
    }
    // A writes again; before B reads it, B's device is compromised: the thief copies its state.
    const inFlight = send(a, b, 'in flight')
    const thief = stealState(b)

    // Forward secrecy: nothing B decrypted before the theft opens with the stolen state.
    for (const sealed of received) throwsCode(() => thief.open(sealed), 'decrypt_failed', 'replayed')
    // The stolen state is live: a message not yet delivered at the theft is readable to the thief.
    assert.equal(str(thief.open(inFlight).content), 'in flight')

    // One round trip (A → B, B → A) brings a fresh DH key from each side...
    assert.equal(str(b.e2e.open(inFlight).content), 'in flight')
    assert.equal(str(a.e2e.open(b.e2e.seal({ deviceKey: keyOf(a) }, text('reply'))).content), 'reply')
    // ...and from then on the thief reads nothing (post-compromise security).
    for (let i = 0; i < 3; i++) {
      const healed = send(a, b, `healed ${i}`)
      throwsCode(() => thief.open(healed), 'decrypt_failed')
      assert.equal(str(b.e2e.open(healed).content), `healed ${i}`)
      a.e2e.open(b.e2e.seal({ deviceKey: keyOf(a) }, text(`still ${i}`)))
    }
  })

  it('the first (prekey) message stays unreadable too, to a thief who ignores the replay records', () => {
    const a = device()
    const b = device()
    const first = firstContact(a, b, 'secret 0')
    const oneTimeLeft = () =>
      b.store.kvList(PREKEY_NAMESPACE).filter(([k]) => k.startsWith('one-time/')).length
    const before = oneTimeLeft()
    // The thief is not bound by his copy's replay bookkeeping: he drops the ephemeral keys seen
    // (`seen/*`) and every session, and runs the key agreement again from the prekeys he holds.
    const stealPrekeysOnly = () => {
      const copy = createMemoryStore()
      for (const [k, v] of b.store.kvList(PREKEY_NAMESPACE)) {
        if (!k.startsWith('seen/')) copy.kvSet(PREKEY_NAMESPACE, k, v)
      }
      assert.equal(copy.kvList(SESSION_NAMESPACE).length, 0)
      return openSessionStore({ store: copy, device: b.key, now: () => 1_750_000_000_000 })
    }
    // Control: a copy taken before B read the message opens it, so the thief's way works.
    assert.equal(str(stealPrekeysOnly().open(first).content), 'secret 0')

    assert.equal(str(b.e2e.open(first).content), 'secret 0')
    assert.equal(oneTimeLeft(), before - 1, 'the message used one of B’s one-time prekeys, now deleted')
    // Taken after: the one-time prekey's private key is gone, and with it the message.
    throwsCode(() => stealPrekeysOnly().open(first), 'not_found', 'decrypt_failed')
  })
})

describe('e2e sessions: delivery order, gaps, restarts and replays', () => {
  it('out-of-order and gapped delivery across ratchet steps all decrypt; skipped keys stay bounded', () => {
    const seed = 1234
    const rand = prng(seed)
    const a = device()
    const b = device()
    b.e2e.open(firstContact(a, b, 'start'))
    const pendingToB: Array<[Uint8Array, string]> = []
    const pendingToA: Array<[Uint8Array, string]> = []
    const dropped = new Set<string>()
    for (let step = 0; step < 400; step++) {
      const r = rand()
      if (r < 0.35) {
        const body = `a${step}`
        pendingToB.push([send(a, b, body), body])
      } else if (r < 0.6) {
        const body = `b${step}`
        pendingToA.push([b.e2e.seal({ deviceKey: keyOf(a) }, text(body)), body])
      } else {
        // Deliver a random batch in random order; drop a few for good.
        for (const [queue, to] of [
          [pendingToB, b],
          [pendingToA, a],
        ] as const) {
          const batch = shuffle(queue.splice(0, Math.floor(rand() * (queue.length + 1))), rand)
          for (const [sealed, body] of batch) {
            if (rand() < 0.1) {
              dropped.add(body)
              continue
            }
            assert.equal(str(to.e2e.open(sealed).content), body)
          }
        }
      }
      assert.ok(skippedKeys(a) <= MAX_SKIPPED_KEYS && skippedKeys(b) <= MAX_SKIPPED_KEYS)
    }
    for (const [sealed, body] of shuffle(pendingToB, rand))
      assert.equal(str(b.e2e.open(sealed).content), body)
    for (const [sealed, body] of shuffle(pendingToA, rand))
      assert.equal(str(a.e2e.open(sealed).content), body)
    assert.ok(dropped.size > 0)
  })

  it('a restart keeps sessions and prekeys', () => {
    const a = device()
    const b = device()
    const first = firstContact(a, b, 'before restart')
    b.reopen()
    assert.equal(str(b.e2e.open(first).content), 'before restart')
    a.reopen()
    b.reopen()
    const late = send(a, b, 'late')
    const next = send(a, b, 'after restart')
    a.reopen()
    b.reopen()
    assert.equal(str(b.e2e.open(next).content), 'after restart')
    b.reopen()
    assert.equal(str(b.e2e.open(late).content), 'late')
    const back = b.e2e.seal({ deviceKey: keyOf(a) }, text('back'))
    a.reopen()
    assert.equal(str(a.e2e.open(back).content), 'back')
  })

  it('a replayed message is refused, first contact included, also after a restart', () => {
    const a = device()
    const b = device()
    const first = firstContact(a, b, 'one')
    const second = send(a, b, 'two')
    b.e2e.open(first)
    b.e2e.open(second)
    throwsCode(() => b.e2e.open(second), 'replayed')
    throwsCode(() => b.e2e.open(first), 'replayed')
    // After a reply the session is no longer pending; a new chain starts.
    a.e2e.open(b.e2e.seal({ deviceKey: keyOf(a) }, text('reply')))
    const third = send(a, b, 'three')
    b.e2e.open(third)
    b.reopen()
    throwsCode(() => b.e2e.open(third), 'replayed')
    throwsCode(() => b.e2e.open(second), 'replayed')
    throwsCode(() => b.e2e.open(first), 'replayed')
    // Even with the session gone, the first-contact message is remembered and not opened again
    // (only its sender is named: not_found, to be asked for it again in a session that works).
    b.e2e.deleteSession(keyOf(a))
    throwsCode(() => b.e2e.open(first), 'not_found')
  })
})

describe('e2e sessions: the delivery proof and leaving prekey messages behind', () => {
  it('the delivery secret travels sealed and comes out on open', () => {
    const a = device()
    const b = device()
    const secret = new Uint8Array(16).fill(0x42)
    const sealed = a.e2e.seal({ deviceKey: keyOf(b), bundle: b.e2e.bundle() }, text('proof'), {
      deliverySecret: secret,
    })
    assert.ok(!Buffer.from(sealed).includes(Buffer.from(secret)), 'not in the clear')
    const opened = b.e2e.open(sealed)
    assert.deepEqual(opened.deliverySecret, secret)
    assert.equal(b.e2e.open(send(a, b, 'default')).deliverySecret.length, 16)
    throwsCode(
      () => a.e2e.seal({ deviceKey: keyOf(b) }, text('x'), { deliverySecret: new Uint8Array(15) }),
      'invalid_argument',
    )
  })

  it('once a prekey message is confirmed delivered, later messages are ratchet messages', () => {
    const a = device()
    const b = device()
    const first = firstContact(a, b, 'first')
    const baseKey = a.e2e.pendingBaseKey(keyOf(b))
    assert.ok(baseKey !== undefined, 'prekey messages until confirmed')
    // Still unconfirmed: the second message is a prekey message too (B may get it first).
    const second = send(a, b, 'second')
    b.e2e.open(second)
    b.e2e.open(first)
    assert.equal(a.e2e.confirm(keyOf(b), new Uint8Array(32)), false, 'not a session of ours')
    assert.equal(a.e2e.confirm(keyOf(b), baseKey), true)
    assert.equal(a.e2e.pendingBaseKey(keyOf(b)), undefined)
    const third = send(a, b, 'third')
    throwsCode(() => openSealedPrekey(third, b.e2e.identity.identityDh), 'decrypt_failed')
    const opened = b.e2e.open(third)
    assert.equal(str(opened.content), 'third')
    assert.equal(opened.firstContact, false)
    // Kept across a restart.
    const again = openSessionStore({ store: a.store, device: a.key, now: () => 1_750_000_000_000 })
    assert.equal(again.pendingBaseKey(keyOf(b)), undefined)
    assert.equal(str(b.e2e.open(again.seal({ deviceKey: keyOf(b) }, text('fourth'))).content), 'fourth')
  })
})
