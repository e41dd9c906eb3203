import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MeshNet } from '../helpers/mesh-net.ts'

const text = (d: { payload: Uint8Array }) => new TextDecoder().decode(d.payload)

function line(): MeshNet {
  const net = new MeshNet({ seed: 7 })
  for (const n of ['A', 'B', 'D', 'C']) net.add(n)
  net.link('A', 'B')
  net.link('B', 'D')
  net.link('D', 'C')
  return net
}

/** The line, with C gone and `text` sent from A to C a second later: relayed, waiting for C. */
function sentWhileCIsAway(text: string) {
  const net = line()
  net.run(2_000)
  net.stop('C')
  const a = net.nodes.get('A')!
  const id = net.send('A', 'C', text)
  net.run(net.now + 1_000)
  return { net, a, id }
}

describe('mesh: the A–B–D–C line', () => {
  it('a message from A reaches C through B and D, once, and A sees it delivered', () => {
    const net = line()
    net.run(2_000)
    const id = net.send('A', 'C', 'hello C')
    net.run(10_000)
    const c = net.nodes.get('C')!
    assert.deepEqual(c.delivered.map(text), ['hello C'])
    const states = net.nodes
      .get('A')!
      .states.filter((s) => s.id === id)
      .map((s) => s.state)
    assert.deepEqual(states, ['queued', 'sent', 'relayed', 'delivered'])
    assert.equal(net.nodes.get('A')!.store.getMessage(id)?.state, 'delivered')
    for (const n of ['A', 'B', 'D', 'C']) {
      assert.deepEqual(net.nodes.get(n)!.core!.heldIds(), [], `${n} holds no copy after the ack`)
      assert.equal(net.nodes.get(n)!.store.custodyUsage().count, 0)
    }
    assert.equal(net.nodes.get('A')!.store.outboxSize(), 0)
  })

  it('A knows only B, yet learns a route to C (distance vector)', () => {
    const net = line()
    net.run(2_000)
    assert.equal(net.nodes.get('A')!.core!.nextHop(net.nodes.get('C')!.tag), 'B')
    assert.equal(net.nodes.get('C')!.core!.nextHop(net.nodes.get('A')!.tag), 'D')
  })

  it('with D offline the message waits in custody and reaches C once D returns', () => {
    const net = line()
    net.run(2_000)
    net.stop('D')
    net.run(100_000) // routes through D expire
    const id = net.send('A', 'C', 'wait for D')
    net.run(200_000)
    assert.equal(net.nodes.get('C')!.delivered.length, 0)
    const held = [...net.nodes.values()].filter(
      (n) => n.core?.heldIds().includes(id) || n.store.getCustody(id),
    )
    assert.ok(held.length > 0, 'someone holds the message')
    net.start('D')
    net.link('B', 'D')
    net.link('D', 'C')
    net.run(600_000)
    assert.deepEqual(net.nodes.get('C')!.delivered.map(text), ['wait for D'])
    assert.equal(net.nodes.get('A')!.store.getMessage(id)?.state, 'delivered')
    for (const n of net.nodes.values()) {
      assert.equal(n.store.getCustody(id), undefined, `${n.name} dropped its copy`)
      assert.equal(n.store.getOutbox(id), undefined)
    }
  })

  it("a relay takes its source's late retry when the copy it passed on was lost further on", () => {
    const { net, id } = sentWhileCIsAway('lost at D')
    net.run(net.now + 5_000)
    assert.ok(net.nodes.get('D')!.store.getCustody(id), 'D took custody')
    assert.equal(net.nodes.get('B')!.store.getCustody(id), undefined, 'B passed it on')
    // D loses its store (a wiped phone, say) and comes back empty; C is back too.
    net.stop('D')
    net.add('D')
    net.start('C')
    net.link('B', 'D')
    net.link('D', 'C')
    net.run(net.now + 20 * 60_000)
    assert.equal(net.nodes.get('C')!.delivered.length, 0, 'nobody holds a copy until A tries again')
    // A tries again after 30 minutes. B saw the message then, from A: that is no loop.
    net.run(net.now + 20 * 60_000)
    assert.deepEqual(net.nodes.get('C')!.delivered.map(text), ['lost at D'])
    assert.equal(net.nodes.get('A')!.store.getMessage(id)?.state, 'delivered')
  })
})

