import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { copiesToHand, type ForwardingFacts, fairHandoffs } from '../../src/mesh/forwarding-policy.ts'
import { type Held, makeHeld } from '../../src/mesh/held.ts'
import { tagKey } from '../../src/mesh/routing-table.ts'
import { EnvelopeFlags } from '../../src/wire/envelope.ts'

const DEST = new Uint8Array(16).fill(0xdd)
let nextId = 1

function held(copies: number, origin = 'o1'): Held {
  return makeHeld(
    {
      id: new Uint8Array(16).fill(nextId++),
      destination: DEST,
      hopLimit: 8,
      expires: 1_000,
      copies,
      flags: EnvelopeFlags.ackRequested,
      payload: new Uint8Array(4),
    },
    { own: false, origin, receivedAt: 0, nextRetryAt: Number.POSITIVE_INFINITY },
  )
}

/** Facts about neighbour `n2`, a relay as central as we are, with no route known. */
function facts(over: Partial<ForwardingFacts> = {}): ForwardingFacts {
  return {
    neighbour: 'n2',
    neighbourTag: 'aa'.repeat(16),
    neighbourHasIt: false,
    destinationIsNeighbour: false,
    routeNextHop: undefined,
    neighbourEncounters: 10,
    ourEncounters: 10,
    sprayCentrality: 0.8,
    now: 0,
    ...over,
  }
}

describe('mesh: the forwarding decision', () => {
  it('hands every copy to the destination itself', () => {
    assert.equal(copiesToHand(held(12), facts({ neighbourTag: tagKey(DEST) })), 12)
  })

  it('waits for the destination when it is another neighbour', () => {
    assert.equal(copiesToHand(held(12), facts({ destinationIsNeighbour: true })), 0)
  })

  it('follows a selected route with every copy, and sprays past a next hop that refuses', () => {
    assert.equal(copiesToHand(held(12), facts({ routeNextHop: 'n2' })), 12)
    assert.equal(copiesToHand(held(12), facts({ routeNextHop: 'n3' })), 0, 'not to another neighbour')
    const h = held(12)
    h.refusedUntil.set('n3', 5_000)
    assert.equal(copiesToHand(h, facts({ routeNextHop: 'n3' })), 6, 'n3 refuses: spray instead')
  })

  it('sprays to a neighbour central enough in proportion to the encounters, and keeps the last copy', () => {
    assert.equal(copiesToHand(held(12), facts()), 6)
    assert.equal(copiesToHand(held(12), facts({ neighbourEncounters: 20 })), 8)
    assert.equal(copiesToHand(held(3), facts()), 2)
    assert.equal(copiesToHand(held(2), facts({ neighbourEncounters: 100 })), 1)
    assert.equal(copiesToHand(held(1), facts()), 0, 'the last copy waits for the destination or a route')
    assert.equal(copiesToHand(held(12), facts({ neighbourEncounters: 7 })), 0, 'below 0.8 × our encounters')
  })

  it('delegates: a copy holds out for a neighbour as central as the best it was handed to', () => {
    const h = held(12)
    h.threshold = 20
    assert.equal(copiesToHand(h, facts({ neighbourEncounters: 11 })), 0, 'below 0.8 × the threshold')
    assert.equal(copiesToHand(h, facts({ neighbourEncounters: 16 })), 7)
  })

  it('gives nothing to a neighbour that has it, holds it, or is still taking copies', () => {
    assert.equal(copiesToHand(held(12), facts({ neighbourHasIt: true })), 0)
    const holder = held(12)
    holder.holders.add('n2')
    assert.equal(copiesToHand(holder, facts()), 0)
    const inflight = held(12)
    inflight.inflight.set('n2', { copies: 6, sentAt: 0 })
    assert.equal(copiesToHand(inflight, facts()), 0)
  })

  it('takes origins in turn, so that a flood from one cannot crowd out the others', () => {
    const flood = Array.from({ length: 5 }, () => held(2, 'noisy'))
    const quiet = [held(2, 'quiet'), held(2, 'quiet')]
    const skipped = held(2, 'quiet')
    const order = fairHandoffs([...flood, skipped, ...quiet], (h) => (h === skipped ? 0 : 1), 5)
    assert.deepEqual(
      order.map(([h]) => h),
      [flood[0], quiet[0], flood[1], quiet[1], flood[2]],
    )
    assert.ok(order.every(([, k]) => k === 1))
    assert.equal(fairHandoffs(flood, () => 1, 0).length, 0, 'no room, nothing')
  })
})
