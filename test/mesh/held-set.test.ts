import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { HeldSet, makeHeld } from '../../src/mesh/held.ts'
import { EnvelopeFlags } from '../../src/wire/envelope.ts'

function held(idByte: number, destByte: number, payloadBytes: number, own = false, expires = 1_000) {
  return makeHeld(
    {
      id: new Uint8Array(16).fill(idByte),
      destination: new Uint8Array(16).fill(destByte),
      hopLimit: 8,
      expires,
      copies: own ? 0 : 4,
      flags: EnvelopeFlags.ackRequested,
      payload: new Uint8Array(payloadBytes),
    },
    { own, origin: 'n1', receivedAt: 0, nextRetryAt: 500_000 },
  )
}

describe('mesh: the held set', () => {
  it('keeps bytes and destinations as envelopes come, are replaced and go', () => {
    const set = new HeldSet()
    const a = held(1, 9, 100)
    const b = held(2, 9, 50)
    set.add(a)
    set.add(b)
    assert.equal(set.size, 2)
    assert.equal(set.bytes, 150)
    assert.ok(set.goesTo(a.destKey))
    // The same ID again (a reload, or a larger budget) replaces, and counts once.
    set.add(held(1, 9, 30))
    assert.equal(set.size, 2)
    assert.equal(set.bytes, 80)
    assert.equal(set.delete(b), true)
    assert.equal(set.delete(b), false, 'not held twice')
    assert.ok(set.goesTo(a.destKey), 'one envelope still goes there')
    assert.equal(set.delete(a), true)
    assert.equal(set.goesTo(a.destKey), false)
    assert.equal(set.bytes, 0)
    assert.equal(set.nextDue(10_000), Number.POSITIVE_INFINITY)
  })

  it('is due at the earliest expiry, overdue hop ack, end of a refusal or own retry', () => {
    const set = new HeldSet()
    const relay = held(1, 9, 10)
    set.add(relay)
    assert.equal(set.nextDue(10_000), 1_000_000, 'the expiry')
    // A flight or a refusal is marked when it starts; when it ends it drops out by itself.
    relay.inflight.set('n2', { copies: 2, sentAt: 5_000 })
    set.markTimed(relay)
    assert.equal(set.nextDue(10_000), 15_000, 'a hop acknowledgement overdue')
    relay.refusedUntil.set('n3', 12_000)
    set.markTimed(relay)
    assert.equal(set.nextDue(10_000), 12_000, 'a refusal that ends')
    relay.refusedUntil.delete('n3')
    relay.inflight.delete('n2')
    assert.equal(set.nextDue(10_000), 1_000_000, 'both over: the expiry again')
    const own = held(2, 9, 10, true)
    own.nextRetryAt = 11_000
    set.add(own)
    assert.equal(set.nextDue(10_000), 11_000, 'a retry of our own message with every copy handed out')
    // The earliest expiry leaving: the next one takes its place.
    const later = held(3, 9, 10, false, 2_000)
    set.add(later)
    set.delete(own)
    set.delete(relay)
    assert.equal(set.nextDue(10_000), 2_000_000)
  })
})