describe('mesh: retries', () => {
  it('a source that kept some of its copies still tries again once its retry time comes', () => {
    const net = new MeshNet({ seed: 7 })
    for (const n of ['A', 'N', 'M', 'D']) net.add(n)
    net.link('N', 'M')
    net.link('M', 'D')
    net.run(1_000)
    const id = net.send('A', 'D', 'kept copies')
    net.run(net.now + 20 * 60_000)
    // A meets N: it sprays part of its budget to N before N's routes arrive, and keeps the rest.
    net.link('A', 'N')
    net.unlink('M', 'D')
    net.run(net.now + 1_000)
    assert.ok(net.nodes.get('M')!.core!.heldIds().includes(id), 'M holds a copy')
    // M loses its store, so the copy beyond N is gone; the way to D is back.
    net.stop('M')
    net.add('M')
    net.link('N', 'M')
    net.link('M', 'D')
    net.run(net.now + 23 * 60 * 60_000)
    assert.deepEqual(net.nodes.get('D')!.delivered.map(text), ['kept copies'])
  })
})

describe('mesh: a message the recipient cannot open', () => {
  it('is never acknowledged and leaves no record, so a copy that opens later still gets in', () => {
    const net = line()
    const c = net.nodes.get('C')!
    c.refuse = () => 'decrypt_failed: not for any session held here'
    net.run(2_000)
    const id = net.send('A', 'C', 'unreadable')
    net.run(10_000)
    assert.equal(c.delivered.length, 0)
    assert.equal(
      c.store.getMessage(id),
      undefined,
      'nothing kept: junk under this ID must not block the real one',
    )
    assert.ok(c.core!.stats.deliveriesUnopened >= 1)
    const states = () =>
      net.nodes
        .get('A')!
        .states.filter((s) => s.id === id)
        .map((s) => s.state)
    assert.ok(!states().includes('delivered'), states().join(','))
    // A retransmission is refused too, and not acknowledged.
    net.run(3_600_000)
    assert.ok(!states().includes('delivered'), states().join(','))
  })

  it('a copy that opens, coming after one that did not (altered on the way), is delivered', () => {
    const net = new MeshNet({ seed: 21 })
    const a = net.add('A')
    const c = net.add('C')
    net.link('A', 'C')
    c.refuse = () => 'decrypt_failed: altered on the way'
    net.run(2_000)
    const id = net.send('A', 'C', 'first copy altered')
    net.run(10_000)
    assert.equal(c.delivered.length, 0)
    // The next copy opens: A's retry.
    c.refuse = undefined
    net.run(net.now + 4 * 3_600_000)
    assert.equal(c.delivered.length, 1)
    assert.ok(a.states.some((s) => s.id === id && s.state === 'delivered'))
  })

  it('a node that restarts gets what waited for it at once, not at the next route dump', () => {
    // C goes away while A's message is on its way; when C comes back (its store kept), it starts
    // a new routing seqno, so D takes its route at once, and the relay holding the message asks
    // again when its route request backs off rather than at the 5-minute dump.
    const net = line()
    net.run(2_000)
    net.stop('C')
    net.run(net.now + 100_000) // routes to C expire
    const id = net.send('A', 'C', 'while you were away')
    net.run(net.now + 20_000)
    assert.equal(net.nodes.get('C')!.delivered.length, 0)
    net.start('C')
    net.link('D', 'C')
    net.run(net.now + 10_000)
    assert.deepEqual(net.nodes.get('C')!.delivered.map(text), ['while you were away'])
    assert.ok(net.nodes.get('A')!.states.some((s) => s.id === id && s.state === 'delivered'))
  })
})

