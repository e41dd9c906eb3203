import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DEFAULT_MESH_CONFIG, type MeshConfig } from '../../src/mesh/config.ts'
import { decodeFrame, encodeFrame, FrameKind, HopAckStatus } from '../../src/mesh/frames.ts'
import { datagramCharge } from '../../src/mesh/held.ts'
import { type MeshCore, MeshCore as RealMeshCore } from '../../src/mesh/mesh-core.ts'
import { encodeMeshPayload } from '../../src/mesh/mesh-payload.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'
import { DEFAULT_CUSTODY_QUOTA } from '../../src/store/store.ts'
import { decodeEnvelope, EnvelopeFlags, encodeEnvelope } from '../../src/wire/envelope.ts'
import { throwsCode } from '../helpers/errors.ts'
import { MeshNet } from '../helpers/mesh-net.ts'
import { prng } from '../helpers/prng.ts'

const text = (d: { payload: Uint8Array }) => new TextDecoder().decode(d.payload)

describe('mesh robustness', () => {
  it('malformed frames from a neighbour are dropped and counted, and traffic goes on', () => {
    const net = new MeshNet({ seed: 11 })
    for (const n of ['A', 'B', 'C']) net.add(n)
    net.link('A', 'B')
    net.link('B', 'C')
    net.run(1_000)
    const b = net.nodes.get('B')!.core!
    const r = prng(99)
    const valid = encodeFrame({
      kind: 1,
      envelope: encodeEnvelope({
        id: new Uint8Array(16).fill(1),
        destination: new Uint8Array(16).fill(2),
        hopLimit: 3,
        expires: 10,
        copies: 2,
        flags: 0,
        payload: new Uint8Array(20),
      }),
    })
    const before = b.stats.malformed
    for (let i = 0; i < 5_000; i++) {
      let frame: Uint8Array
      if (i % 3 === 0) frame = new Uint8Array(Math.floor(r() * 200)).map(() => Math.floor(r() * 256))
      else {
        frame = new Uint8Array(valid)
        frame[Math.floor(r() * frame.length)]! ^= 1 << Math.floor(r() * 8)
      }
      b.receive('A', frame)
    }
    assert.ok(b.stats.malformed - before > 1_000, `counted ${b.stats.malformed - before}`)
    net.send('A', 'C', 'still works')
    net.run(20_000)
    assert.deepEqual(net.nodes.get('C')!.delivered.map(text), ['still works'])
  })

  it('large messages cross Bluetooth-sized links in fragments', () => {
    const net = new MeshNet({ seed: 12 })
    for (const n of ['A', 'B', 'C']) net.add(n)
    net.link('A', 'B', 185)
    net.link('B', 'C', 244)
    net.run(1_000)
    const big = 'x'.repeat(5_000)
    net.send('A', 'C', big)
    net.run(20_000)
    assert.deepEqual(net.nodes.get('C')!.delivered.map(text), [big])
  })

  it('the application sees a message once, also when the recipient restarts and copies arrive again', () => {
    const net = new MeshNet({ seed: 13 })
    for (const n of ['A', 'B', 'C']) net.add(n)
    net.link('A', 'B')
    net.run(1_000)
    const id = net.send('A', 'C', 'once') // no route: A sprays copies to B
    net.run(5_000)
    net.link('B', 'C')
    net.run(5_000)
    net.stop('C')
    net.start('C')
    net.link('A', 'C')
    net.link('B', 'C')
    net.run(60_000)
    const c = net.nodes.get('C')!
    assert.equal(c.delivered.length, 1)
    assert.equal(c.store.getMessage(id)?.direction, 'in')
  })

  it('a message with no path expires with a reason', () => {
    const net = new MeshNet({ seed: 14 })
    for (const n of ['A', 'C']) net.add(n)
    const id = net.send('A', 'C', 'too late', 60_000)
    net.run(120_000)
    const a = net.nodes.get('A')!
    assert.equal(a.store.getMessage(id)?.state, 'expired')
    assert.ok(a.store.getMessage(id)?.stateReason)
    assert.equal(a.store.outboxSize(), 0)
  })

  it('a relay holds a copy no longer than its custody limit, and passes the lower expiry on', () => {
    const net = new MeshNet({ seed: 16, config: { custodyMaxMs: 60_000 } })
    for (const n of ['A', 'B', 'C', 'D']) net.add(n)
    net.link('A', 'B')
    net.run(1_000)
    // An hour to live, as the sender chose; C is linked to nobody.
    const id = net.send('A', 'C', 'far away', 3_600_000)
    net.run(5_000)
    const atB = net.nodes.get('B')!.store.getCustody(id)
    assert.ok(atB, 'B took a copy')
    assert.ok(atB.expiresAt <= 5_000 + 60_000, `B keeps it until ${atB.expiresAt}`)
    net.link('B', 'D')
    net.run(30_000)
    const atD = net.nodes.get('D')!.store.getCustody(id)
    assert.ok(atD, 'D took a copy from B')
    assert.ok(atD.expiresAt <= atB.expiresAt, `D keeps it until ${atD.expiresAt}, not longer than B`)
    net.run(70_000)
    assert.equal(net.nodes.get('B')!.store.getCustody(id), undefined)
    assert.equal(net.nodes.get('D')!.store.getCustody(id), undefined)
    // The sender's own copy lives as long as the sender said.
    assert.ok(net.nodes.get('A')!.store.getOutbox(id))
  })

  it('a relay over its custody quota refuses, and the sender keeps the message', () => {
    const net = new MeshNet({ seed: 15 })
    for (const n of ['A', 'B', 'C']) net.add(n)
    net.link('A', 'B')
    net.run(1_000)
    const b = net.nodes.get('B')!
    // Fill B's custody for origin A to the quota.
    b.store.putCustody({
      messageId: 'ff'.repeat(16),
      origin: 'A',
      destination: new Uint8Array(16),
      envelope: new Uint8Array(b.store.custodyQuota.perOriginBytes),
      copies: 1,
      expiresAt: Number.MAX_SAFE_INTEGER,
      receivedAt: 0,
    })
    const id = net.send('A', 'C', 'no room')
    net.run(5_000)
    assert.equal(b.store.getCustody(id), undefined)
    assert.ok(b.core!.stats.custodyRefused > 0)
    assert.ok(net.nodes.get('A')!.store.getOutbox(id))
  })

  it('frames taken as one batch (receiveAll) come to what taking them one by one does', () => {
    const net = new MeshNet({ seed: 5 })
    net.add('A')
    net.add('C')
    net.record = true
    net.link('A', 'C')
    net.run(1_000)
    for (let i = 0; i < 5; i++) net.send('A', 'C', `m${i}`)
    net.run(net.now + 1_000)
    const fromA = net.frames.filter((f) => f.from === 'A' && f.to === 'C').map((f) => f.frame)
    // A garbage frame in the middle is counted and skipped; the rest of the batch goes on.
    const batch = [...fromA.slice(0, 4), Uint8Array.of(0xff, 1, 2), ...fromA.slice(4)]
    const outcome = (take: (core: MeshCore) => void) => {
      const fresh = new MeshNet({ seed: 5 })
      fresh.add('A')
      const c = fresh.add('C')
      fresh.link('A', 'C')
      take(c.core!)
      fresh.run(fresh.now + 1_000)
      const { delivered, malformed, framesIn } = c.core!.stats
      return { texts: c.delivered.map(text).sort(), delivered, malformed, framesIn }
    }
    const oneByOne = outcome((core) => {
      for (const f of batch) core.receive('A', f)
    })
    const together = outcome((core) => core.receiveAll('A', batch))
    assert.deepEqual(oneByOne.texts, ['m0', 'm1', 'm2', 'm3', 'm4'])
    assert.deepEqual(together, oneByOne)
    assert.equal(together.malformed, 1)
  })

  it("a neighbour's datagrams, held in memory only, stop at their quota", () => {
    const net = new MeshNet({ seed: 13 })
    net.add('A')
    net.add('B')
    net.link('A', 'B')
    net.run(1_000)
    const b = net.nodes.get('B')!.core!
    const r = prng(7)
    // Datagrams (no acknowledgement asked) for a century, to nobody B knows: nothing forwards them.
    const datagram = (size = 60_000) =>
      encodeFrame({
        kind: 1,
        envelope: encodeEnvelope({
          id: new Uint8Array(16).map(() => Math.floor(r() * 256)),
          destination: new Uint8Array(16).map(() => Math.floor(r() * 256)),
          hopLimit: 30,
          expires: Math.floor(net.now / 1000) + 100 * 365 * 86_400,
          copies: 1,
          flags: 0,
          payload: new Uint8Array(size),
        }),
      })
    for (let i = 0; i < 200; i++) b.receive('A', datagram())
    const { storedMessages, storedBytes } = b.load()
    assert.ok(storedBytes <= 1024 * 1024, `held ${storedBytes} bytes of A's datagrams`)
    assert.equal(storedMessages, 17, 'as many 60 kB datagrams as fit in 1 MiB')
    assert.equal(b.stats.custodyRefused, 200 - 17)
    // Empty ones cost their record: the same quota bounds how many are held.
    for (let i = 0; i < 2_000; i++) b.receive('A', datagram(0))
    const room = 1024 * 1024 - 17 * datagramCharge(60_000)
    assert.equal(b.load().storedMessages, 17 + Math.floor(room / datagramCharge(0)))
  })
})

