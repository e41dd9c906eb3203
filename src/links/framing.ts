/**
 * Mesh frames on a libp2p byte stream: each frame is an unsigned varint length followed by that
 * many bytes (the multiformats varint libp2p uses everywhere). A length of zero or above
 * {@link MAX_FRAME_BYTES}, or more than one frame's worth of bytes buffered without a complete
 * frame, is a protocol violation: the stream is aborted, and other links are untouched.
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

/** Splits a byte stream back into frames; throws `malformed` on a protocol violation. */
export class FrameDecoder {
  readonly #decoder = new LengthPrefixedDecoder({
    maxDataLength: MAX_FRAME_BYTES,
    maxBufferSize: MAX_FRAMED_BYTES + 64 * 1024,
  })

  /** Frames completed by `chunk`, in order. */
  push(chunk: Uint8Array | Uint8ArrayList): Uint8Array[] {
    const frames: Uint8Array[] = []
    try {
      for (const frame of this.#decoder.decode(chunk)) frames.push(frame.subarray())
    } catch (err) {
      throw new TalkenError('malformed', `bad mesh stream framing: ${(err as Error).message}`, { cause: err })
    }
    return frames
  }
}
