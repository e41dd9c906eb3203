/**
 * The baselines never transfer a message to a node that has it, had it delivered, or is already
 * receiving it (The ONE's `ActiveRouter.checkReceiving`: DENIED_OLD, TRY_LATER_BUSY): a transfer
 * starts with an OFFER, and only an ACCEPT lets the DATA go. Summaries list 8-byte ID prefixes.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { NeighbourId, RouterFactory, RouterHost } from '../../src/mesh/router.ts'
import { type BaselineStore, createBaselineStore } from '../../src/sim/baselines/baseline-store.ts'
import { createEpidemicRouter } from '../../src/sim/baselines/epidemic.ts'
import {
  decodeFrame,
  encodeNotice,
  encodeSummary,
  FrameType,
  PREFIX_BYTES,
  SUMMARY_HEADER,
} from '../../src/sim/baselines/frames.ts'
import { createSprayAndWaitRouter } from '../../src/sim/baselines/spray-and-wait.ts'
import { defineRouter } from '../../src/sim/routers.ts'
import { buildScenario } from '../../src/sim/scenarios.ts'
import { type ScenarioInput, simulate } from '../../src/sim/simulator.ts'
import { type Contact, tinyInput } from './helpers.ts'

/** What each node received, by frame type, and DATA copies per message. */
interface Received {
  /** node → message ID (hex) → DATA frames of it received whole. */
  readonly data: Map<string, number>[]
  /** node → count of each frame type received. */
  readonly types: Map<number, number>[]
}

/** Runs `factory` over `input`, recording what every node receives. */
function run(input: ScenarioInput, factory: RouterFactory<BaselineStore>) {
  const stores: BaselineStore[] = []
  const rx: Received = { data: [], types: [] }
  let created = 0
  const entry = defineRouter({
    factory: (init) => {
      const node = stores.indexOf(init.store)
      const router = factory(init)
      const receive = router.receive.bind(router)
      router.receive = (from: NeighbourId, frame: Uint8Array) => {
        const f = decodeFrame(frame)
        if (f !== undefined) {
          const types = rx.types[node]!
          types.set(f.type, (types.get(f.type) ?? 0) + 1)
          if (f.type === FrameType.data) {
            const id = Buffer.from(f.id).toString('hex')
            rx.data[node]!.set(id, (rx.data[node]!.get(id) ?? 0) + 1)
          }
        }
        receive(from, frame)
      }
      return router
    },
    makeStore: () => {
      const s = createBaselineStore()
      stores.push(s)
      rx.data.push(new Map())
      rx.types.push(new Map())
      created++
      return s
    },
  })
  const metrics = simulate(input, entry, { seed: 3, strict: true })
  assert.equal(created, input.nodes)
  return { metrics, stores, rx }
}

/** The most DATA copies of one message that one node received. */
const mostCopies = (rx: Received) => Math.max(0, ...rx.data.flatMap((m) => [...m.values()]))

// 0 reaches 1 and 2 at once; both reach 3. Node 4 is never met.
const diamond: Contact[] = [
  [0, 'up', 0, 1],
  [0, 'up', 0, 2],
  [0, 'up', 1, 3],
  [0, 'up', 2, 3],
]