describe('mesh: opaque messages (proof and source sealed inside the body)', () => {
  const has = (frame: Uint8Array, part: Uint8Array) => Buffer.from(frame).includes(Buffer.from(part))
  /** `frame` with the first occurrence of `part` cut out. */
  const without = (frame: Uint8Array, part: Uint8Array) => {
    const at = Buffer.from(frame).indexOf(Buffer.from(part))
    return at < 0 ? frame : new Uint8Array([...frame.subarray(0, at), ...frame.subarray(at + part.length)])
  }
  /** C's application, which finds secret and source where `sendSealed` put them. */
  const opensBodies = (net: MeshNet) => {
    const c = net.nodes.get('C')!
    c.proofOf = (d) => d.payload.slice(0, 16)
    c.sourceOf = (d) => d.payload.slice(16, 32)
    c.ackTagOf = (d) => d.payload.slice(32, 48)
    return c
  }

  it('A sees delivered once C hands back the proof; relays never saw the secret or the source', () => {
    const net = line()
    net.record = true
    const c = opensBodies(net)
    net.run(2_000)
    const secret = new Uint8Array(16).fill(0xa7)
    const a = net.nodes.get('A')!
    const { id, body } = net.sendSealed('A', 'C', 'sealed proof', secret)
    net.run(net.now + 10_000)
    assert.equal(c.delivered.length, 1)
    assert.deepEqual(
      net.nodes
        .get('A')!
        .states.filter((s) => s.id === id)
        .map((s) => s.state),
      ['queued', 'sent', 'relayed', 'delivered'],
    )
    for (const n of net.nodes.values()) assert.deepEqual(n.core!.heldIds(), [], `${n.name} holds no copy`)
    // Every frame that carried the message holds A's tag and the secret only inside the body,
    // which a real sender seals end to end.
    const carrying = net.frames.filter((f) => has(f.frame, body))
    assert.ok(carrying.length >= 3, 'the message crossed the three links')
    for (const f of carrying) {
      assert.ok(!has(without(f.frame, body), net.nodes.get('A')!.tag), 'no source beside the body')
      assert.ok(!has(without(f.frame, body), secret), 'no secret beside the body')
    }
    // The proof went back along the path the message came, which is C's route to A: no
    // acknowledgement envelope followed it. No frame, outside the sealed body, holds both A's tag
    // and the proof, so no relay learns who wrote to whom.
    const ackTag = a.core!.ackTagFor(secret)
    assert.ok(
      !net.frames.some((f) => f.from === 'C' && has(f.frame, a.tag) && has(f.frame, ackTag)),
      'no acknowledgement envelope behind the proof',
    )
    for (const f of net.frames) {
      const outside = without(f.frame, body)
      assert.ok(!(has(outside, a.tag) && has(outside, secret)), 'no frame links A to the proof')
    }
  })

  it('without the proof its ID commits to, C does not acknowledge', () => {
    const net = line()
    const c = opensBodies(net)
    c.proofOf = () => new Uint8Array(16).fill(1) // not the secret the ID was made from
    net.run(2_000)
    const { id } = net.sendSealed('A', 'C', 'no proof', new Uint8Array(16).fill(0x5c))
    net.run(net.now + 60_000)
    // What C's application did with it is undone: the genuine copy must still open later.
    assert.equal(c.store.getMessage(id), undefined)
    assert.equal(c.delivered.length, 0)
    assert.ok(c.core!.stats.deliveriesUnopened >= 1)
    assert.ok(!net.nodes.get('A')!.states.some((s) => s.id === id && s.state === 'delivered'))
  })

  it('with the source it found in the body, C keeps an acknowledgement for A when the way back is down', () => {
    for (const knowsSource of [true, false]) {
      const net = line()
      const c = opensBodies(net)
      if (!knowsSource) c.sourceOf = undefined
      // C's only link fails the moment it opens the message.
      const open = c.proofOf!
      c.proofOf = (d) => {
        net.unlink('D', 'C')
        return open(d)
      }
      net.run(2_000)
      const { id } = net.sendSealed('A', 'C', 'way back down', new Uint8Array(16).fill(0x21))
      net.run(net.now + 1_000)
      assert.equal(c.delivered.length, 1)
      // With a source, an acknowledgement envelope waits in C's custody for a path to A; without
      // one, the proof can travel back only along the path the message came.
      assert.equal(c.core!.heldIds().length, knowsSource ? 1 : 0, `source known: ${knowsSource}`)
      net.link('D', 'C')
      net.run(net.now + 10_000)
      assert.ok(net.nodes.get('A')!.states.some((s) => s.id === id && s.state === 'delivered'))
    }
  })

  it('a proof whose way back broke reaches A at its retry (A moved while it travelled)', () => {
    const net = line()
    net.add('E')
    const c = opensBodies(net)
    // The moment C opens the message, A leaves B and reaches C through E instead. The message came
    // along C's route to A, so its proof walks back through D and B, and stops at B: A is gone
    // from there. A's retry (30 minutes on) reaches C through E, and C answers it from the proof
    // it kept.
    const open = c.proofOf!
    c.proofOf = (d) => {
      net.unlink('A', 'B')
      net.link('A', 'E')
      net.link('E', 'C')
      return open(d)
    }
    net.run(2_000)
    const { id } = net.sendSealed('A', 'C', 'A moves', new Uint8Array(16).fill(0x21))
    net.run(net.now + 60_000)
    assert.equal(c.delivered.length, 1)
    const delivered = () => net.nodes.get('A')!.states.some((s) => s.id === id && s.state === 'delivered')
    assert.ok(!delivered(), 'not yet: the proof waits at B')
    net.run(net.now + 31 * 60_000)
    assert.ok(delivered())
    assert.equal(c.delivered.length, 1, 'the retry is not delivered again')
    for (const n of net.nodes.values()) assert.deepEqual(n.core!.heldIds(), [], `${n.name} holds nothing`)
  })

  it('a repeat that reaches C after a restart is acknowledged again from the kept proof', () => {
    const net = line()
    net.record = true
    const c = opensBodies(net)
    net.run(2_000)
    const secret = new Uint8Array(16).fill(0x33)
    const { id, body } = net.sendSealed('A', 'C', 'twice', secret)
    net.run(net.now + 10_000)
    assert.equal(c.delivered.length, 1)
    const carried = net.frames.filter((f) => f.from === 'D' && f.to === 'C' && has(f.frame, body))
    assert.ok(carried.length > 0)
    // C restarts (its memory of proofs is gone) and the same envelope arrives again from D.
    net.stop('C')
    net.start('C')
    net.link('D', 'C')
    net.run(net.now + 1_000)
    c.proofOf = () => assert.fail('a repeat is not opened again')
    const before = net.frames.length
    for (const f of carried) c.core!.receive('D', f.frame)
    net.run(net.now + 1_000)
    assert.equal(c.delivered.length, 1)
    assert.equal(c.store.getMessage(id)?.state, 'received')
    assert.ok(
      net.frames.slice(before).some((f) => f.from === 'C' && f.to === 'D' && has(f.frame, secret)),
      'C sent the proof back',
    )
  })
})

