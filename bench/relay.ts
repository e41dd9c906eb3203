/**
 * Relay benchmark: what one frame costs a relay as what it holds grows.
 *
 * One mesh core (memory store) with {@link NEIGHBOURS} neighbours takes small custody envelopes
 * from all of them, one frame each, for destinations nobody reaches, each neighbour as many as
 * its custody count allows (`custodyCount.perOrigin`), until the relay holds its total
 * (`custodyCount.total`): the most tiny envelopes flooding neighbours can make a relay hold.
 * Each frame makes the core look at what it holds (its pump and its next wake-up).
 *
 * - early: frames per second over the first {@link WINDOW} frames (the relay holds almost nothing);
 * - late: the same over the last {@link WINDOW} (it holds {@link ENVELOPES} − {@link WINDOW}).
 * - ratio: late ÷ early, the baseline being the same relay in the same run: 1 when a frame's cost
 *   does not depend on what is held. Before envelopes with nothing to do were parked (mesh-core.ts
 *   `#isParked`), a run of 12,000 envelopes took 88 s and the ratio was 0.016 (60 frames/s late).
 */
import { randomBytes } from 'node:crypto'
import { DEFAULT_MESH_CONFIG } from '../src/mesh/config.ts'
import { encodeFrame } from '../src/mesh/frames.ts'
import { MeshCore } from '../src/mesh/mesh-core.ts'
import { encodeMeshPayload } from '../src/mesh/mesh-payload.ts'
import { createMemoryStore } from '../src/store/memory-store.ts'
import { EnvelopeFlags, encodeEnvelope } from '../src/wire/envelope.ts'

const { perOrigin: PER_NEIGHBOUR, total: ENVELOPES } = DEFAULT_MESH_CONFIG.custodyCount
const NEIGHBOURS = Math.ceil(ENVELOPES / PER_NEIGHBOUR)
const WINDOW = 1_000

/** The one-line result of {@link relayBench}. */
export interface RelayBenchResult {
  readonly bench: 'relay'
  readonly envelopes: number
  readonly neighbours: number
  readonly early: { readonly framesPerSec: number }
  readonly late: { readonly framesPerSec: number }
  /** late ÷ early. */
  readonly ratio: number
  readonly wallSeconds: number
}

function tag(i: number): Uint8Array {
  return new Uint8Array(16).fill(i + 1)
}

function custodyFrame(expires: number): Uint8Array {
  return encodeFrame({
    kind: 1,
    envelope: encodeEnvelope({
      id: randomBytes(16),
      destination: randomBytes(16),
      hopLimit: 30,
      expires,
      copies: 1,
      flags: EnvelopeFlags.ackRequested,
      payload: encodeMeshPayload({ kind: 3, body: new Uint8Array(1) }),
    }),
  })
}

export async function relayBench(opts: { json: boolean }): Promise<RelayBenchResult> {
  const t0 = performance.now()
  let now = 1_700_000_000_000
  let seed = 1
  const core = new MeshCore({
    self: tag(100),
    store: createMemoryStore(),
    host: {
      now: () => now,
      random: () => {
        seed = (seed * 16_807) % 2_147_483_647
        return seed / 2_147_483_647
      },
      transmit: () => {},
      deliver: () => undefined,
      stateChanged: () => {},
      wakeAt: () => {},
      log: () => {},
    },
  })
  for (let i = 0; i < NEIGHBOURS; i++) {
    core.linkUp(`n${i}`, 65_600)
    core.receive(`n${i}`, encodeFrame({ kind: 0, node: tag(i), seqno: 1, encounters: 1 }))
  }
  const expires = Math.floor(now / 1000) + 86_400
  const frames = Array.from({ length: ENVELOPES }, () => custodyFrame(expires))
  const sender = (i: number) => `n${Math.floor(i / PER_NEIGHBOUR)}`
  const rate = (from: number): number => {
    const start = performance.now()
    for (let i = from; i < from + WINDOW; i++) {
      now += 1
      core.receive(sender(i), frames[i]!)
    }
    return Math.round(WINDOW / ((performance.now() - start) / 1000))
  }
  const early = rate(0)
  for (let i = WINDOW; i < ENVELOPES - WINDOW; i++) core.receive(sender(i), frames[i]!)
  const late = rate(ENVELOPES - WINDOW)
  if (core.load().storedMessages !== ENVELOPES) throw new Error('relay bench: not every envelope was taken')
  const result: RelayBenchResult = {
    bench: 'relay',
    envelopes: ENVELOPES,
    neighbours: NEIGHBOURS,
    early: { framesPerSec: early },
    late: { framesPerSec: late },
    ratio: Math.round((late / early) * 1000) / 1000,
    wallSeconds: Math.round(performance.now() - t0) / 1000,
  }
  if (opts.json) console.log(JSON.stringify(result))
  else {
    console.log(`relay: ${ENVELOPES} small custody envelopes from ${NEIGHBOURS} neighbours`)
    console.log(
      `  frames/s holding nothing: ${early}; holding ${ENVELOPES - WINDOW}: ${late}; ratio ${result.ratio}`,
    )
  }
  return result
}
