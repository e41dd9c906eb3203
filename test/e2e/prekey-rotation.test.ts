/**
 * The signed prekey's rotation (src/e2e/prekey-store.ts): weekly, the newest four kept, and a
 * rotation that is undone leaves no key behind in memory.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  PREKEY_NAMESPACE,
  PrekeyStore,
  SEEN_NAMESPACE,
  SIGNED_PREKEY_LIFETIME_MS,
} from '../../src/e2e/prekey-store.ts'
import { systemRandom } from '../../src/e2e/primitives.ts'
import { decodePrekeyBundle, e2eIdentity, encodePrekeyBundle } from '../../src/e2e/x3dh.ts'
import { generateSigningKey } from '../../src/identity/ed25519.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

function prekeys(clock: { now: number }) {
  const store = createMemoryStore()
  const identity = e2eIdentity(generateSigningKey())
  return { store, identity, prekeys: new PrekeyStore(store, identity, systemRandom, () => clock.now) }
}

describe('signed prekey rotation', () => {
  it('rotates once the signed prekey is a week old, not before, and keeps the newest four', () => {
    const clock = { now: 1_750_000_000_000 }
    const { prekeys: p } = prekeys(clock)
    const first = p.bundle()
    // A first contact under the first signed prekey leaves its replay record.
    const ephemeral = new Uint8Array(32).fill(7)
    p.consume(first.signedPrekeyId, 0, ephemeral)
    assert.ok(p.seen(first.signedPrekeyId, ephemeral))
    assert.equal(p.rotateIfOlderThan(), undefined, 'young enough')
    clock.now += SIGNED_PREKEY_LIFETIME_MS - 1_000
    assert.equal(p.rotateIfOlderThan(), undefined, 'a second short of a week')
    clock.now += 1_000
    const second = p.rotateIfOlderThan()
    assert.ok(second)
    assert.notEqual(second.signedPrekeyId, first.signedPrekeyId)
    assert.notEqual(hex(second.signedPrekey), hex(first.signedPrekey))
    assert.equal(hex(p.bundle().signedPrekey), hex(second.signedPrekey))
    for (let i = 0; i < 4; i++) {
      clock.now += SIGNED_PREKEY_LIFETIME_MS
      assert.ok(p.rotateIfOlderThan())
    }
    // Four newer ones since the second: the first and the second are retired, the rest kept.
    assert.equal(p.signedPrekey(first.signedPrekeyId), undefined)
    assert.equal(p.signedPrekey(second.signedPrekeyId), undefined)
    assert.equal(p.seen(first.signedPrekeyId, ephemeral), false, 'its replay records went with it')
    assert.ok(p.signedPrekey(p.bundle().signedPrekeyId))
  })

  it('a bundle left by another device (a set-up that stopped halfway) is replaced, never handed out', () => {
    const clock = { now: 1_750_000_000_000 }
    const { store, prekeys: first } = prekeys(clock)
    first.bundle()
    // The data directory is set up again with a new device key over the same store.
    const device = e2eIdentity(generateSigningKey())
    const bundle = new PrekeyStore(store, device, systemRandom, () => clock.now).bundle()
    assert.equal(hex(bundle.deviceKey), hex(device.device.publicKey))
    decodePrekeyBundle(encodePrekeyBundle(bundle)) // its signature verifies
  })

  it('a rotation that is undone leaves no key cached under the ID the next one takes', () => {
    const clock = { now: 1_750_000_000_000 }
    const { store, identity, prekeys: p } = prekeys(clock)
    p.bundle()
    clock.now += SIGNED_PREKEY_LIFETIME_MS
    let undoneId = 0
    assert.throws(() =>
      store.transaction(() => {
        const bundle = p.rotateIfOlderThan()!
        undoneId = bundle.signedPrekeyId
        assert.ok(p.signedPrekey(undoneId)) // read, and cached, inside the transaction
        throw new Error('undone')
      }),
    )
    const bundle = p.rotateIfOlderThan()!
    assert.equal(bundle.signedPrekeyId, undoneId, 'the ID is taken again')
    // The bundle lists the public half of the key stored under that ID: what a restarted node,
    // with nothing cached, will use for a first contact.
    const restarted = new PrekeyStore(store, identity, systemRandom, () => clock.now)
    assert.equal(hex(restarted.signedPrekey(undoneId)!.publicKey), hex(bundle.signedPrekey))
    assert.equal(hex(p.signedPrekey(undoneId)!.publicKey), hex(bundle.signedPrekey))
  })
})

describe('replay records of first contacts', () => {
  it('live in a namespace of their own, so that making prekeys does not read them; older stores move theirs there', () => {
    const clock = { now: 1_750_000_000_000 }
    const { store, identity, prekeys: p } = prekeys(clock)
    const { signedPrekeyId } = p.bundle()
    const ephemeral = (i: number) => {
      const e = new Uint8Array(32)
      new DataView(e.buffer).setUint32(0, i)
      return e
    }
    for (let i = 0; i < 500; i++) p.consume(signedPrekeyId, 0, ephemeral(i))
    assert.equal(store.kvList(SEEN_NAMESPACE).length, 500)
    assert.ok(store.kvList(PREKEY_NAMESPACE).length < 110, 'the key namespace holds keys only')
    // A store written before: its records beside the keys, moved when the prekeys are opened.
    for (const [k, v] of store.kvList(SEEN_NAMESPACE)) {
      store.kvSet(PREKEY_NAMESPACE, `seen/${k}`, v)
      store.kvDelete(SEEN_NAMESPACE, k)
    }
    const reopened = new PrekeyStore(store, identity, systemRandom, () => clock.now)
    assert.ok(reopened.seen(signedPrekeyId, ephemeral(499)))
    assert.ok(!reopened.seen(signedPrekeyId, ephemeral(500)))
    assert.equal(store.kvList(PREKEY_NAMESPACE).filter(([k]) => k.startsWith('seen/')).length, 0)
    // They go with their signed prekey.
    for (let i = 0; i < 4; i++) {
      clock.now += SIGNED_PREKEY_LIFETIME_MS
      reopened.rotateIfOlderThan()
    }
    assert.equal(store.kvList(SEEN_NAMESPACE).length, 0)
  })
})
