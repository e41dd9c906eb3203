/**
 * Work a neighbour's small frames can make a mesh core do: route requests for many held
 * destinations, pumps for repeated Summaries and Hellos, and timers that wake for nothing.
 * Counted in frames and calls, never in time.
 */
import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import { DEFAULT_MESH_CONFIG, type MeshConfig } from '../../src/mesh/config.ts'
import { decodeFrame, encodeFrame, type Frame, FrameKind, HopAckStatus } from '../../src/mesh/frames.ts'
import { MeshCore } from '../../src/mesh/mesh-core.ts'
import { encodeMeshPayload } from '../../src/mesh/mesh-payload.ts'
import { RouteAgent } from '../../src/mesh/route-agent.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'
import { EnvelopeFlags, encodeEnvelope } from '../../src/wire/envelope.ts'

const START = 1_700_000_000_000
const NEIGHBOURS = ['n1', 'n2', 'n3', 'n4']

/** A tag from a name (padded with dots). */
const tag = (s: string) => Uint8Array.from(Buffer.from(s.padEnd(16, '.')).subarray(0, 16))

/** A core named Z driven by hand: its frames go to `sent`, its wake-up requests to `wakes`. */
function core(config: Partial<MeshConfig> = {}) {
  const clock = { now: START }
  const sent: Array<{ to: string; frame: Frame }> = []
  const wakes: number[] = []
  const store = createMemoryStore({ custodyQuota: { perOriginBytes: 1 << 30, totalBytes: 1 << 30 } })
  const mesh = new MeshCore({
    self: tag('Z'),
    store,
    config: { custodyCount: { perOrigin: 100_000, total: 100_000 }, ...config },
    host: {
      now: () => clock.now,
      random: Math.random,
      transmit: (to, bytes) => sent.push({ to, frame: decodeFrame(bytes) }),
      deliver: () => undefined,
      stateChanged: () => {},
      wakeAt: (at) => wakes.push(at),
      log: () => {},
    },
  })
  return { mesh, clock, sent, wakes }
}

const hello = (name: string, encounters = 1) =>
  encodeFrame({ kind: FrameKind.hello, node: tag(name), seqno: 1, encounters })

/** A data frame: custody of a one-copy envelope `i` for made-up destination `i`. */
function tiny(i: number, now: number): Uint8Array {
  const id = new Uint8Array(16)
  new DataView(id.buffer).setUint32(0, i + 1)
  const destination = new Uint8Array(16).fill(0x77)
  new DataView(destination.buffer).setUint32(0, i)
  const envelope = encodeEnvelope({
    id,
    destination,
    hopLimit: 30,
    expires: Math.floor(now / 1000) + 3600,
    copies: 1,
    flags: EnvelopeFlags.ackRequested,
    payload: encodeMeshPayload({ kind: 3, body: new Uint8Array(10) }),
  })
  return encodeFrame({ kind: FrameKind.data, envelope })
}

/** The first 8 bytes of envelope `i`'s ID (as a Summary lists it). */
function prefix(i: number): Uint8Array {
  const p = new Uint8Array(8)
  new DataView(p.buffer).setUint32(0, i + 1)
  return p
}

/** A core with four named neighbours holding `count` envelopes for as many made-up destinations. */
function holding(count: number, opts: { far: boolean; config?: Partial<MeshConfig> }) {
  const c = core(opts.config)
  for (const n of NEIGHBOURS) {
    c.mesh.linkUp(n, 65_600)
    c.mesh.receive(n, hello(n))
  }
  // A route beyond the advertising radius: route requests may find destinations nobody advertised.
  if (opts.far) {
    const routes = [{ dest: tag('far'), seqno: 1, metric: DEFAULT_MESH_CONFIG.advertiseRadius + 8 }]
    c.mesh.receive('n1', encodeFrame({ kind: FrameKind.routes, routes }))
  }
  c.mesh.receiveAll(
    'n1',
    Array.from({ length: count }, (_, i) => tiny(i, c.clock.now)),
  )
  assert.equal(c.mesh.load().storedMessages, count)
  return c
}

