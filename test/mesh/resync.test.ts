/**
 * `MeshCore.resync`: after a host's step was undone (its frames never sent), the core says again
 * what the start of a link says, and keeps what its neighbours told it: routes through them stay,
 * and messages still go. (Taking the links down and up instead forgot every neighbour's Hello, and
 * with it every route, until the neighbour happened to say Hello again.)
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeFrame, FrameKind } from '../../src/mesh/frames.ts'
import { MeshNet } from '../helpers/mesh-net.ts'

describe('mesh: resync', () => {
  it('greets every neighbour again and forgets nothing they said', () => {
    const net = new MeshNet({ seed: 3 })
    for (const n of ['A', 'B', 'C']) net.add(n)
    net.link('A', 'B')
    net.link('B', 'C')
    net.run(5_000)
    const a = net.nodes.get('A')!
    const [b, c] = [net.nodes.get('B')!, net.nodes.get('C')!]
    assert.equal(a.core!.nextHop(c.tag), 'B')
    net.record = true
    const before = net.frames.length
    a.core!.resync()
    const greeted = net.frames
      .slice(before)
      .filter((f) => f.from === 'A')
      .map((f) => decodeFrame(f.frame).kind)
    // (A Summary too, when something is held or was delivered lately; nothing is, here.)
    assert.deepEqual(greeted, [FrameKind.hello, FrameKind.routes])
    net.run(net.now + 1_000)
    assert.equal(a.core!.nextHop(b.tag), 'B')
    assert.equal(a.core!.nextHop(c.tag), 'B')
    const id = net.send('A', 'C', 'after the resync')
    net.run(net.now + 5_000)
    assert.deepEqual(
      c.delivered.map((d) => new TextDecoder().decode(d.payload)),
      ['after the resync'],
    )
    assert.equal(a.states.filter((s) => s.id === id).at(-1)?.state, 'delivered')
  })
})
