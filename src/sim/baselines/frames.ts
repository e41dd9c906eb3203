/**
 * Wire format of the simulator's baseline routers (epidemic, direct delivery, spray-and-wait).
 * It is not Talken's protocol: just enough for the baselines to work over real frames, so the
 * simulator counts and times their traffic as honestly as Talken's. Integers are big-endian.
 *
 * ```
 * SUMMARY (control) — who I am and which messages I hold or have had delivered
 *   off  size  field
 *   0    1     type = 0x01
 *   1    16    sender's destination tag
 *   17   1     flags: bit 0 = last chunk of this summary
 *   18   2     n = number of ID prefixes in this chunk
 *   20   8·n   the first 8 bytes of each message ID (as Talken's Summary: a prefix shared by two
 *              messages makes the receiver believe the sender has both, a rare missed copy)
 *
 * NOTICE (control) — one message ID and what is said of it
 *   0    1     type: 0x02 HAVE    I now hold this message too
 *                    0x04 ACK     I received this message (whole)
 *                    0x05 OFFER   may I send you this message?
 *                    0x06 ACCEPT  yes: send it
 *                    0x07 REFUSE  no: I have it, had it delivered, or am receiving it from another
 *                    0x08 WANT    the copy I was receiving failed after I refused yours: offer again
 *   1    16    message ID
 *
 * DATA (data) — one chunk of a message
 *   0    1     type = 0x03
 *   1    16    message ID
 *   17   16    destination tag
 *   33   4     remaining lifetime, milliseconds (0xffffffff: at least 49 days)
 *   37   2     copies handed to the receiver (spray budget)
 *   39   1     hops travelled so far
 *   40   4     total payload length
 *   44   4     offset of this chunk in the payload
 *   48   …     chunk bytes (up to MTU − 48)
 * ```
 */

/** Frame type bytes. */
export const FrameType = {
  summary: 0x01,
  have: 0x02,
  data: 0x03,
  ack: 0x04,
  offer: 0x05,
  accept: 0x06,
  refuse: 0x07,
  want: 0x08,
} as const

/** The frame types that carry one message ID and nothing else. */
export type NoticeType =
  | typeof FrameType.have
  | typeof FrameType.ack
  | typeof FrameType.offer
  | typeof FrameType.accept
  | typeof FrameType.refuse
  | typeof FrameType.want

/** Bytes of a SUMMARY frame before its IDs: type 1 + tag 16 + flags 1 + count 2. */
export const SUMMARY_HEADER = 20
/** NOTICE frames (HAVE, ACK, OFFER, ACCEPT, REFUSE, WANT): type 1 + ID 16. */
export const NOTICE_BYTES = 17
/** Bytes of a DATA frame before its chunk: 1 + 16 + 16 + 4 + 2 + 1 + 4 + 4. */
export const DATA_HEADER = 48
/** Largest payload a baseline reassembles: 1 MiB (bounds what a forged header can make us allocate). */
export const MAX_BASELINE_PAYLOAD = 1024 * 1024
/** ID and tag length. */
export const KEY_BYTES = 16
/** Bytes of each message ID a SUMMARY lists: 8, as Talken's Summary (`SUMMARY_ID_LENGTH`, src/mesh/frames.ts). */
export const PREFIX_BYTES = 8

/** A decoded SUMMARY chunk; `ids` views the frame ({@link PREFIX_BYTES} bytes each). */
export interface SummaryFrame {
  readonly type: typeof FrameType.summary
  readonly tag: Uint8Array
  readonly last: boolean
  readonly ids: Uint8Array
}

/** A decoded NOTICE (HAVE, ACK, OFFER, ACCEPT, REFUSE or WANT). */
export interface NoticeFrame {
  readonly type: NoticeType
  readonly id: Uint8Array
}

/** A decoded DATA chunk; byte fields view the frame. */
export interface DataFrame {
  readonly type: typeof FrameType.data
  readonly id: Uint8Array
  readonly destination: Uint8Array
  readonly remainingMs: number
  readonly copies: number
  readonly hops: number
  readonly total: number
  readonly offset: number
  readonly chunk: Uint8Array
}

/** Any decoded baseline frame. */
export type BaselineFrame = SummaryFrame | NoticeFrame | DataFrame

/**
 * The 16 bytes at `b[offset…]` as a 16-character string of code points 0–255: a map key four
 * times cheaper to make than hex, which matters when every encounter exchanges summary vectors.
 */
export function idKey(b: Uint8Array, offset = 0): string {
  const o = offset
  return String.fromCharCode(
    b[o]!,
    b[o + 1]!,
    b[o + 2]!,
    b[o + 3]!,
    b[o + 4]!,
    b[o + 5]!,
    b[o + 6]!,
    b[o + 7]!,
    b[o + 8]!,
    b[o + 9]!,
    b[o + 10]!,
    b[o + 11]!,
    b[o + 12]!,
    b[o + 13]!,
    b[o + 14]!,
    b[o + 15]!,
  )
}

