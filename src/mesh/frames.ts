/**
 * Mesh link frames: what two neighbours say to each other. Each frame is one deterministic-CBOR
 * array whose first element is its kind (docs/protocol.md §Mesh frames).
 *
 * ```
 * Hello    = [0, version: uint (3), node: bytes(16), seqno: uint, encounters: uint, proof: bytes(0|64)]
 *                                                           encounters: links this node has had, this one included;
 *                                                           proof: that the link speaks for node's account
 * Data     = [1, envelope: bytes]                          an envelope handed over with custody
 * HopAck   = [2, id: bytes(16), status: uint]              0 taken, 1 had it already, 2 refused (quota),
 *                                                           3 expired or out of hops
 * Proofs   = [3, [ackSecret: bytes(16)] (1–64)]            end-to-end delivery proofs
 * Routes   = [4, [[dest: bytes(16), seqno: uint, metric: uint (1–65535)]] (1–256)]
 *                                                           metric 65535 retracts the route
 * RouteReq = [5, dest: bytes(16), origin: bytes(16), originSeqno: uint, reqId: uint, hops: uint (0–64),
 *             hopLimit: uint (0–64), wantSeqno: uint]       "who reaches dest with a seqno ≥ wantSeqno?",
 *                                                           flooded within hopLimit
 * Summary  = [6, [id: bytes(8)] (0–1024)]                   first 8 bytes of the IDs of envelopes held,
 *                                                           then of messages recently delivered here
 * RouteRep = [7, dest: bytes(16), seqno: uint, metric: uint (0–65534), origin: bytes(16), reqId: uint]
 *                                                           the answer, sent back along the request's path
 * Fragment = [15, …]                                        see fragmentation.ts
 * ```
 */
import { TalkenError } from '../errors.ts'
import { type CborValue, decodeCbor, encodeCbor, FieldReader } from '../wire/cbor.ts'
import { DESTINATION_LENGTH, MAX_ENVELOPE_BYTES, MAX_HOP_LIMIT, MESSAGE_ID_LENGTH } from '../wire/limits.ts'

/** Frame kinds. */
export const FrameKind = {
  hello: 0,
  data: 1,
  hopAck: 2,
  proofs: 3,
  routes: 4,
  routeRequest: 5,
  summary: 6,
  routeReply: 7,
  fragment: 15,
} as const

/** HopAck statuses. */
export const HopAckStatus = { taken: 0, duplicate: 1, refused: 2, dead: 3 } as const
export type HopAckStatusCode = (typeof HopAckStatus)[keyof typeof HopAckStatus]

/** Route metric meaning "unreachable" (a retraction). */
export const INFINITY_METRIC = 0xffff
/** Most route entries one Routes frame carries. */
export const MAX_ROUTES_PER_FRAME = 256
/** Most proofs one Proofs frame carries. */
export const MAX_PROOFS_PER_FRAME = 64
/** Most IDs one Summary frame carries. */
export const MAX_SUMMARY_IDS = 1024
/** Length of the ID prefixes in a Summary. */
export const SUMMARY_ID_LENGTH = 8

/** The ID prefix (hex) that Summaries and proofs go by, of a message ID in hex. */
export function idPrefix(key: string): string {
  return key.slice(0, SUMMARY_ID_LENGTH * 2)
}
/** Largest mesh frame before fragmentation: an envelope plus the Data wrapper. */
export const MAX_FRAME_BYTES = MAX_ENVELOPE_BYTES + 16
const ACK_SECRET_LENGTH = 16
/**
 * Version 1 had no encounter count (a Met frame, kind 8, followed it), version 2 no proof: both
 * refused.
 */
const HELLO_VERSION = 3
/** Bytes of a Hello's proof when it has one (an Ed25519 signature; none is 0 bytes). */
export const HELLO_PROOF_LENGTH = 64
const NO_PROOF = new Uint8Array(0)