/** A data frame carrying a one-byte custody envelope `n` for a destination nobody reaches. */
function tinyCustody(n: number, now: number): Uint8Array {
  const id = new Uint8Array(16)
  new DataView(id.buffer).setUint32(0, n)
  const envelope = encodeEnvelope({
    id,
    destination: tag('nobody'),
    hopLimit: 30,
    expires: Math.floor(now / 1000) + 3600,
    copies: 1,
    flags: EnvelopeFlags.ackRequested,
    payload: encodeMeshPayload({ kind: 3, body: new Uint8Array(1) }),
  })
  return encodeFrame({ kind: FrameKind.data, envelope })
}

/** A tag from a name (padded with dots). */
const tag = (s: string) => Uint8Array.from(Buffer.from(s.padEnd(16, '.')).subarray(0, 16))

/** A mesh core named Z over `store`, driven by hand: what it transmits goes into `sent`. */
function bareCore(
  store: ReturnType<typeof createMemoryStore>,
  now: () => number,
  sent: Array<{ to: string; frame: ReturnType<typeof decodeFrame> }>,
  config: Partial<MeshConfig> = {},
): RealMeshCore {
  return new RealMeshCore({
    self: tag('Z'),
    store,
    config,
    host: {
      now,
      random: Math.random,
      transmit: (to, bytes) => sent.push({ to, frame: decodeFrame(bytes) }),
      deliver: () => undefined,
      stateChanged: () => {},
      wakeAt: () => {},
      log: () => {},
    },
  })
}

