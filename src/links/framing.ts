/**
 * Mesh frames on a libp2p byte stream: each frame is an unsigned varint length followed by that
 * many bytes (the multiformats varint libp2p uses everywhere). A length of zero is skipped. A
 * length above {@link MAX_FRAME_BYTES}, or more than one frame's worth of bytes buffered without a
 * complete frame (however many whole frames one read brings), is a protocol violation: the stream
 * is aborted, and other links are untouched.
 */
import { LengthPrefixedDecoder } from '@libp2p/utils'
import * as varint from 'uint8-varint'
import { Uint8ArrayList } from 'uint8arraylist'
import { TalkenError } from '../errors.ts'
import { MAX_FRAME_BYTES } from '../mesh/frames.ts'

/** Bytes one frame takes on the stream at most: the frame plus its varint length (3 bytes for 64 KiB). */
export const MAX_FRAMED_BYTES = MAX_FRAME_BYTES + varint.encodingLength(MAX_FRAME_BYTES)

/** The bytes to write for one frame. */
export function encodeFrame(frame: Uint8Array): Uint8ArrayList {
  if (frame.length === 0 || frame.length > MAX_FRAME_BYTES) {
    throw new TalkenError(
      'too_large',
      `a mesh frame must be 1 to ${MAX_FRAME_BYTES} bytes, not ${frame.length}`,
    )
  }
  return new Uint8ArrayList(varint.encode(frame.length), frame)
}

/** Bytes of the longest length prefix a valid frame can have. */
const MAX_PREFIX_BYTES = varint.encodingLength(MAX_FRAME_BYTES)

/**
 * Reads the length prefix. A prefix still unfinished after {@link MAX_PREFIX_BYTES} bytes can
 * only announce an oversized frame: refuse it now rather than wait for bytes that never end it.
 */
function decodeLength(data: Uint8Array | Uint8ArrayList): number {
  const n = Math.min(data.byteLength, MAX_PREFIX_BYTES)
  let ended = false
  for (let i = 0; i < n; i++) {
    const byte = data instanceof Uint8Array ? (data[i] as number) : data.get(i)
    if ((byte & 0x80) === 0) {
      ended = true
      break
    }
  }
  if (!ended && data.byteLength >= MAX_PREFIX_BYTES) throw new Error('frame length prefix too long')
  return varint.decode(data)
}

/** Bytes handed to the length-prefixed decoder at a time (see {@link FrameDecoder.push}). */
const SLICE_BYTES = 64 * 1024

/** Splits a byte stream back into frames; throws `malformed` on a protocol violation. */
export class FrameDecoder {
  readonly #decoder = new LengthPrefixedDecoder({
    maxDataLength: MAX_FRAME_BYTES,
    maxBufferSize: MAX_FRAMED_BYTES + SLICE_BYTES,
    lengthDecoder: decodeLength,
  })

  /**
   * Frames completed by `chunk`, in order. One read can bring many whole frames (a sender writes
   * what it has queued at once, and reads merge): the decoder takes the chunk a slice at a time,
   * so its buffer limit bounds the bytes of an unfinished frame, not the size of a read.
   */
  push(chunk: Uint8Array | Uint8ArrayList): Uint8Array[] {
    const frames: Uint8Array[] = []
    try {
      for (let at = 0; at < chunk.byteLength; at += SLICE_BYTES) {
        const end = Math.min(at + SLICE_BYTES, chunk.byteLength)
        const slice = chunk instanceof Uint8Array ? chunk.subarray(at, end) : chunk.sublist(at, end)
        for (const frame of this.#decoder.decode(slice)) frames.push(frame.subarray())
      }
    } catch (err) {
      throw new TalkenError('malformed', `bad mesh stream framing: ${(err as Error).message}`, { cause: err })
    }
    return frames
  }
}