describe('baselines: one copy per node', () => {
  it('two neighbours that get a message at the same instant: their common neighbour receives one copy', () => {
    const input = tinyInput({
      nodes: 5,
      durationMs: 10_000,
      contacts: diamond,
      messages: [{ src: 0, dst: 4, createdAt: 100 }],
    })
    const { metrics, stores, rx } = run(input, createEpidemicRouter())
    assert.deepEqual(
      stores.map((s) => s.messages.size),
      [1, 1, 1, 1, 0],
    )
    assert.deepEqual(
      rx.data.map((m) => [...m.values()]),
      [[], [1], [1], [1], []],
    )
    assert.equal(metrics.dataFrames, 3)
    // The race took place: node 3 was offered the message twice and refused the second offer.
    assert.equal((rx.types[1]!.get(FrameType.refuse) ?? 0) + (rx.types[2]!.get(FrameType.refuse) ?? 0), 1)
  })

  it('the destination reached by two neighbours at once receives and delivers one copy', () => {
    const input = tinyInput({
      nodes: 4,
      durationMs: 10_000,
      contacts: diamond,
      messages: [{ src: 0, dst: 3, createdAt: 100 }],
    })
    const { metrics, stores, rx } = run(input, createEpidemicRouter())
    assert.equal(metrics.deliveryRatio, 1)
    assert.equal(metrics.duplicatesDelivered, 0)
    assert.deepEqual([...rx.data[3]!.values()], [1])
    assert.equal(metrics.dataFrames, 3)
    assert.equal(stores[3]!.delivered.size, 1)
  })

  it('a refused neighbour is invited to offer again when the copy on its way is cut', () => {
    // 100 ms links. Nodes 1 and 2 get the message from 0 at the same moment and both offer it to
    // 3; 3 accepts one, refuses the other, and the accepted link goes down while the DATA is in
    // flight (offers reach 3 at ~1,400 ms, the DATA would arrive at ~1,600 ms).
    const base = {
      nodes: 5,
      durationMs: 10_000,
      messages: [{ src: 0, dst: 4, createdAt: 1000 }],
      link: { latencyMs: 100 },
    }
    const probe = run(tinyInput({ ...base, contacts: diamond }), createEpidemicRouter())
    const accepted = probe.rx.types[1]!.has(FrameType.accept) ? 1 : 2
    const refused = 3 - accepted
    const { metrics, stores, rx } = run(
      tinyInput({ ...base, contacts: [...diamond, [1550, 'down', accepted, 3]] }),
      createEpidemicRouter(),
    )
    assert.equal(metrics.framesAborted, 1)
    assert.equal(rx.types[refused]!.get(FrameType.want), 1)
    assert.deepEqual([...rx.data[3]!.values()], [1])
    assert.equal(stores[3]!.messages.size, 1)
    assert.equal(metrics.dataFrames, 4) // 0→1, 0→2, the cut one, and the one from the invited node
  })

  it('epidemic on a grid: one DATA frame per node that gets a copy', () => {
    const { input } = buildScenario({ scenario: 'grid', nodes: 25, seed: 2, durationSec: 120 })
    const { metrics, rx } = run(input, createEpidemicRouter())
    assert.equal(metrics.deliveryRatio, 1)
    assert.equal(mostCopies(rx), 1)
    const copiesReceived = rx.data.reduce((n, m) => n + m.size, 0)
    assert.equal(metrics.dataFrames, copiesReceived)
    // Every message reaches every node but its source.
    assert.equal(metrics.dataFrames, metrics.created * (input.nodes - 1))
  })

  it('spray-and-wait on a grid: no node receives a message twice', () => {
    const { input } = buildScenario({ scenario: 'grid', nodes: 25, seed: 2, durationSec: 120 })
    const { metrics, rx } = run(input, createSprayAndWaitRouter({ copies: 8 }))
    assert.equal(mostCopies(rx), 1)
    assert.equal(
      metrics.dataFrames,
      rx.data.reduce((n, m) => n + m.size, 0),
    )
  })
})

/** A host for one router driven by hand: a fixed clock, a counter for randomness, frames recorded. */
function handHost() {
  const sent: { to: NeighbourId; frame: Uint8Array; kind: 'data' | 'control' }[] = []
  let draws = 0
  const clock = { now: 1000 }
  const host: RouterHost = {
    now: () => clock.now,
    random: () => (draws++ * 0.618033988749895) % 1,
    transmit: (to, frame, kind = 'data') => {
      sent.push({ to, frame: frame.slice(), kind })
    },
    deliver: () => undefined,
    stateChanged: () => undefined,
    wakeAt: () => undefined,
    log: () => undefined,
  }
  const types = (to: NeighbourId) => sent.filter((s) => s.to === to).map((s) => s.frame[0])
  return { host, sent, clock, types }
}

const tag = (b: number) => new Uint8Array(16).fill(b)
const hexBytes = (hex: string) => Uint8Array.from(Buffer.from(hex, 'hex'))

