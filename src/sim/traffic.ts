/**
 * The message schedule of a scenario: who sends how many bytes to whom, when, with what
 * lifetime. Drawn from the seed's `traffic` stream (or read from a trace) once per scenario, so
 * that every router is asked to carry the same messages. Message IDs are the routers' own (the
 * ID `Router.send` returns); the metrics map them back to the message number.
 */
import { TalkenError } from '../errors.ts'
import type { Rng } from './rng.ts'

/** A scenario's messages, as parallel arrays indexed by message number. */
export interface MessagePlan {
  readonly count: number
  readonly src: Int32Array
  readonly dst: Int32Array
  /** Payload bytes. */
  readonly size: Int32Array
  /** Milliseconds. */
  readonly createdAt: Float64Array
  /** Milliseconds. */
  readonly ttlMs: Float64Array
  /** 1 when the message counts toward the metrics; 0 for an attacker's flood. */
  readonly counted: Uint8Array
  /** The trace's own message names, when replaying a trace. */
  readonly names?: readonly string[]
}

/** One message, as a scenario plans it. */
export interface PlannedMessage {
  readonly src: number
  readonly dst: number
  readonly size: number
  readonly createdAt: number
  readonly ttlMs: number
  readonly counted?: boolean
  readonly name?: string
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

/** Lower-case hex of `bytes[start, end)`. */
export function toHex(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let s = ''
  for (let i = start; i < end; i++) s += HEX[bytes[i]!]
  return s
}

/** Builds a plan from messages, sorted (stably) by creation time. */
export function makePlan(messages: readonly PlannedMessage[]): MessagePlan {
  const count = messages.length
  const order = messages.map((m, i) => ({ m, i })).sort((x, y) => x.m.createdAt - y.m.createdAt || x.i - y.i)
  const plan = {
    count,
    src: new Int32Array(count),
    dst: new Int32Array(count),
    size: new Int32Array(count),
    createdAt: new Float64Array(count),
    ttlMs: new Float64Array(count),
    counted: new Uint8Array(count),
    names: messages.some((m) => m.name !== undefined) ? order.map((x) => x.m.name ?? '') : undefined,
  }
  for (let k = 0; k < count; k++) {
    const { m, i } = order[k]!
    if (!Number.isInteger(m.size) || m.size < 0) {
      throw new TalkenError('invalid_argument', `message ${i}: size must be a non-negative integer`)
    }
    if (!(m.createdAt >= 0) || !(m.ttlMs > 0)) {
      throw new TalkenError('invalid_argument', `message ${i}: needs a creation time ≥ 0 and a TTL > 0`)
    }
    plan.src[k] = m.src
    plan.dst[k] = m.dst
    plan.size[k] = m.size
    plan.createdAt[k] = m.createdAt
    plan.ttlMs[k] = m.ttlMs
    plan.counted[k] = m.counted === false ? 0 : 1
  }
  return plan
}

/**
 * The payload of message `i`: deterministic bytes made from the message number, freshly allocated
 * so that routers may keep it. Its first four bytes are the number, the rest a cheap LCG stream.
 */
export function messagePayload(plan: MessagePlan, i: number): Uint8Array {
  const size = plan.size[i]!
  const out = new Uint8Array(size)
  let x = (i * 2654435761 + 1) >>> 0
  for (let j = 0; j < size; j++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    out[j] = x >>> 24
  }
  for (let j = 0; j < 4 && j < size; j++) out[j] = (i >>> (8 * j)) & 0xff
  return out
}

/** Options of {@link randomTraffic}. */
export interface TrafficOptions {
  readonly nodes: number
  readonly count: number
  /** Messages are created uniformly in [startMs, endMs). */
  readonly startMs: number
  readonly endMs: number
  readonly sizeMin: number
  readonly sizeMax: number
  readonly ttlMs: number
  /** Only these nodes send and receive (all nodes when absent). */
  readonly members?: readonly number[]
}

/** `count` messages between uniformly random distinct pairs, at uniformly random times. */
export function randomTraffic(rng: Rng, options: TrafficOptions): PlannedMessage[] {
  const members = options.members ?? Array.from({ length: options.nodes }, (_, i) => i)
  if (members.length < 2) throw new TalkenError('invalid_argument', 'traffic needs at least two nodes')
  const out: PlannedMessage[] = []
  for (let i = 0; i < options.count; i++) {
    const src = members[rng.int(members.length)]!
    let dst = members[rng.int(members.length - 1)]!
    if (dst === src) dst = members[members.length - 1]!
    out.push({
      src,
      dst,
      size: options.sizeMin + rng.int(options.sizeMax - options.sizeMin + 1),
      createdAt: Math.floor(rng.range(options.startMs, options.endMs)),
      ttlMs: options.ttlMs,
    })
  }
  return out
}
