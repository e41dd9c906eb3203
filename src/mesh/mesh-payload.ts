/**
 * What the mesh puts inside an envelope's payload, around the application's body.
 *
 * ```
 * Opaque message = [3, body: bytes]                        flags: ackRequested, or 0 (datagram)
 *                  source and ack secret travel inside body, sealed end to end (SendOptions.ackSecret)
 * Message        = [1, source: bytes(16), ackSecret: bytes(16), body: bytes]    flags: ackRequested
 *                  source and ack secret in the clear: for a caller with no end-to-end layer (the simulator)
 * Ack            = [2, ackSecret: bytes(16)]                       flags: ack
 * Sealed ack     = [4, ackTag: bytes(16)]                          flags: ack
 *                  the answer to an opaque message: the tag its sender sealed inside the body
 * envelope id of a message = first 16 bytes of SHA-256("talken/ack-proof" ‖ 0x00 ‖ ackSecret)
 * ```
 * The ack secret is the delivery proof: anyone can check it against the envelope ID, and in an
 * opaque message only the recipient, by opening the body, learns it. So a relay purges its copy
 * only on a real acknowledgement, and cannot forge one: it sees the ID, never the secret. Nor does
 * it see who sent an opaque message: the recipient learns the source from the body too.
 *
 * The acknowledgement envelope that goes back to the source of an opaque message carries not the
 * secret but the ack tag the source sealed beside it (SendOptions.ackTag): a relay that carries
 * both the message and the acknowledgement cannot tell that one answers the other, even once the
 * proof has spread, so it does not learn who wrote to whom. The proof itself goes back along the
 * paths the message came (Proofs frames), to every holder of a copy.
 */
import { createHash } from 'node:crypto'
import { TalkenError } from '../errors.ts'
import { decodeCbor, encodeCbor, FieldReader } from '../wire/cbor.ts'
import { DESTINATION_LENGTH, MAX_PAYLOAD_BYTES, MESSAGE_ID_LENGTH } from '../wire/limits.ts'

/** Length of an ack secret. */
export const ACK_SECRET_LENGTH = 16
/** Length of an ack tag. */
export const ACK_TAG_LENGTH = 16
const PROOF_LABEL = Buffer.from('talken/ack-proof\u0000', 'utf8')
/** Bytes the Message wrapper adds around the body (array 1, kind 1, 2 × 17, body header ≤ 5). */
export const MESSAGE_OVERHEAD = 1 + 1 + 17 + 17 + 5
/** Largest application body one envelope carries. */
export const MAX_BODY_BYTES = MAX_PAYLOAD_BYTES - MESSAGE_OVERHEAD

/** The message ID that an ack secret proves. */
export function proofId(ackSecret: Uint8Array): Uint8Array {
  return new Uint8Array(
    createHash('sha256').update(PROOF_LABEL).update(ackSecret).digest().subarray(0, MESSAGE_ID_LENGTH),
  )
}

/** A decoded mesh payload. */
export type MeshPayload =
  | {
      readonly kind: 1
      readonly source: Uint8Array
      readonly ackSecret: Uint8Array
      readonly body: Uint8Array
    }
  | { readonly kind: 2; readonly ackSecret: Uint8Array }
  | { readonly kind: 3; readonly body: Uint8Array }
  | { readonly kind: 4; readonly ackTag: Uint8Array }

/** Encodes a mesh payload. */
export function encodeMeshPayload(p: MeshPayload): Uint8Array {
  switch (p.kind) {
    case 1:
      return encodeCbor([1, p.source, p.ackSecret, p.body])
    case 2:
      return encodeCbor([2, p.ackSecret])
    case 3:
      return encodeCbor([3, p.body])
    case 4:
      return encodeCbor([4, p.ackTag])
  }
}

/** Decodes a mesh payload; typed errors only. */
export function decodeMeshPayload(bytes: Uint8Array): MeshPayload {
  const value = decodeCbor(bytes, MAX_PAYLOAD_BYTES, 'mesh payload')
  if (!Array.isArray(value)) throw new TalkenError('malformed', 'mesh payload: expected an array')
  if (value[0] === 1) {
    const r = new FieldReader(value, 'mesh message', 4)
    r.uint('kind')
    return {
      kind: 1,
      source: r.bytes('source', DESTINATION_LENGTH),
      ackSecret: r.bytes('ackSecret', ACK_SECRET_LENGTH),
      body: r.bytes('body', 0, MAX_BODY_BYTES),
    }
  }
  if (value[0] === 2) {
    const r = new FieldReader(value, 'mesh ack', 2)
    r.uint('kind')
    return { kind: 2, ackSecret: r.bytes('ackSecret', ACK_SECRET_LENGTH) }
  }
  if (value[0] === 3) {
    const r = new FieldReader(value, 'mesh opaque message', 2)
    r.uint('kind')
    return { kind: 3, body: r.bytes('body', 0, MAX_BODY_BYTES) }
  }
  if (value[0] === 4) {
    const r = new FieldReader(value, 'mesh sealed ack', 2)
    r.uint('kind')
    return { kind: 4, ackTag: r.bytes('ackTag', ACK_TAG_LENGTH) }
  }
  throw new TalkenError('malformed', 'mesh payload: unknown kind')
}