/** One advertised route. */
export interface RouteAdvert {
  readonly dest: Uint8Array
  readonly seqno: number
  readonly metric: number
}

/** A decoded mesh frame. */
export type Frame =
  | {
      readonly kind: 0
      readonly node: Uint8Array
      readonly seqno: number
      readonly encounters: number
      /** That the link speaks for `node`'s account (absent: the Hello claims it, nothing more). */
      readonly proof?: Uint8Array
    }
  | { readonly kind: 1; readonly envelope: Uint8Array }
  | { readonly kind: 2; readonly id: Uint8Array; readonly status: HopAckStatusCode }
  | { readonly kind: 3; readonly secrets: readonly Uint8Array[] }
  | { readonly kind: 4; readonly routes: readonly RouteAdvert[] }
  | {
      readonly kind: 5
      readonly dest: Uint8Array
      readonly origin: Uint8Array
      readonly originSeqno: number
      readonly reqId: number
      readonly hops: number
      readonly hopLimit: number
      /** Only a route with at least this seqno answers (0: any); the destination itself always does. */
      readonly wantSeqno: number
    }
  | { readonly kind: 6; readonly ids: readonly Uint8Array[] }
  | {
      readonly kind: 7
      readonly dest: Uint8Array
      readonly seqno: number
      readonly metric: number
      readonly origin: Uint8Array
      readonly reqId: number
    }

/** Encodes a frame. */
export function encodeFrame(frame: Frame): Uint8Array {
  let value: CborValue[]
  switch (frame.kind) {
    case FrameKind.hello:
      value = [frame.kind, HELLO_VERSION, frame.node, frame.seqno, frame.encounters, frame.proof ?? NO_PROOF]
      break
    case FrameKind.data:
      value = [frame.kind, frame.envelope]
      break
    case FrameKind.hopAck:
      value = [frame.kind, frame.id, frame.status]
      break
    case FrameKind.proofs:
      value = [frame.kind, [...frame.secrets]]
      break
    case FrameKind.routes:
      value = [frame.kind, frame.routes.map((r) => [r.dest, r.seqno, r.metric])]
      break
    case FrameKind.routeRequest:
      value = [
        frame.kind,
        frame.dest,
        frame.origin,
        frame.originSeqno,
        frame.reqId,
        frame.hops,
        frame.hopLimit,
        frame.wantSeqno,
      ]
      break
    case FrameKind.routeReply:
      value = [frame.kind, frame.dest, frame.seqno, frame.metric, frame.origin, frame.reqId]
      break
    case FrameKind.summary:
      value = [frame.kind, [...frame.ids]]
      break
  }
  return encodeCbor(value)
}

/** Peeks at a frame's kind without decoding it (undefined if the first bytes are not a frame header). */
export function peekFrameKind(bytes: Uint8Array): number | undefined {
  // An array header (0x80–0x97) followed by a small uint kind (0x00–0x17).
  const head = bytes[0]
  const kind = bytes[1]
  if (head === undefined || kind === undefined || head < 0x82 || head > 0x97 || kind > 0x17) return undefined
  return kind
}

/**
 * Decodes a mesh frame (not a fragment). Throws `too_large`, `malformed`, `non_canonical` or
 * `unsupported_version`; never anything else.
 */
