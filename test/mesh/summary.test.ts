import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { decodeFrame, encodeFrame, FrameKind } from '../../src/mesh/frames.ts'
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

  it('a message delivered here is proven to its sender from the Summary, however many proofs came since', () => {
    const net = new MeshNet({ seed: 12, config: { proofCapacity: 8 } })
    const s = net.add('S')
    const r = net.add('R')
    net.link('S', 'R')
    net.run(1_000)
    // R takes the message, but what it answers (hop acknowledgement, proof) is lost with the link.
    const core = r.core!
    const receive = core.receive.bind(core)
    core.receive = (n, f) => {
      if (decodeFrame(f).kind === FrameKind.data) net.muted.add('R')
      receive(n, f)
      net.muted.delete('R')
    }
    const id = net.send('S', 'R', 'hello')
    net.run(net.now + 100)
    net.unlink('S', 'R')
    assert.equal(r.delivered.length, 1)
    // R then learns more proofs than it keeps, from some other neighbour.
    core.linkUp('M', 65_600)
    for (let i = 0; i < 4; i++) {
      core.receive(
        'M',
        encodeFrame({ kind: FrameKind.proofs, secrets: [0, 1, 2, 3].map(() => randomBytes(16)) }),
      )
    }
    core.linkDown('M')
    // They meet again: R's Summary says it has the message, so S does not hand it over; S's lists
    // it as held, and R answers with the proof.
    net.link('S', 'R')
    net.run(net.now + 60_000)
    assert.equal(r.delivered.length, 1)
    assert.ok(
      s.states.some((x) => x.id === id && x.state === 'delivered'),
      'S learned it was delivered',
    )
  })
})
