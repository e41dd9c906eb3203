/**
 * What a destination sends back on the link a message came by: its proof of delivery, once, and
 * nothing else (the proof ends the flight there as a hop acknowledgement would). It sent the
 * proof twice and a hop acknowledgement beside it: three frames for each message delivered.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeFrame, FrameKind } from '../../src/mesh/frames.ts'
import { MeshNet } from '../helpers/mesh-net.ts'

describe('mesh: what a destination answers', () => {
  it('one Proofs frame per message it was handed, and the sender marks it delivered', () => {
    const net = new MeshNet({ seed: 21 })
    for (const n of ['A', 'B']) net.add(n)
    net.link('A', 'B')
    net.run(1_000)
    net.record = true
    const ids = [net.send('A', 'B', 'one'), net.send('A', 'B', 'two'), net.send('A', 'B', 'three')]
    net.run(5_000)
    const fromB = net.frames.filter((f) => f.from === 'B').map((f) => decodeFrame(f.frame))
    const kinds = fromB.map((f) => f.kind)
    assert.deepEqual(
      kinds,
      [FrameKind.proofs, FrameKind.proofs, FrameKind.proofs],
      `B sent ${JSON.stringify(kinds)}`,
    )
    const a = net.nodes.get('A')!
    for (const id of ids) assert.equal(a.store.getMessage(id)?.state, 'delivered')
    assert.equal(a.core!.heldIds().length, 0, 'A holds nothing more')
  })
})

describe('mesh: filing what is sent', () => {
  it('a message sent in place of another is filed at that one’s time', () => {
    const net = new MeshNet({ seed: 22 })
    net.add('A')
    net.add('B')
    const a = net.nodes.get('A')!
    const id = a.core!.send(net.nodes.get('B')!.tag, new Uint8Array([1]), { createdAt: 1234 })
    assert.equal(a.store.getMessage(id)?.createdAt, 1234)
    const later = a.core!.send(net.nodes.get('B')!.tag, new Uint8Array([2]))
    assert.equal(a.store.getMessage(later)?.createdAt, net.now)
  })
})
