/**
 * A full disk loses nothing: a node that cannot store a message refuses it (hop ack `refused`),
 * so whoever handed it over keeps it and asks again once the refusal ends, and it is taken once
 * there is room.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createMemoryStore } from '../../src/store/memory-store.ts'
import { fillable } from '../helpers/full-disk.ts'
import { MeshNet } from '../helpers/mesh-net.ts'

const MINUTE = 60_000

/**
 * A line from A to C (through `via`, if given) whose node `full` has a full disk when A sends;
 * room is made after a few seconds. Returns what C was handed and what A saw.
 */
function sendThroughFullDisk(full: string, via?: string) {
  const net = new MeshNet()
  const disk = { full: false }
  const names = via === undefined ? ['A', 'C'] : ['A', via, 'C']
  for (const name of names) net.add(name, name === full ? { store: fillable(createMemoryStore(), disk) } : {})
  for (let i = 1; i < names.length; i++) net.link(names[i - 1]!, names[i]!)
  net.run(1_000)
  disk.full = true
  const id = net.send('A', 'C', 'hello')
  net.run(net.now + 5_000)
  const a = net.nodes.get('A')!
  const c = net.nodes.get('C')!
  const whileFull = {
    delivered: c.delivered.length,
    refused: net.nodes.get(full)!.core?.stats,
    held: a.core?.heldIds(),
    deliveredState: a.states.some((s) => s.id === id && s.state === 'delivered'),
  }
  disk.full = false
  net.run(net.now + 10 * MINUTE)
  return {
    id,
    whileFull,
    texts: c.delivered.map((d) => new TextDecoder().decode(d.payload)),
    deliveredState: a.states.some((s) => s.id === id && s.state === 'delivered'),
    held: a.core?.heldIds(),
  }
}

describe('a full disk', () => {
  it('at the destination: the message is refused, kept by its sender, and taken once there is room', () => {
    const r = sendThroughFullDisk('C')
    assert.equal(r.whileFull.delivered, 0)
    assert.ok((r.whileFull.refused?.deliveriesRefused ?? 0) >= 1)
    assert.deepEqual(r.whileFull.held, [r.id], 'the sender still holds it')
    assert.equal(r.whileFull.deliveredState, false)
    assert.deepEqual(r.texts, ['hello'], 'delivered once')
    assert.equal(r.deliveredState, true)
    assert.deepEqual(r.held, [])
  })

  it('at a relay: custody is refused and the message goes on once there is room', () => {
    const r = sendThroughFullDisk('B', 'B')
    assert.equal(r.whileFull.delivered, 0)
    assert.ok((r.whileFull.refused?.custodyRefused ?? 0) >= 1)
    assert.deepEqual(r.whileFull.held, [r.id])
    assert.deepEqual(r.texts, ['hello'])
    assert.equal(r.deliveredState, true)
  })
})