describe('baselines: offers and refusals, frame by frame', () => {
  it('refuses an offer of a message on its way from another neighbour, and invites it back if that fails', () => {
    const { host, types, sent } = handHost()
    const router = createEpidemicRouter()({ self: tag(3), host, store: createBaselineStore() })
    router.linkUp('1', 16384)
    router.linkUp('2', 16384)
    const id = tag(0xab)
    router.receive('1', encodeNotice(FrameType.offer, id))
    router.receive('2', encodeNotice(FrameType.offer, id))
    assert.deepEqual(types('1'), [FrameType.summary, FrameType.accept])
    assert.deepEqual(types('2'), [FrameType.summary, FrameType.refuse])
    router.linkDown('1')
    assert.deepEqual(types('2'), [FrameType.summary, FrameType.refuse, FrameType.want])
    assert.deepEqual(sent.at(-1)!.frame.subarray(1), id)
    assert.ok(sent.every((s) => s.kind === 'control'))
    // Invited, it offers again and is accepted.
    router.receive('2', encodeNotice(FrameType.offer, id))
    assert.equal(types('2').at(-1), FrameType.accept)
  })

  it('refuses a message it holds (DENIED_OLD)', () => {
    const { host, types, sent } = handHost()
    const router = createEpidemicRouter()({ self: tag(3), host, store: createBaselineStore() })
    const id = hexBytes(router.send(tag(9), new Uint8Array(10)))
    router.linkUp('1', 16384)
    router.receive('1', encodeNotice(FrameType.offer, id))
    assert.deepEqual(types('1'), [FrameType.summary, FrameType.refuse])
    assert.equal(sent.filter((s) => s.kind === 'data').length, 0)
  })

  it('sends no DATA before the offer is accepted, and none after a refusal', () => {
    const { host, sent } = handHost()
    const router = createEpidemicRouter()({ self: tag(3), host, store: createBaselineStore() })
    const id = hexBytes(router.send(tag(9), new Uint8Array(10)))
    router.linkUp('1', 16384)
    router.receive('1', encodeSummary(tag(1), new Uint8Array(0), true))
    assert.deepEqual(
      sent.map((s) => s.frame[0]),
      [FrameType.summary, FrameType.offer],
    )
    router.receive('1', encodeNotice(FrameType.refuse, id))
    assert.equal(sent.length, 2)
    // A second neighbour accepts: the DATA goes out.
    router.linkUp('2', 16384)
    router.receive('2', encodeSummary(tag(2), new Uint8Array(0), true))
    router.receive('2', encodeNotice(FrameType.accept, id))
    assert.deepEqual(
      sent.filter((s) => s.to === '2').map((s) => s.frame[0]),
      [FrameType.summary, FrameType.offer, FrameType.data],
    )
  })

  it('summaries list 8-byte ID prefixes; a listed prefix counts as holding the message', () => {
    const { host, sent } = handHost()
    const router = createEpidemicRouter()({ self: tag(3), host, store: createBaselineStore() })
    const ids = [0, 1, 2].map((i) => hexBytes(router.send(tag(9), new Uint8Array([i]))))
    router.linkUp('1', 16384)
    const summary = decodeFrame(sent[0]!.frame)
    assert.equal(sent[0]!.frame.length, SUMMARY_HEADER + 3 * PREFIX_BYTES)
    assert.ok(summary?.type === FrameType.summary)
    assert.deepEqual(summary.ids, Uint8Array.from(ids.flatMap((id) => [...id.subarray(0, PREFIX_BYTES)])))
    // The neighbour lists the first two prefixes (whatever the rest of its IDs): only the third is offered.
    const listed = Uint8Array.from(ids.slice(0, 2).flatMap((id) => [...id.subarray(0, PREFIX_BYTES)]))
    router.receive('1', encodeSummary(tag(1), listed, true))
    const offers = sent.filter((s) => s.frame[0] === FrameType.offer)
    assert.equal(offers.length, 1)
    assert.deepEqual(offers[0]!.frame.subarray(1), ids[2])
  })
})