export function decodeFrame(bytes: Uint8Array): Frame {
  const value = decodeCbor(bytes, MAX_FRAME_BYTES, 'mesh frame')
  if (!Array.isArray(value) || value.length < 2)
    throw new TalkenError('malformed', 'mesh frame: expected [kind, …]')
  const kind = value[0]
  switch (kind) {
    case FrameKind.hello: {
      // The version first, so that another version's layout is told apart from a malformed one.
      const version = new FieldReader(value.slice(1, 2), 'hello', 1).uint('version', 255)
      if (version !== HELLO_VERSION) throw new TalkenError('unsupported_version', `hello version ${version}`)
      const r = new FieldReader(value, 'hello', 6)
      r.uint('kind')
      r.uint('version')
      const node = r.bytes('node', DESTINATION_LENGTH)
      const seqno = r.uint('seqno', 0xffffffff)
      const encounters = r.uint('encounters', 0xffffffff)
      const proof = r.bytes('proof', 0, HELLO_PROOF_LENGTH)
      if (proof.length !== 0 && proof.length !== HELLO_PROOF_LENGTH) {
        throw new TalkenError('malformed', `hello.proof: 0 or ${HELLO_PROOF_LENGTH} bytes`)
      }
      return { kind, node, seqno, encounters, ...(proof.length > 0 ? { proof } : {}) }
    }
    case FrameKind.data: {
      const r = new FieldReader(value, 'data', 2)
      r.uint('kind')
      return { kind, envelope: r.bytes('envelope', 1, MAX_ENVELOPE_BYTES) }
    }
    case FrameKind.hopAck: {
      const r = new FieldReader(value, 'hop ack', 3)
      r.uint('kind')
      const id = r.bytes('id', MESSAGE_ID_LENGTH)
      return { kind, id, status: r.uint('status', 3) as HopAckStatusCode }
    }
    case FrameKind.proofs: {
      const r = new FieldReader(value, 'proofs', 2)
      r.uint('kind')
      const secrets = r.array('secrets', MAX_PROOFS_PER_FRAME, (v, i) =>
        new FieldReader([v], `proofs.secrets[${i}]`, 1).bytes('secret', ACK_SECRET_LENGTH),
      )
      if (secrets.length === 0) throw new TalkenError('malformed', 'proofs: empty')
      return { kind, secrets }
    }
    case FrameKind.routes: {
      const r = new FieldReader(value, 'routes', 2)
      r.uint('kind')
      const routes = r.array('routes', MAX_ROUTES_PER_FRAME, (v, i) => {
        const e = new FieldReader(v, `routes[${i}]`, 3)
        return {
          dest: e.bytes('dest', DESTINATION_LENGTH),
          seqno: e.uint('seqno', 0xffffffff),
          metric: e.uint('metric', INFINITY_METRIC),
        }
      })
      if (routes.length === 0) throw new TalkenError('malformed', 'routes: empty')
      return { kind, routes }
    }
    case FrameKind.routeRequest: {
      const r = new FieldReader(value, 'route request', 8)
      r.uint('kind')
      return {
        kind,
        dest: r.bytes('dest', DESTINATION_LENGTH),
        origin: r.bytes('origin', DESTINATION_LENGTH),
        originSeqno: r.uint('originSeqno', 0xffffffff),
        reqId: r.uint('reqId', 0xffffffff),
        hops: r.uint('hops', MAX_HOP_LIMIT),
        hopLimit: r.uint('hopLimit', MAX_HOP_LIMIT),
        wantSeqno: r.uint('wantSeqno', 0xffffffff),
      }
    }
    case FrameKind.routeReply: {
      const r = new FieldReader(value, 'route reply', 6)
      r.uint('kind')
      return {
        kind,
        dest: r.bytes('dest', DESTINATION_LENGTH),
        seqno: r.uint('seqno', 0xffffffff),
        metric: r.uint('metric', INFINITY_METRIC - 1),
        origin: r.bytes('origin', DESTINATION_LENGTH),
        reqId: r.uint('reqId', 0xffffffff),
      }
    }
    case FrameKind.summary: {
      const r = new FieldReader(value, 'summary', 2)
      r.uint('kind')
      const ids = r.array('ids', MAX_SUMMARY_IDS, (v, i) =>
        new FieldReader([v], `summary.ids[${i}]`, 1).bytes('id', SUMMARY_ID_LENGTH),
      )
      return { kind, ids }
    }
    default:
      throw new TalkenError('malformed', `mesh frame: unknown kind ${String(kind)}`)
  }
}
