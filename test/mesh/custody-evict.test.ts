/**
 * Custody full: the copy given up to make room for a newcomer is given up only if the newcomer is
 * then stored. One the store refuses (over its sender's byte quota, or a full disk) costs nobody
 * a copy, in the store or in memory.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeFrame, encodeFrame, FrameKind, HopAckStatus } from '../../src/mesh/frames.ts'
import { MeshCore } from '../../src/mesh/mesh-core.ts'
import { encodeMeshPayload } from '../../src/mesh/mesh-payload.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'
import type { Store } from '../../src/store/store.ts'
import { EnvelopeFlags, encodeEnvelope } from '../../src/wire/envelope.ts'
import { fillable } from '../helpers/full-disk.ts'

/** A tag from a name (padded with dots). */
const tag = (s: string) => Uint8Array.from(Buffer.from(s.padEnd(16, '.')).subarray(0, 16))

type Sent = Array<{ to: string; frame: ReturnType<typeof decodeFrame> }>

/** A mesh core over `store` with neighbours A and B, custody full at 10 envelopes. */
function relay(store: Store) {
  const now = 1_000_000
  const sent: Sent = []
  const core = new MeshCore({
    self: tag('Z'),
    store,
    config: { custodyCount: { perOrigin: 100, total: 10 } },
    host: {
      now: () => now,
      random: Math.random,
      transmit: (to, bytes) => sent.push({ to, frame: decodeFrame(bytes) }),
      deliver: () => undefined,
      stateChanged: () => {},
      wakeAt: () => {},
      log: () => {},
    },
  })
  for (const n of ['A', 'B']) {
    core.linkUp(n, 65_600)
    core.receive(n, encodeFrame({ kind: FrameKind.hello, node: tag(n), seqno: 1, encounters: 0 }))
  }
  let next = 0
  /** Has `from` hand a custody envelope of `size` payload bytes; returns the hop ack status. */
  const hand = (from: string, size: number): number => {
    const id = new Uint8Array(16)
    new DataView(id.buffer).setUint32(0, ++next)
    const envelope = encodeEnvelope({
      id,
      destination: tag('nobody'),
      hopLimit: 30,
      expires: Math.floor(now / 1000) + 3600,
      copies: 1,
      flags: EnvelopeFlags.ackRequested,
      payload: encodeMeshPayload({ kind: 3, body: new Uint8Array(size) }),
    })
    // Each frame a step of its own, as the node runs them.
    store.transaction(() => core.receive(from, encodeFrame({ kind: FrameKind.data, envelope })))
    const last = sent.at(-1)!.frame
    return last.kind === FrameKind.hopAck ? last.status : -1
  }
  return { core, hand }
}

describe('mesh: custody full, a newcomer the store refuses', () => {
  it('over its byte quota: the copy that would have made room for it stays', () => {
    const store = createMemoryStore({ custodyQuota: { perOriginBytes: 3_000, totalBytes: 1_000_000 } })
    const { core, hand } = relay(store)
    for (let i = 0; i < 10; i++) assert.equal(hand('A', 10), HopAckStatus.taken)
    // B holds nothing here: it gets in, in the place of A's oldest.
    assert.equal(hand('B', 2_800), HopAckStatus.taken)
    assert.equal(store.custodyUsage('A').count, 9)
    assert.equal(core.stats.custodyEvicted, 1)
    // Custody is full again, and B's byte quota too: refused, and A loses nothing more.
    for (let i = 0; i < 8; i++) assert.equal(hand('B', 500), HopAckStatus.refused)
    assert.equal(store.custodyUsage('A').count, 9, 'A keeps its copies in the store')
    assert.equal(store.custodyUsage('B').count, 1)
    assert.equal(core.load().storedMessages, 10, 'and in memory')
    assert.equal(core.stats.custodyEvicted, 1)
    assert.equal(core.stats.custodyRefused, 8)
  })

  it('on a full disk: the copy that would have made room for it stays', () => {
    const disk = { full: false }
    const store = fillable(createMemoryStore(), disk)
    const { core, hand } = relay(store)
    for (let i = 0; i < 10; i++) assert.equal(hand('A', 10), HopAckStatus.taken)
    disk.full = true
    assert.equal(hand('B', 10), HopAckStatus.refused)
    disk.full = false
    assert.equal(store.custodyUsage('A').count, 10)
    assert.equal(core.load().storedMessages, 10)
    assert.equal(core.stats.custodyEvicted, 0)
    // Once the disk has room, B gets in as before.
    assert.equal(hand('B', 10), HopAckStatus.taken)
    assert.equal(store.custodyUsage('A').count, 9)
    assert.equal(store.custodyUsage('B').count, 1)
    assert.equal(core.stats.custodyEvicted, 1)
    assert.equal(core.load().storedMessages, 10)
  })
})
