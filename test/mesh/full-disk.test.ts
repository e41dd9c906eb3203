/**
 * A full disk loses nothing: a node that cannot store a message refuses it (hop ack `refused`),
 * so whoever handed it over keeps it and asks again once the refusal ends, and it is taken once
 * there is room.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isStorageFailure } from '../../src/errors.ts'
import { decodeFrame, FrameKind } from '../../src/mesh/frames.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'
import { fillable, fullAtCommit } from '../helpers/full-disk.ts'
import { MeshNet } from '../helpers/mesh-net.ts'

const MINUTE = 60_000
const HOUR = 60 * MINUTE

/**
 * Runs each frame `name` receives as one step, as the node does; the step that takes the first
 * data frame fails at commit, and the frames it would have sent (the hop acknowledgement, the
 * proof) are gone. Returns how many steps were undone so far.
 */
function failFirstDataStep(net: MeshNet, name: string, disk: { full: boolean }): () => number {
  const node = net.nodes.get(name)!
  const core = node.core!
  const receive = core.receive.bind(core)
  let undone = 0
  core.receive = (n, f) => {
    const failing = undone === 0 && decodeFrame(f).kind === FrameKind.data
    if (failing) {
      disk.full = true
      net.muted.add(name)
    }
    try {
      node.store.transaction(() => receive(n, f))
    } catch (err) {
      // Only the full disk undoes a step; anything else is a bug, not the behaviour under test.
      if (!isStorageFailure(err)) throw err
      undone++
    }
    disk.full = false
    net.muted.delete(name)
  }
  return () => undone
}

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

  it('at commit of a send: the message never existed, and is never sent from memory', () => {
    const net = new MeshNet()
    const disk = { full: true }
    const a = net.add('A', { store: fullAtCommit(createMemoryStore(), disk) })
    const b = net.add('B')
    let id = ''
    assert.throws(() => a.store.transaction(() => (id = net.send('A', 'B', 'told it failed'))), /full/)
    disk.full = false
    assert.deepEqual(a.core!.heldIds(), [], 'memory follows the store')
    net.link('A', 'B')
    net.run(HOUR)
    assert.equal(b.delivered.length, 0, 'a message its sender has no record of')
    assert.equal(a.store.getMessage(id), undefined)
    // The next send goes out as usual.
    net.send('A', 'B', 'again')
    net.run(net.now + MINUTE)
    assert.deepEqual(
      b.delivered.map((d) => new TextDecoder().decode(d.payload)),
      ['again'],
    )
  })

  it('while a proof is handled: the step is undone, memory with it, and the proof counts when it comes again', () => {
    for (const at of ['statement', 'commit'] as const) {
      const net = new MeshNet()
      const disk = { full: false }
      const store =
        at === 'commit' ? fullAtCommit(createMemoryStore(), disk) : fillable(createMemoryStore(), disk)
      const a = net.add('A', { store })
      net.add('B')
      const core = a.core!
      // Each frame is one step (one transaction), as the node runs it; the first proof meets a full disk.
      const receive = core.receive.bind(core)
      let undone = 0
      core.receive = (n, f) => {
        if (undone === 0 && decodeFrame(f).kind === FrameKind.proofs) disk.full = true
        try {
          a.store.transaction(() => receive(n, f))
        } catch (err) {
          // Only the full disk undoes a step; anything else is a bug, not the behaviour under test.
          if (!isStorageFailure(err)) throw err
          undone++
        }
        disk.full = false
      }
      net.link('A', 'B')
      net.run(1_000)
      const id = net.send('A', 'B', 'hello')
      // B sends the proof twice (in its acknowledgement, and to the holder it handed it to): the
      // second must count, although the first was learned in a step that was undone.
      net.run(net.now + MINUTE)
      assert.equal(undone, 1, at)
      assert.equal(core.stats.malformed, 0, `${at}: a full disk is not a bad frame`)
      assert.equal(a.store.getMessage(id)?.state, 'delivered', at)
      assert.deepEqual(core.heldIds(), [], at)
      assert.equal(a.store.outboxSize(), 0, at)
    }
  })

  it('at commit of a delivery: memory is undone with it (no Summary claims the message), and it is taken when it comes again', () => {
    const net = new MeshNet()
    const disk = { full: false }
    const s = net.add('S')
    const r = net.add('R', { store: fullAtCommit(createMemoryStore(), disk) })
    const undone = failFirstDataStep(net, 'R', disk)
    net.link('S', 'R')
    net.run(1_000)
    const id = net.send('S', 'R', 'hello')
    net.run(net.now + 100)
    assert.equal(undone(), 1)
    // The node starts its links again after a step that was undone: Hello and Summary go out anew.
    net.unlink('S', 'R')
    net.link('S', 'R')
    net.run(net.now + HOUR)
    assert.deepEqual(
      r.delivered.map((d) => new TextDecoder().decode(d.payload)),
      ['hello'],
    )
    assert.ok(s.states.some((x) => x.id === id && x.state === 'delivered'))
  })

  it('at commit of a delivery a relay brought: the acknowledgement made for it is undone too', () => {
    const net = new MeshNet()
    const disk = { full: false }
    const s = net.add('S')
    net.add('X')
    const r = net.add('R', { store: fullAtCommit(createMemoryStore(), disk) })
    const undone = failFirstDataStep(net, 'R', disk)
    net.link('S', 'X')
    net.link('X', 'R')
    net.run(1_000)
    const id = net.send('S', 'R', 'hello')
    net.run(net.now + 100)
    assert.equal(undone(), 1)
    assert.deepEqual(r.core!.heldIds(), [], 'no acknowledgement of a delivery the store does not hold')
    // Another way from R back to S, where an acknowledgement held in memory would have gone.
    net.unlink('X', 'R')
    net.add('Y')
    net.link('S', 'Y')
    net.link('Y', 'R')
    net.run(net.now + 3 * HOUR)
    net.link('X', 'R')
    net.run(net.now + 3 * HOUR)
    assert.deepEqual(
      r.delivered.map((d) => new TextDecoder().decode(d.payload)),
      ['hello'],
    )
    assert.equal(r.store.getMessage(id)?.state, 'received')
    assert.ok(s.states.some((e) => e.id === id && e.state === 'delivered'))
  })

  it('when an expiry is due: the timer is undone, and comes again until the write fits', () => {
    const net = new MeshNet()
    const disk = { full: false }
    const a = net.add('A', { store: fillable(createMemoryStore(), disk) })
    net.add('B')
    const core = a.core!
    const timer = core.timer.bind(core)
    let undone = 0
    core.timer = () => {
      try {
        a.store.transaction(() => timer())
      } catch (err) {
        // Only the full disk undoes a step; anything else is a bug, not the behaviour under test.
        if (!isStorageFailure(err)) throw err
        undone++
      }
    }
    // Nobody to hand it to: A holds it until it expires, a minute later, with the disk full.
    const id = net.send('A', 'B', 'hello', MINUTE)
    disk.full = true
    net.run(net.now + 2 * MINUTE)
    assert.ok(undone >= 1)
    assert.ok(undone < 10, `tried again ${undone} times in a minute: backing off, not spinning`)
    assert.equal(a.store.getMessage(id)?.state, 'queued')
    disk.full = false
    net.run(net.now + 2 * MINUTE)
    assert.equal(a.store.getMessage(id)?.state, 'expired')
    assert.deepEqual(core.heldIds(), [])
  })
})