describe('mesh: another copy of an envelope held, over the custody quota', () => {
  it('is refused, and the count of copies held stays as it was', () => {
    let now = 1_000_000
    const sent: Array<{ to: string; frame: ReturnType<typeof decodeFrame> }> = []
    const envelope = (copies: number) =>
      encodeEnvelope({
        id: new Uint8Array(16).fill(7),
        destination: tag('D'),
        hopLimit: 30,
        expires: Math.floor(now / 1000) + 3600,
        copies,
        flags: EnvelopeFlags.ackRequested,
        payload: encodeMeshPayload({ kind: 3, body: new Uint8Array(100) }),
      })
    // A quota that holds this envelope exactly: 12 copies more take a byte more.
    const store = createMemoryStore({
      custodyQuota: { perOriginBytes: envelope(12).length, totalBytes: 1 << 30 },
    })
    const core = bareCore(store, () => now, sent)
    const hello = (name: string) =>
      encodeFrame({ kind: FrameKind.hello, node: tag(name), seqno: 1, encounters: 0 })
    for (const n of ['n1', 'n2']) {
      core.linkUp(n, 65_600)
      core.receive(n, hello(n))
    }
    core.receive('n1', encodeFrame({ kind: FrameKind.data, envelope: envelope(12) }))
    const acks = (to: string) =>
      sent.filter((s) => s.to === to && s.frame.kind === FrameKind.hopAck).map((s) => s.frame)
    for (let i = 0; i < 3; i++) {
      now += 10_000
      core.receive('n2', encodeFrame({ kind: FrameKind.data, envelope: envelope(12) }))
    }
    assert.equal(core.stats.malformed, 0)
    assert.deepEqual(
      acks('n2').map((f) => (f.kind === FrameKind.hopAck ? f.status : -1)),
      [HopAckStatus.refused, HopAckStatus.refused, HopAckStatus.refused],
    )
    assert.equal(store.getCustody('07'.repeat(16))?.copies, 12)
    core.linkUp('d', 65_600)
    core.receive('d', hello('D'))
    const handed = sent.filter((s) => s.to === 'd' && s.frame.kind === FrameKind.data)
    assert.deepEqual(
      handed.map((s) => (s.frame.kind === FrameKind.data ? decodeEnvelope(s.frame.envelope).copies : -1)),
      [12],
    )
  })
})

