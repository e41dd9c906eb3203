/**
 * Feeds every decoder 100,000 random and mutated inputs: only TalkenError may come out, nothing
 * may hang, and memory must stay bounded. Replay a failure with TALKEN_SEED=<seed>.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { encode } from 'cborg'
import { TalkenError } from '../../src/errors.ts'
import { decodeContactCard, encodeContactCard } from '../../src/identity/contact-card.ts'
import { parseContactLink, toContactLink } from '../../src/identity/contact-link.ts'
import { decodeDeviceCert, encodeDeviceCert } from '../../src/identity/device-cert.ts'
import { createIdentity, makeContactCard } from '../../src/identity/identity.ts'
import { decodeKeyFile, encodeKeyFile } from '../../src/identity/key-file.ts'
import { parseTextId } from '../../src/identity/text-id.ts'
import { encodeFrame as encodeStreamFrame, FrameDecoder } from '../../src/links/framing.ts'
import { decodeFragment, fragmentFrame } from '../../src/mesh/fragmentation.ts'
import { decodeFrame, encodeFrame } from '../../src/mesh/frames.ts'
import { decodeMeshPayload, encodeMeshPayload } from '../../src/mesh/mesh-payload.ts'
import { decodeDirectMessage, encodeDirectMessage } from '../../src/messaging/direct-message.ts'
import { decodeEnvelope, encodeEnvelope } from '../../src/wire/envelope.ts'
import { prng, testSeed } from '../helpers/prng.ts'

const ROUNDS = 100_000
/**
 * Memory a decoder may keep after a round, once garbage is collected: a decoder keeps nothing of
 * its inputs, so what stays is the code compiled for it and little else (under 1 MB when measured);
 * 100,000 inputs kept, or anything of each, would be more.
 */
const MAX_RETAINED_MB = 8
const seed = testSeed()

/**
 * A full garbage collection, so that what is measured is what is still referenced, not garbage
 * that has yet to be collected: `gc` as `--expose-gc` gives it, or, without that flag, from a
 * context created once the flag is set.
 */
const collectGarbage: () => void = (() => {
  if (typeof globalThis.gc === 'function') return globalThis.gc
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
})()

/** Memory in use after a full collection: the heap, and the bytes of ArrayBuffers outside it. */
function retainedHeap(): number {
  collectGarbage()
  collectGarbage() // a second pass for what finalizers of the first let go
  const { heapUsed, arrayBuffers } = process.memoryUsage()
  return heapUsed + arrayBuffers
}
console.log(`# fuzz seed ${seed} (replay with TALKEN_SEED=${seed})`)

const me = createIdentity({ now: 1_750_000_000_000, deviceName: 'fuzz' })
const card = makeContactCard(me, {
  name: 'Fuzz',
  addresses: ['/ip4/127.0.0.1/tcp/1'],
  extensions: [[1, new Uint8Array(40)]],
  now: 1,
})
const samples = {
  envelope: encodeEnvelope({
    id: new Uint8Array(16).fill(7),
    destination: new Uint8Array(16).fill(9),
    hopLimit: 8,
    expires: 1_750_000_000,
    copies: 4,
    flags: 3,
    payload: new Uint8Array(64).fill(1),
  }),
  card: encodeContactCard(card),
  cert: encodeDeviceCert(me.deviceCert),
  keyFile: encodeKeyFile(me.secrets),
  keyFileEncrypted: encodeKeyFile(me.secrets, 'pw', { logN: 10, r: 8, p: 1 }),
}
const link = toContactLink(card)
const directMessage = encodeDirectMessage(encodeContactCard(card), 'hello\nworld', 1_750_000_000_000)
const streamBytes = Buffer.concat([
  encodeStreamFrame(new Uint8Array(40).fill(3)).subarray(),
  encodeStreamFrame(new Uint8Array(300).fill(4)).subarray(),
])
const tag = new Uint8Array(16).fill(5)
const frames = [
  encodeFrame({ kind: 0, node: tag, seqno: 7, encounters: 12 }),
  encodeFrame({ kind: 1, envelope: samples.envelope }),
  encodeFrame({ kind: 2, id: tag, status: 1 }),
  encodeFrame({ kind: 3, secrets: [tag, tag] }),
  encodeFrame({ kind: 4, routes: [{ dest: tag, seqno: 3, metric: 2 }] }),
  encodeFrame({
    kind: 5,
    dest: tag,
    origin: tag,
    originSeqno: 1,
    reqId: 9,
    hops: 2,
    hopLimit: 8,
    wantSeqno: 0,
  }),
  encodeFrame({ kind: 6, ids: [tag.subarray(0, 8)] }),
  encodeFrame({ kind: 7, dest: tag, seqno: 3, metric: 2, origin: tag, reqId: 9 }),
]
const payloads = [
  encodeMeshPayload({ kind: 1, source: tag, ackSecret: tag, body: new Uint8Array(30) }),
  encodeMeshPayload({ kind: 2, ackSecret: tag }),
]
const fragment = fragmentFrame(new Uint8Array(600).fill(3), 185, new Uint8Array(8))[1]!