const requests = (sent: Array<{ frame: Frame }>) =>
  sent.filter((s) => s.frame.kind === FrameKind.routeRequest).length

describe('mesh: our own route requests', () => {
  it('stay within the budget however many destinations wait for a route', () => {
    const perSecond = DEFAULT_MESH_CONFIG.routeRequestsPerSecond
    const c = holding(5_000, { far: true })
    // Each request goes to every neighbour: one burst of the budget, no more.
    assert.equal(requests(c.sent), perSecond * NEIGHBOURS.length, 'the burst the budget allows')
    let total = requests(c.sent)
    // Every frame or timer after that: at most the budget a second (and one burst), in all.
    const summary = encodeFrame({ kind: FrameKind.summary, ids: [new Uint8Array(8)] })
    for (let step = 1; step <= 20; step++) {
      c.clock.now += 500
      c.sent.length = 0
      c.mesh.receive('n2', summary)
      c.mesh.timer()
      const now = requests(c.sent)
      assert.ok(now <= perSecond * NEIGHBOURS.length, `step ${step}: ${now} request frames`)
      total += now
    }
    // 10 seconds and the first burst: 11 seconds' worth at most.
    assert.ok(total <= 11 * perSecond * NEIGHBOURS.length, `${total} request frames in 10 s`)
    assert.ok(total > 0)
  })

  it('back off for every destination held, beyond any number of backoff records', () => {
    // A budget that does not bind: what is left is each destination's own backoff.
    const c = holding(5_000, { far: true, config: { routeRequestsPerSecond: 1_000_000 } })
    assert.equal(requests(c.sent), 5_000 * NEIGHBOURS.length, 'every destination asked for once')
    // Within the first backoff (2 s) no destination is asked for again, the oldest included.
    c.sent.length = 0
    c.clock.now += DEFAULT_MESH_CONFIG.routeRequestBaseMs / 2
    c.mesh.timer()
    c.mesh.receive('n2', encodeFrame({ kind: FrameKind.summary, ids: [new Uint8Array(8)] }))
    c.mesh.receive('n2', encodeFrame({ kind: FrameKind.summary, ids: [new Uint8Array(8).fill(1)] }))
    assert.equal(requests(c.sent), 0)
    // After it, each once more.
    c.clock.now += DEFAULT_MESH_CONFIG.routeRequestBaseMs
    c.mesh.timer()
    assert.equal(requests(c.sent), 5_000 * NEIGHBOURS.length)
  })
})

describe('mesh: a repeated Summary or Hello', () => {
  const original = RouteAgent.prototype.nextHopByKey
  let visits = 0
  afterEach(() => {
    RouteAgent.prototype.nextHopByKey = original
  })
  /** Counts the pump's visits to held envelopes (it looks up each one's next hop). */
  function countVisits(): void {
    visits = 0
    RouteAgent.prototype.nextHopByKey = function (this: RouteAgent, destKey: string) {
      visits++
      return original.call(this, destKey)
    }
  }

  it('does not make the pump look at every envelope held again', () => {
    // Nothing to do for any of them (one copy, no route, nothing to ask): all parked.
    const c = holding(2_000, { far: false })
    countVisits()
    const summary = encodeFrame({ kind: FrameKind.summary, ids: [prefix(7)] })
    c.mesh.receive('n2', summary)
    assert.equal(visits, 1, 'a new Summary: only the envelope it lists is looked at')
    for (let i = 0; i < 10; i++) c.mesh.receive('n2', summary)
    assert.equal(visits, 1, 'the same Summary again: none')
    for (let i = 0; i < 10; i++) c.mesh.receive('n2', hello('n2'))
    assert.equal(visits, 1, 'the same Hello again: none')
    c.mesh.receive('n2', encodeFrame({ kind: FrameKind.summary, ids: [prefix(8)] }))
    assert.equal(visits, 3, 'a Summary that drops one and lists another: those two')
    // A Hello that does change something (its encounters), a second after the link's first one,
    // makes every envelope count again.
    c.clock.now += 1_000
    c.mesh.receive('n2', hello('n2', 5))
    assert.equal(visits, 2_003)
    // Hellos that change it again and again: taken, but counted for the pump once a second.
    for (let i = 6; i < 16; i++) c.mesh.receive('n2', hello('n2', i))
    assert.equal(visits, 2_003, 'held back')
    c.clock.now += 1_000
    c.mesh.timer()
    assert.equal(visits, 4_003, 'a second later: once')
  })
})