describe("mesh: another node's envelopes in custody", () => {
  it('are counted as well as weighed: one neighbour cannot fill the relay with tiny envelopes', () => {
    const now = 1_000_000
    const sent: Array<{ to: string; frame: ReturnType<typeof decodeFrame> }> = []
    const store = createMemoryStore()
    const core = bareCore(store, () => now, sent)
    core.linkUp('n1', 65_600)
    core.receive('n1', encodeFrame({ kind: FrameKind.hello, node: tag('n1'), seqno: 1, encounters: 0 }))
    const { perOrigin } = DEFAULT_MESH_CONFIG.custodyCount
    for (let i = 0; i < perOrigin + 50; i++) core.receive('n1', tinyCustody(i + 1, now))
    assert.ok(
      store.custodyUsage('n1').bytes < DEFAULT_CUSTODY_QUOTA.perOriginBytes / 10,
      'far within the byte quota',
    )
    assert.equal(store.custodyUsage('n1').count, perOrigin)
    assert.equal(core.load().storedMessages, perOrigin)
    assert.equal(core.stats.custodyRefused, 50)
  })
})

describe('mesh: custody full', () => {
  it('makes room for a neighbour holding fewer, from the one holding the most: made-up neighbours cannot keep others out', () => {
    const now = 1_000_000
    const sent: Array<{ to: string; frame: ReturnType<typeof decodeFrame> }> = []
    const store = createMemoryStore()
    const core = bareCore(store, () => now, sent, { custodyCount: { perOrigin: 20, total: 60 } })
    let next = 0
    const hand = (from: string) => {
      core.receive(from, tinyCustody(++next, now))
      const last = sent.at(-1)!.frame
      return last.kind === FrameKind.hopAck ? last.status : -1
    }
    for (const n of ['s1', 's2', 's3', 'honest']) {
      core.linkUp(n, 65_600)
      core.receive(n, encodeFrame({ kind: FrameKind.hello, node: tag(n), seqno: 1, encounters: 0 }))
    }
    // Three neighbours fill the count (20 each, 60 in all) …
    for (const s of ['s1', 's2', 's3']) for (let i = 0; i < 20; i++) assert.equal(hand(s), HopAckStatus.taken)
    assert.equal(hand('s1'), HopAckStatus.refused, 'its own share is full')
    // … and one that holds nothing here still gets in, taking the place of one of theirs.
    for (let i = 0; i < 5; i++) assert.equal(hand('honest'), HopAckStatus.taken)
    assert.equal(core.stats.custodyEvicted, 5)
    assert.equal(store.custodyUsage('honest').count, 5)
    assert.equal(core.load().storedMessages, 60)
  })
})