/**
 * The 8-byte ID prefix at `b[offset…]` as an 8-character key: equal to the first 8 characters of
 * the message's {@link idKey}, which is what {@link prefixOf} returns.
 */
export function prefixKey(b: Uint8Array, offset = 0): string {
  const o = offset
  return String.fromCharCode(
    b[o]!,
    b[o + 1]!,
    b[o + 2]!,
    b[o + 3]!,
    b[o + 4]!,
    b[o + 5]!,
    b[o + 6]!,
    b[o + 7]!,
  )
}

/** The ID-prefix key (as in a SUMMARY) of a message whose full {@link idKey} is `key`. */
export function prefixOf(key: string): string {
  return key.slice(0, PREFIX_BYTES)
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength)
}

/** Encodes one SUMMARY chunk; `ids` is a multiple of 8 bytes (ID prefixes), at most 65,535 of them. */
export function encodeSummary(tag: Uint8Array, ids: Uint8Array, last: boolean): Uint8Array {
  const out = new Uint8Array(SUMMARY_HEADER + ids.length)
  out[0] = FrameType.summary
  out.set(tag, 1)
  out[17] = last ? 1 : 0
  view(out).setUint16(18, ids.length / PREFIX_BYTES)
  out.set(ids, SUMMARY_HEADER)
  return out
}

/** Encodes a NOTICE of `type` about the 16-byte ID at `bytes[offset…]`. */
export function encodeNotice(
  type: NoticeType,
  bytes: Uint8Array,
  offset = 0,
  alloc: (length: number) => Uint8Array = (n) => new Uint8Array(n),
): Uint8Array {
  const out = alloc(NOTICE_BYTES)
  out[0] = type
  for (let i = 0; i < KEY_BYTES; i++) out[1 + i] = bytes[offset + i]!
  return out
}

/**
 * Encodes one DATA chunk of a message held as a record `ID (16) | destination (16) | payload`:
 * the chunk of the payload starting at `offset`, at most `chunkBytes` long.
 */
export function encodeData(
  record: Uint8Array,
  remainingMs: number,
  copies: number,
  hops: number,
  offset: number,
  chunkBytes: number,
  alloc: (length: number) => Uint8Array = (n) => new Uint8Array(n),
): Uint8Array {
  const total = record.length - 2 * KEY_BYTES
  const end = Math.min(total, offset + chunkBytes)
  const out = alloc(DATA_HEADER + (end - offset))
  const dv = view(out)
  out[0] = FrameType.data
  for (let i = 0; i < 2 * KEY_BYTES; i++) out[1 + i] = record[i]!
  dv.setUint32(33, Math.min(0xffffffff, Math.max(0, Math.floor(remainingMs))))
  dv.setUint16(37, Math.min(0xffff, copies))
  out[39] = Math.min(0xff, hops)
  dv.setUint32(40, total)
  dv.setUint32(44, offset)
  out.set(record.subarray(2 * KEY_BYTES + offset, 2 * KEY_BYTES + end), DATA_HEADER)
  return out
}

/** Decodes a frame; undefined for anything malformed (wrong type, length, or bounds). */
export function decodeFrame(frame: Uint8Array): BaselineFrame | undefined {
  if (frame.length === 0) return undefined
  switch (frame[0]) {
    case FrameType.summary: {
      if (frame.length < SUMMARY_HEADER) return undefined
      const n = view(frame).getUint16(18)
      if (frame.length !== SUMMARY_HEADER + PREFIX_BYTES * n || (frame[17]! & ~1) !== 0) return undefined
      return {
        type: FrameType.summary,
        tag: frame.subarray(1, 17),
        last: frame[17] === 1,
        ids: frame.subarray(SUMMARY_HEADER),
      }
    }
    case FrameType.have:
    case FrameType.ack:
    case FrameType.offer:
    case FrameType.accept:
    case FrameType.refuse:
    case FrameType.want:
      if (frame.length !== NOTICE_BYTES) return undefined
      return { type: frame[0] as NoticeFrame['type'], id: frame.subarray(1) }
    case FrameType.data: {
      if (frame.length < DATA_HEADER) return undefined
      const dv = view(frame)
      const total = dv.getUint32(40)
      const offset = dv.getUint32(44)
      const chunk = frame.subarray(DATA_HEADER)
      if (total > MAX_BASELINE_PAYLOAD || offset + chunk.length > total) return undefined
      if (chunk.length === 0 && total > 0) return undefined
      return {
        type: FrameType.data,
        id: frame.subarray(1, 17),
        destination: frame.subarray(17, 33),
        remainingMs: dv.getUint32(33),
        copies: dv.getUint16(37),
        hops: frame[39]!,
        total,
        offset,
        chunk,
      }
    }
    default:
      return undefined
  }
}