describe('mesh: a retry due while a copy is in flight', () => {
  it('wakes the core at the flight deadline, not at once', () => {
    const c = core()
    c.mesh.linkUp('A', 65_600)
    c.mesh.receive('A', hello('A', 50))
    const id = c.mesh.send(tag('B'), new Uint8Array(20))
    const handed = (to: string) => c.sent.filter((s) => s.to === to && s.frame.kind === FrameKind.data).length
    assert.equal(handed('A'), 1)
    c.mesh.receive(
      'A',
      encodeFrame({ kind: FrameKind.hopAck, id: Buffer.from(id, 'hex'), status: HopAckStatus.taken }),
    )
    // A takes most copies (spray). Just before the retry time, the destination B comes up and
    // takes the one kept; its hop ack is slow.
    c.clock.now += DEFAULT_MESH_CONFIG.retryBaseMs - 5
    c.mesh.linkUp('B', 65_600)
    c.mesh.receive('B', hello('B', 50))
    assert.equal(handed('B'), 1)
    const deadline = c.clock.now + DEFAULT_MESH_CONFIG.hopAckTimeoutMs
    c.clock.now += 10 // past the retry time, B's flight outstanding
    for (let i = 0; i < 5; i++) {
      const before = c.wakes.length
      c.mesh.timer()
      const asked = c.wakes.slice(before)
      assert.deepEqual(asked, [deadline], `timer ${i} at ${c.clock.now}`)
      c.clock.now += 1
    }
    // At the deadline the flight ends and the retry happens.
    c.clock.now = deadline
    c.sent.length = 0
    c.mesh.timer()
    assert.ok(handed('A') + handed('B') > 0, 'retried')
  })
})

describe('mesh: a Hello proof said again', () => {
  it('is checked once while it repeats within 10 s, and again after, or when it changes', () => {
    const clock = { now: START }
    const checks: string[] = []
    const mesh = new MeshCore({
      self: tag('Z'),
      store: createMemoryStore(),
      host: {
        now: () => clock.now,
        random: Math.random,
        transmit: () => {},
        deliver: () => undefined,
        stateChanged: () => {},
        wakeAt: () => {},
        log: () => {},
        // Looking a proof up costs a pass over the contacts: counted.
        verifyHello: (_neighbour, _tag, proof) => {
          checks.push(Buffer.from(proof).toString('hex').slice(0, 2))
          return proof[0] === 1
        },
      },
    })
    mesh.linkUp('n1', 16 * 1024)
    const proved = (first: number) =>
      encodeFrame({
        kind: FrameKind.hello,
        node: tag('A'),
        seqno: 1,
        encounters: 1,
        proof: new Uint8Array(64).fill(first),
      })
    for (let i = 0; i < 20; i++) mesh.receive('n1', proved(1))
    assert.deepEqual(checks, ['01'])
    assert.equal(mesh.neighbours().find((n) => n.id === 'n1')?.verified, true)
    for (let i = 0; i < 20; i++) mesh.receive('n1', proved(2))
    assert.deepEqual(checks, ['01', '02'], 'another proof is checked')
    assert.equal(mesh.neighbours().find((n) => n.id === 'n1')?.verified, false)
    clock.now += 10_000
    mesh.receive('n1', proved(2))
    assert.deepEqual(checks, ['01', '02', '02'], 'checked again after 10 s: the contacts may have changed')
  })
})