describe('mesh: giving up a message', () => {
  it('abandon makes an own undelivered message failed and drops it from the outbox; nothing else', () => {
    const { net, a, id } = sentWhileCIsAway('never mind')
    assert.ok(a.store.getOutbox(id) !== undefined)
    assert.equal(a.core!.abandon(id, 'sent again as 00112233445566778899aabbccddeeff'), true)
    assert.equal(a.store.getMessage(id)?.state, 'failed')
    assert.match(a.store.getMessage(id)?.stateReason ?? '', /sent again as/)
    assert.equal(a.store.getOutbox(id), undefined)
    assert.ok(!a.core!.heldIds().includes(id))
    assert.deepEqual(
      a.states.filter((s) => s.id === id).map((s) => s.state),
      ['queued', 'sent', 'relayed', 'failed'],
    )
    // Not ours, not held, or already given up: nothing to do.
    assert.equal(a.core!.abandon(id, 'again'), false)
    assert.equal(a.core!.abandon('00'.repeat(16), 'unknown'), false)
    // A relay cannot give up what it only holds: D holds the copy on its way to C, and keeps it.
    const d = net.nodes.get('D')!
    assert.ok(d.core!.heldIds().includes(id), 'D holds the copy for C')
    assert.equal(d.core!.abandon(id, 'not mine'), false)
    assert.ok(d.core!.heldIds().includes(id), 'D still holds the copy')
    assert.ok(d.store.getCustody(id) !== undefined, 'D keeps the copy in custody')
    assert.equal(d.store.getMessage(id), undefined, 'D files no message of its own')
  })
})

describe('mesh: settling a message read before its proof came', () => {
  it('settle makes an own message read for good and drops it from the outbox; a late proof changes nothing', () => {
    const { net, a, id } = sentWhileCIsAway('read before the proof')
    assert.ok(a.store.getOutbox(id) !== undefined)
    // A relay cannot settle what it only holds: D holds the copy on its way to C, and keeps it.
    const d = net.nodes.get('D')!
    assert.ok(d.core!.heldIds().includes(id), 'D holds the copy for C')
    assert.equal(d.core!.settle(id), false)
    assert.ok(d.core!.heldIds().includes(id), 'D still holds the copy')
    assert.ok(d.store.getCustody(id) !== undefined, 'D keeps the copy in custody')
    assert.equal(a.core!.settle(id), true)
    assert.equal(a.store.getMessage(id)?.state, 'read')
    assert.equal(a.store.getOutbox(id), undefined)
    assert.ok(!a.core!.heldIds().includes(id))
    // C comes back and gets the copy the relays hold: its proof reaches A, which keeps read.
    net.start('C')
    net.link('D', 'C')
    net.run(net.now + 60_000)
    assert.equal(net.nodes.get('C')!.delivered.length, 1)
    assert.equal(a.store.getMessage(id)?.state, 'read')
    assert.deepEqual(
      a.states.filter((s) => s.id === id).map((s) => s.state),
      ['queued', 'sent', 'relayed', 'read'],
    )
    assert.equal(a.core!.settle(id), false, 'settled already')
  })
})

describe('mesh: read is final', () => {
  it('a message stored as read while still in the outbox stays read when its proof comes after a restart', () => {
    const { net, a, id } = sentWhileCIsAway('read, then restarted')
    // As an older Talken left it: read by receipt, the envelope still in the outbox.
    a.store.setMessageState(id, 'read', net.now)
    net.stop('A')
    net.start('A')
    net.link('A', 'B')
    net.start('C')
    net.link('D', 'C')
    net.run(net.now + 60_000)
    assert.equal(net.nodes.get('C')!.delivered.length, 1)
    assert.equal(a.store.getMessage(id)?.state, 'read')
    assert.equal(a.store.getOutbox(id), undefined)
  })
})
