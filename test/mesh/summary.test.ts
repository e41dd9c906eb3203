import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeFrame, FrameKind } from '../../src/mesh/frames.ts'
import { decodeEnvelope, messageIdHex } from '../../src/wire/envelope.ts'
import { MeshNet } from '../helpers/mesh-net.ts'

/** Data frames carrying message `id` that `from` sent to `to`. */
function dataFrames(net: MeshNet, from: string, to: string, id: string): number {
  return net.frames.filter((f) => {
    if (f.from !== from || f.to !== to) return false
    const frame = decodeFrame(f.frame)
    return frame.kind === FrameKind.data && messageIdHex(decodeEnvelope(frame.envelope).id) === id
  }).length
}

describe('mesh: the Summary lists what a node has, received messages included', () => {
  it('a copy whose destination already has the message is not handed over, and is dropped', () => {
    const net = new MeshNet({ seed: 11 })
    for (const n of ['A', 'B', 'C']) net.add(n)
    net.record = true
    // A has no route to C: it sprays half of its copies to B, its only neighbour.
    net.link('A', 'B')
    net.run(2_000)
    const id = net.send('A', 'C', 'once')
    net.run(4_000)
    assert.ok(net.nodes.get('B')!.core!.heldIds().includes(id), 'B took copies')
    net.unlink('A', 'B')
    // A meets C itself and delivers.
    net.link('A', 'C')
    net.run(8_000)
    assert.equal(net.nodes.get('C')!.delivered.length, 1)
    net.unlink('A', 'C')
    net.run(10_000)
    // B, still holding copies, meets C: C's Summary says it has the message.
    net.link('B', 'C')
    net.run(14_000)
    assert.equal(dataFrames(net, 'B', 'C', id), 0, 'B never sent C what C had')
    assert.deepEqual(
      net.nodes.get('B')!.core!.heldIds(),
      [],
      'B learned the proof from C and dropped its copies',
    )
    assert.equal(net.nodes.get('B')!.store.getCustody(id), undefined)
    assert.equal(net.nodes.get('C')!.delivered.length, 1)
  })
})
