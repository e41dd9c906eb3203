/**
 * The envelope: what the mesh carries hop by hop. A small routing header that relays read and
 * update, around an opaque payload that only the recipient can open (sealed by the e2e layer).
 *
 * ```
 * Envelope = [ version: uint (1), id: bytes(16), destination: bytes(16), hopLimit: uint (0–64),
 *              expires: uint (Unix seconds), copies: uint (1–1024), flags: uint (0–65535),
 *              payload: bytes (0–65536) ]
 * ```
 * The header is not signed: relays decrement `hopLimit` and split `copies` as they forward.
 * Integrity and authenticity of the content come from the sealed payload. The sender is
 * deliberately absent. Byte table: docs/protocol.md §Envelope.
 */
import { TalkenError } from '../errors.ts'
import { decodeCbor, encodeCbor, FieldReader } from './cbor.ts'
import {
  DESTINATION_LENGTH,
  MAX_COPIES,
  MAX_ENVELOPE_BYTES,
  MAX_HOP_LIMIT,
  MAX_PAYLOAD_BYTES,
  MESSAGE_ID_LENGTH,
} from './limits.ts'

/** The envelope format version this code reads and writes. */
export const ENVELOPE_VERSION = 1

/** Envelope flag bits. Unknown bits are carried unchanged. */
export const EnvelopeFlags = {
  /** The payload is an end-to-end delivery acknowledgement. */
  ack: 1 << 0,
  /** The sender asks for an acknowledgement. */
  ackRequested: 1 << 1,
  /** The payload is one fragment of a larger message. */
  fragment: 1 << 2,
} as const

/** A decoded envelope. */
export interface Envelope {
  /** 16 random bytes, unique per message; the key for dedup and acknowledgements. */
  readonly id: Uint8Array
  /** 16-byte tag naming the recipient (derived by the e2e layer; not an account key). */
  readonly destination: Uint8Array
  /** Hops left; a relay drops an envelope that arrives with 0. */
  readonly hopLimit: number
  /** Unix seconds after which nobody forwards or stores it. */
  readonly expires: number
  /** Copy budget for spray-and-wait custody. */
  readonly copies: number
  /** Bit set of {@link EnvelopeFlags}. */
  readonly flags: number
  /** Opaque sealed payload. */
  readonly payload: Uint8Array
}

function check(e: Envelope): void {
  const bad = (m: string) => new TalkenError('invalid_argument', `envelope: ${m}`)
  if (e.id.length !== MESSAGE_ID_LENGTH) throw bad(`id is ${MESSAGE_ID_LENGTH} bytes`)
  if (e.destination.length !== DESTINATION_LENGTH) throw bad(`destination is ${DESTINATION_LENGTH} bytes`)
  if (!Number.isInteger(e.hopLimit) || e.hopLimit < 0 || e.hopLimit > MAX_HOP_LIMIT)
    throw bad('hopLimit out of range')
  if (!Number.isSafeInteger(e.expires) || e.expires < 0) throw bad('expires is Unix seconds')
  if (!Number.isInteger(e.copies) || e.copies < 1 || e.copies > MAX_COPIES) throw bad('copies out of range')
  if (!Number.isInteger(e.flags) || e.flags < 0 || e.flags > 0xffff) throw bad('flags out of range')
  if (e.payload.length > MAX_PAYLOAD_BYTES) {
    throw new TalkenError(
      'too_large',
      `envelope payload of ${e.payload.length} bytes exceeds ${MAX_PAYLOAD_BYTES}`,
    )
  }
}

/** Encodes an envelope. Throws `invalid_argument` or `too_large` for values others would refuse. */
export function encodeEnvelope(e: Envelope): Uint8Array {
  check(e)
  return encodeCbor([
    ENVELOPE_VERSION,
    e.id,
    e.destination,
    e.hopLimit,
    e.expires,
    e.copies,
    e.flags,
    e.payload,
  ])
}

/**
 * Decodes an envelope. Throws `too_large`, `malformed`, `non_canonical` or `unsupported_version`;
 * never anything else.
 */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  const r = new FieldReader(decodeCbor(bytes, MAX_ENVELOPE_BYTES, 'envelope'), 'envelope', 8)
  const version = r.uint('version', 255)
  if (version !== ENVELOPE_VERSION)
    throw new TalkenError('unsupported_version', `envelope version ${version}`)
  return {
    id: r.bytes('id', MESSAGE_ID_LENGTH),
    destination: r.bytes('destination', DESTINATION_LENGTH),
    hopLimit: r.uint('hopLimit', MAX_HOP_LIMIT),
    expires: r.uint('expires'),
    copies: r.uint('copies', MAX_COPIES, 1),
    flags: r.uint('flags', 0xffff),
    payload: r.bytes('payload', 0, MAX_PAYLOAD_BYTES),
  }
}

/** Lower-case hex of a message ID, the form the store keys messages by. */
export function messageIdHex(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex')
}
