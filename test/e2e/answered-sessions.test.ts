/**
 * Which devices' sessions the bound of devices with sessions never drops: those we answered, with
 * a message that was not automatic. A resend request or receipt (`automatic`) leaves a stranger's
 * session among those forgotten; the mark lives beside the session records, so those keep their
 * format, and a record stored before it (written in) still counts as answered.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { openSessionStore, SESSION_NAMESPACE, UNANSWERED_NAMESPACE } from '../../src/e2e/session-store.ts'
import { type Device, device, text } from './helpers.ts'

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const NOW = () => 1_750_000_000_000

/** Bob, keeping sessions with at most `max` devices. */
function bobWith(max: number): Device {
  const bob = device()
  bob.e2e = openSessionStore({ store: bob.store, device: bob.key, now: NOW, maxDevices: max })
  bob.reopen = () => {
    bob.e2e = openSessionStore({ store: bob.store, device: bob.key, now: NOW, maxDevices: max })
  }
  return bob
}

/** `s` writes first to `bob`; Bob seals one message back, automatic or not. */
function writeAndAnswer(bob: Device, s: Device, automatic: boolean | undefined): void {
  bob.e2e.open(
    s.e2e.seal(
      { deviceKey: bob.key.publicKey, bundle: bob.e2e.prekeys.replenishOneTimePrekeys() },
      text('hi'),
    ),
  )
  if (automatic !== undefined) {
    bob.e2e.seal({ deviceKey: s.key.publicKey }, text('resend request'), automatic ? { automatic } : {})
  }
}

describe('e2e: answered devices and the bound of devices with sessions', () => {
  it('an automatic message does not keep a stranger beyond the bound; one the user wrote does', () => {
    const bob = bobWith(4)
    const answered = device()
    writeAndAnswer(bob, answered, false)
    const strangers = Array.from({ length: 8 }, () => device())
    for (const s of strangers) writeAndAnswer(bob, s, true)
    assert.equal(bob.e2e.peers().length, 4)
    assert.ok(bob.e2e.peers().includes(hex(answered.key.publicKey)))
    assert.ok(bob.e2e.answered(answered.key.publicKey))
    assert.ok(!bob.e2e.answered(strangers[7]!.key.publicKey))
    // Forgotten devices leave no mark behind.
    const marks = bob.store.kvList(UNANSWERED_NAMESPACE).map(([k]) => k)
    assert.deepEqual(
      marks.sort(),
      bob.e2e
        .peers()
        .filter((k) => k !== hex(answered.key.publicKey))
        .sort(),
    )
  })

  it('the mark survives a restart, and a message the user writes later answers the device', () => {
    const bob = bobWith(8)
    const s = device()
    writeAndAnswer(bob, s, true)
    bob.reopen()
    assert.ok(!bob.e2e.answered(s.key.publicKey))
    bob.e2e.seal({ deviceKey: s.key.publicKey }, text('a receipt'), { automatic: true })
    assert.ok(!bob.e2e.answered(s.key.publicKey))
    bob.e2e.seal({ deviceKey: s.key.publicKey }, text('hello, who are you?'))
    assert.ok(bob.e2e.answered(s.key.publicKey))
    assert.equal(bob.store.kvGet(UNANSWERED_NAMESPACE, hex(s.key.publicKey)), undefined)
    // Once answered, automatic messages do not take it back.
    bob.e2e.seal({ deviceKey: s.key.publicKey }, text('a receipt'), { automatic: true })
    bob.reopen()
    assert.ok(bob.e2e.answered(s.key.publicKey))
  })

  it('a record stored before the mark existed, written in, counts as answered; a stale mark is dropped', () => {
    const bob = bobWith(8)
    const s = device()
    writeAndAnswer(bob, s, true)
    // As a version before the mark left it: the record alone (its format unchanged).
    bob.store.kvDelete(UNANSWERED_NAMESPACE, hex(s.key.publicKey))
    bob.store.kvSet(UNANSWERED_NAMESPACE, 'ab'.repeat(32), new Uint8Array(0))
    bob.reopen()
    assert.ok(bob.e2e.answered(s.key.publicKey))
    assert.equal(bob.store.kvGet(UNANSWERED_NAMESPACE, 'ab'.repeat(32)), undefined)
    assert.ok(bob.store.kvGet(SESSION_NAMESPACE, hex(s.key.publicKey)))
  })

  it('deleting the sessions with a device deletes its mark', () => {
    const bob = bobWith(8)
    const s = device()
    writeAndAnswer(bob, s, true)
    assert.ok(bob.store.kvGet(UNANSWERED_NAMESPACE, hex(s.key.publicKey)))
    bob.e2e.deleteSession(s.key.publicKey)
    assert.equal(bob.store.kvGet(UNANSWERED_NAMESPACE, hex(s.key.publicKey)), undefined)
  })
})
