/**
 * The end of a chain: a header numbered past the last message any sender writes is refused before
 * it changes anything (taken, the count after it would pass what a stored session holds, and the
 * session could never be read again); and a stored session that cannot be read is set aside when
 * the store opens, instead of keeping the device from starting.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { aeadSeal, concatBytes, hmac, systemRandom } from '../../src/e2e/primitives.ts'
import { MAX_MESSAGE_NUMBER } from '../../src/e2e/ratchet.ts'
import {
  encodeSealedPlaintext,
  paddedPlaintextLength,
  SEALED_VERSION,
  sealRatchetMessage,
} from '../../src/e2e/sealed.ts'
import { sessionAssociatedData } from '../../src/e2e/session.ts'
import { decodeSessionRecord, encodeSessionRecord } from '../../src/e2e/session-codec.ts'
import {
  openSessionStore,
  SESSION_NAMESPACE,
  UNREADABLE_SESSION_NAMESPACE,
} from '../../src/e2e/session-store.ts'
import { throwsCode } from '../helpers/errors.ts'
import { type Device, device, str, text } from './helpers.ts'

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

/** A and B in a session where A has sent and B opened message number `MAX_MESSAGE_NUMBER - 1`. */
function atTheEnd(): { a: Device; b: Device } {
  const a = device(1)
  const b = device(2)
  b.e2e.open(a.e2e.seal({ deviceKey: b.key.publicKey, bundle: b.e2e.bundle() }, text('hi')))
  a.e2e.confirm(b.key.publicKey, a.e2e.pendingBaseKey(b.key.publicKey)!)
  // As if A had sent every message up to there: the numbers move, the chain keys stay in step.
  const top = MAX_MESSAGE_NUMBER - 1
  const edit = (d: Device, peer: Device, field: 'ns' | 'nr') => {
    const list = decodeSessionRecord(d.store.kvGet(SESSION_NAMESPACE, hex(peer.key.publicKey))!)
    list[0] = { ...list[0]!, ratchet: { ...list[0]!.ratchet, [field]: top, skipped: [] } }
    d.store.kvSet(SESSION_NAMESPACE, hex(peer.key.publicKey), encodeSessionRecord(list))
    d.reopen()
  }
  edit(a, b, 'ns')
  edit(b, a, 'nr')
  assert.equal(str(b.e2e.open(a.e2e.seal({ deviceKey: b.key.publicKey }, text('last'))).content), 'last')
  return { a, b }
}

describe('the end of a chain', () => {
  it('refuses a header numbered past the last message, and the session stays as it was', () => {
    const { a, b } = atTheEnd()
    // An honest sender stops there; a hostile one builds the next header by hand.
    throwsCode(() => a.e2e.seal({ deviceKey: b.key.publicKey }, text('one more')), 'too_large')
    const s = decodeSessionRecord(a.store.kvGet(SESSION_NAMESPACE, hex(b.key.publicKey))!)[0]!
    const r = s.ratchet
    const header = new Uint8Array(40)
    header.set(r.dhs.publicKey, 0)
    new DataView(header.buffer).setUint32(32, r.pn)
    new DataView(header.buffer).setUint32(36, MAX_MESSAGE_NUMBER)
    const nonce = systemRandom(12)
    const encryptedHeader = concatBytes(nonce, aeadSeal(r.hks!, nonce, header, new Uint8Array(0)))
    const plaintext = encodeSealedPlaintext(
      { sentAt: 1, deliverySecret: new Uint8Array(16), ackTag: new Uint8Array(16), content: text('boom') },
      paddedPlaintextLength(4, false),
    )
    const mk = hmac(r.cks!, Uint8Array.of(1))
    const ad = sessionAssociatedData(s, Uint8Array.of(SEALED_VERSION))
    const body = aeadSeal(mk, nonce, plaintext, [ad, encryptedHeader])
    const before = b.store.kvGet(SESSION_NAMESPACE, hex(a.key.publicKey))
    throwsCode(() => b.e2e.open(sealRatchetMessage(concatBytes(encryptedHeader, body))), 'malformed')
    assert.deepEqual(b.store.kvGet(SESSION_NAMESPACE, hex(a.key.publicKey)), before)
    b.reopen() // the stored session still reads
  })

  it('sets aside a stored session that cannot be read, and opens with the others', () => {
    const a = device(1)
    const b = device(2)
    const c = device(3)
    b.e2e.open(a.e2e.seal({ deviceKey: b.key.publicKey, bundle: b.e2e.bundle() }, text('from a')))
    b.e2e.open(c.e2e.seal({ deviceKey: b.key.publicKey, bundle: b.e2e.bundle() }, text('from c')))
    const damaged = Uint8Array.of(0x81, 0x01) // a record of one session that is not one
    b.store.kvSet(SESSION_NAMESPACE, hex(a.key.publicKey), damaged)
    const told: string[] = []
    const e2e = openSessionStore({
      store: b.store,
      device: b.key,
      now: () => 1_750_000_000_000,
      onUnreadable: (key, err) => told.push(`${key} ${(err as { code?: string }).code}`),
    })
    assert.deepEqual(told, [`${hex(a.key.publicKey)} malformed`])
    assert.equal(b.store.kvGet(SESSION_NAMESPACE, hex(a.key.publicKey)), undefined)
    assert.deepEqual(b.store.kvGet(UNREADABLE_SESSION_NAMESPACE, hex(a.key.publicKey)), damaged)
    // The others are there: C's session still opens C's next message.
    assert.equal(str(e2e.open(c.e2e.seal({ deviceKey: b.key.publicKey }, text('again'))).content), 'again')
    // A starts again with a first contact, which opens.
    const fresh = device(1)
    assert.equal(
      str(
        e2e.open(fresh.e2e.seal({ deviceKey: b.key.publicKey, bundle: e2e.bundle() }, text('anew'))).content,
      ),
      'anew',
    )
  })
})