describe('mesh: our own datagrams waiting to go out', () => {
  it('are bounded: beyond their quota new ones are dropped and counted', () => {
    const sent: Array<{ to: string; frame: ReturnType<typeof decodeFrame> }> = []
    const core = bareCore(createMemoryStore(), () => 1_000_000, sent)
    const quota = DEFAULT_MESH_CONFIG.datagramQuota.ownBytes
    // Nobody to hand them to: they wait, as a sync answer to an unreachable asker would.
    for (let i = 0; i < 400; i++) core.send(tag('nobody'), new Uint8Array(60_000), { datagram: true })
    const held = core.load().storedMessages
    const charge = datagramCharge(encodeMeshPayload({ kind: 3, body: new Uint8Array(60_000) }).length)
    assert.equal(held, Math.floor(quota / charge))
    assert.equal(core.stats.datagramsDropped, 400 - held)
  })
})

describe('mesh: a handoff sent again after its hop acknowledgement was lost', () => {
  it('is acknowledged as taken without adding its copies again; a source retry later still adds them', () => {
    let now = 1_000_000
    const sent: Array<{ to: string; frame: ReturnType<typeof decodeFrame> }> = []
    const envelope = encodeEnvelope({
      id: new Uint8Array(16).fill(9),
      destination: tag('D'),
      hopLimit: 30,
      expires: Math.floor(now / 1000) + 24 * 3600,
      copies: 6,
      flags: EnvelopeFlags.ackRequested,
      payload: encodeMeshPayload({ kind: 3, body: new Uint8Array(100) }),
    })
    const store = createMemoryStore()
    const core = bareCore(store, () => now, sent)
    core.linkUp('n1', 65_600)
    core.receive('n1', encodeFrame({ kind: FrameKind.hello, node: tag('n1'), seqno: 1, encounters: 0 }))
    const handoff = encodeFrame({ kind: FrameKind.data, envelope })
    const statuses = () =>
      sent.flatMap((s) => (s.to === 'n1' && s.frame.kind === FrameKind.hopAck ? [s.frame.status] : []))
    core.receive('n1', handoff)
    // Our acknowledgement was lost: the neighbour's flight times out and it sends the same again.
    now += 10_000
    core.receive('n1', handoff)
    assert.deepEqual(statuses(), [HopAckStatus.taken, HopAckStatus.taken])
    assert.equal(store.getCustody('09'.repeat(16))?.copies, 6)
    // Its source trying again, much later, is another handoff: its copies are taken over.
    now += 24 * 3600_000 - 20_000
    core.receive('n1', handoff)
    assert.equal(store.getCustody('09'.repeat(16))?.copies, 12)
  })
})

describe('mesh: route requests for our own address', () => {
  it('raise our seqno once a second at most, however many ask for more', () => {
    let now = 1_000_000
    const sent: Array<{ to: string; frame: ReturnType<typeof decodeFrame> }> = []
    const core = bareCore(createMemoryStore(), () => now, sent)
    const neighbours = Array.from({ length: 8 }, (_, i) => `n${i}`)
    for (const n of neighbours) {
      core.linkUp(n, 65_600)
      core.receive(n, encodeFrame({ kind: FrameKind.hello, node: tag(n), seqno: 1, encounters: 1 }))
    }
    const ours = () =>
      sent.flatMap((s) =>
        s.frame.kind === FrameKind.routes
          ? s.frame.routes.filter((r) => Buffer.from(r.dest).equals(Buffer.from(tag('Z'))))
          : [],
      )
    sent.length = 0
    // Made-up origins, each asking for one more than we last advertised, in one millisecond.
    let last = 2
    for (let i = 0; i < 1000; i++) {
      const request = encodeFrame({
        kind: FrameKind.routeRequest,
        dest: tag('Z'),
        origin: tag(`fake${i}`),
        originSeqno: 1,
        reqId: i + 1,
        hops: 0,
        hopLimit: 1,
        wantSeqno: last + 1,
      })
      core.receive('n0', request)
      last = ours().at(-1)?.seqno ?? last
    }
    assert.equal(ours().length, neighbours.length, 'one seqno raise, told to each neighbour once')
    now += 1_000
    core.receive(
      'n0',
      encodeFrame({
        kind: FrameKind.routeRequest,
        dest: tag('Z'),
        origin: tag('later'),
        originSeqno: 1,
        reqId: 5000,
        hops: 0,
        hopLimit: 1,
        wantSeqno: last + 1,
      }),
    )
    assert.equal(ours().length, 2 * neighbours.length, 'a second one after a second')
  })
})