type Rand = () => number
const int = (r: Rand, n: number) => Math.floor(r() * n)

/** A random CBOR value, shaped like Talken structures often enough to get past the first checks. */
function randomValue(r: Rand, depth = 0): unknown {
  switch (int(r, depth > 3 ? 5 : 7)) {
    case 0:
      return int(r, 4) === 0 ? int(r, 2 ** 40) : int(r, 300)
    case 1:
      return new Uint8Array(int(r, 3) === 0 ? int(r, 80) : [16, 32, 64][int(r, 3)]!).map(() => int(r, 256))
    case 2:
      return 'abcdefghij\n'.slice(0, int(r, 12))
    case 3:
      return [true, false, null, -1, -(2 ** 40)][int(r, 5)]
    case 4:
      return 1
    default:
      return Array.from({ length: int(r, 10) }, () => randomValue(r, depth + 1))
  }
}

/** Random bytes, a mutation of a valid sample, or a random CBOR structure. */
function input(r: Rand, sample: Uint8Array): Uint8Array {
  const kind = int(r, 6)
  if (kind === 0) return new Uint8Array(int(r, 300)).map(() => int(r, 256))
  if (kind === 1) return new Uint8Array(encode(randomValue(r)))
  const bytes = new Uint8Array(sample)
  if (kind === 2) {
    for (let i = 0, n = 1 + int(r, 4); i < n; i++) bytes[int(r, bytes.length)]! ^= 1 << int(r, 8)
    return bytes
  }
  if (kind === 3) return bytes.subarray(0, int(r, bytes.length))
  if (kind === 4) {
    const at = int(r, bytes.length)
    return new Uint8Array([...bytes.subarray(0, at), int(r, 256), ...bytes.subarray(at)])
  }
  const at = int(r, bytes.length)
  const len = 1 + int(r, 8)
  return new Uint8Array([...bytes.subarray(0, at), ...bytes.subarray(at + len)])
}

function mutateText(r: Rand, text: string): string {
  const kind = int(r, 5)
  const at = int(r, text.length)
  const chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/ \n\u0000é'
  if (kind === 0) return text.slice(0, at)
  if (kind === 1) return text.slice(0, at) + chars[int(r, chars.length)] + text.slice(at + 1)
  if (kind === 2) return text.slice(0, at) + text.slice(at + 1 + int(r, 20))
  if (kind === 3) return Array.from({ length: int(r, 120) }, () => chars[int(r, chars.length)]).join('')
  return text.slice(0, at) + chars[int(r, chars.length)] + text.slice(at)
}

function fuzz<T>(name: string, make: (r: Rand) => T, decode: (x: T) => unknown, minKinds = 3): void {
  it(`${name}: ${ROUNDS.toLocaleString('en')} inputs, typed errors only`, () => {
    const r = prng(seed ^ (name.length * 7919))
    const heapBefore = retainedHeap()
    const codes = new Map<string, number>()
    for (let i = 0; i < ROUNDS; i++) {
      const x = make(r)
      try {
        decode(x)
        codes.set('ok', (codes.get('ok') ?? 0) + 1)
      } catch (err) {
        if (!(err instanceof TalkenError)) {
          assert.fail(`${name}: input #${i} threw ${String(err)} (seed ${seed})`)
        }
        codes.set(err.code, (codes.get(err.code) ?? 0) + 1)
      }
    }
    const grownMB = (retainedHeap() - heapBefore) / 2 ** 20
    console.log(`# ${name}: ${JSON.stringify(Object.fromEntries(codes))}, ${grownMB.toFixed(1)} MB kept`)
    assert.ok(grownMB < MAX_RETAINED_MB, `${name}: ${grownMB.toFixed(1)} MB still in use after the round`)
    assert.ok(codes.size >= minKinds, 'the inputs reached more than one kind of check')
  })
}

describe('decoder fuzzing', () => {
  fuzz('envelope', (r) => input(r, samples.envelope), decodeEnvelope)
  fuzz('contact card', (r) => input(r, samples.card), decodeContactCard)
  fuzz('device certificate', (r) => input(r, samples.cert), decodeDeviceCert)
  fuzz(
    'key file',
    (r) => input(r, int(r, 2) ? samples.keyFile : samples.keyFileEncrypted),
    (b) => decodeKeyFile(b),
  )
  fuzz('contact link', (r) => mutateText(r, link), parseContactLink)
  fuzz('text ID', (r) => mutateText(r, me.id), parseTextId)
  fuzz('mesh frame', (r) => input(r, frames[int(r, frames.length)]!), decodeFrame)
  fuzz('mesh payload', (r) => input(r, payloads[int(r, payloads.length)]!), decodeMeshPayload)
  fuzz('fragment', (r) => input(r, fragment), decodeFragment)
  fuzz(
    'direct message',
    (r) => input(r, directMessage),
    (b) => decodeDirectMessage(b),
  )
  // Framing has one error (malformed): reaching it and passing are the two outcomes.
  fuzz(
    'mesh stream framing',
    (r) => input(r, streamBytes),
    (b) => new FrameDecoder().push(b),
    2,
  )
})