describe('mesh: route requests from one neighbour', () => {
  it('are taken 40 a second at most, whatever origins they name, and go no further than our hop limit', () => {
    let now = 1_000_000
    const sent: Array<{ to: string; frame: ReturnType<typeof decodeFrame> }> = []
    const core = bareCore(createMemoryStore(), () => now, sent)
    for (const n of ['n0', 'n1']) {
      core.linkUp(n, 65_600)
      core.receive(n, encodeFrame({ kind: FrameKind.hello, node: tag(n), seqno: 1, encounters: 1 }))
    }
    const request = (i: number, hopLimit: number) =>
      encodeFrame({
        kind: FrameKind.routeRequest,
        dest: tag('nowhere'),
        origin: tag(`fake${i}`),
        originSeqno: 1,
        reqId: i + 1,
        hops: 0,
        hopLimit,
        wantSeqno: 0,
      })
    const forwarded = () =>
      sent.flatMap((s) => (s.to === 'n1' && s.frame.kind === FrameKind.routeRequest ? [s.frame] : []))
    for (let i = 0; i < 1000; i++) core.receive('n0', request(i, 64))
    assert.equal(forwarded().length, 4 * DEFAULT_MESH_CONFIG.routeRequestsPerSecond)
    assert.ok(forwarded().every((f) => f.hopLimit === DEFAULT_MESH_CONFIG.hopLimit - 1))
    assert.ok(core.routes().length <= 4 * DEFAULT_MESH_CONFIG.routeRequestsPerSecond + 2)
    now += 1_000
    core.receive('n0', request(5000, 3))
    assert.equal(forwarded().at(-1)?.hopLimit, 2, 'the next second, taken again')
  })
})

describe('mesh: a message for us that expired on the way', () => {
  it('is answered dead and not delivered: its source has given it up', () => {
    const now = 1_000_000_000
    const sent: Array<{ to: string; frame: ReturnType<typeof decodeFrame> }> = []
    const core = bareCore(createMemoryStore(), () => now, sent)
    core.linkUp('n1', 65_600)
    core.receive('n1', encodeFrame({ kind: FrameKind.hello, node: tag('n1'), seqno: 1, encounters: 0 }))
    const envelope = (expires: number, fill: number) =>
      encodeEnvelope({
        id: new Uint8Array(16).fill(fill),
        destination: tag('Z'),
        hopLimit: 30,
        expires,
        copies: 1,
        flags: EnvelopeFlags.ackRequested,
        payload: encodeMeshPayload({ kind: 3, body: new Uint8Array(10) }),
      })
    core.receive('n1', encodeFrame({ kind: FrameKind.data, envelope: envelope(now / 1000, 1) }))
    core.receive('n1', encodeFrame({ kind: FrameKind.data, envelope: envelope(now / 1000 + 60, 2) }))
    const statuses = sent.flatMap((s) => (s.frame.kind === FrameKind.hopAck ? [s.frame.status] : []))
    assert.equal(statuses[0], HopAckStatus.dead)
    assert.equal(core.stats.delivered + core.stats.deliveriesUnopened, 1, 'only the live one was handed on')
  })
})

describe('mesh: a message to this node itself', () => {
  it('is refused with a typed error, recording nothing', () => {
    const store = createMemoryStore()
    const core = bareCore(store, () => 1_000_000, [])
    throwsCode(() => core.send(tag('Z'), new Uint8Array([1])), 'invalid_argument')
    assert.equal(store.outboxSize(), 0)
  })
})
