/**
 * Mesh frames on a byte stream (src/links/framing.ts): however the stream is cut into reads, the
 * same frames come out; only a real protocol violation is refused.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as varint from 'uint8-varint'
import { Uint8ArrayList } from 'uint8arraylist'
import { encodeFrame, FrameDecoder } from '../../src/links/framing.ts'
import { MAX_FRAME_BYTES } from '../../src/mesh/frames.ts'
import { throwsCode } from '../helpers/errors.ts'
import { prng, testSeed } from '../helpers/prng.ts'

/** `count` frames of `size` bytes, frame i filled with i. */
function frames(count: number, size: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => new Uint8Array(size).fill(i & 0xff))
}

function stream(fs: readonly Uint8Array[]): Uint8Array {
  const list = new Uint8ArrayList()
  for (const f of fs) list.append(encodeFrame(f))
  return list.subarray()
}

describe('stream framing', () => {
  it('one read with four largest frames (256 KiB) gives the four frames', () => {
    const sent = frames(4, MAX_FRAME_BYTES)
    const bytes = stream(sent)
    assert.ok(bytes.byteLength > 4 * MAX_FRAME_BYTES)
    assert.deepEqual(new FrameDecoder().push(bytes), sent)
    // The same as a list of chunks, as libp2p hands them over.
    const list = new Uint8ArrayList()
    for (const f of sent) list.append(encodeFrame(f))
    assert.deepEqual(new FrameDecoder().push(list), sent)
  })

  it('one read with 5,000 small frames gives them all', () => {
    const sent = frames(5_000, 200)
    assert.deepEqual(new FrameDecoder().push(stream(sent)), sent)
  })

  it('the same frames however the stream is cut into reads', () => {
    const seed = testSeed()
    const r = prng(seed)
    const sent = [
      ...frames(3, MAX_FRAME_BYTES),
      ...frames(50, 1),
      ...frames(20, 3_000),
      ...frames(2, MAX_FRAME_BYTES),
    ]
    const bytes = stream(sent)
    for (let round = 0; round < 20; round++) {
      const decoder = new FrameDecoder()
      const got: Uint8Array[] = []
      for (let at = 0; at < bytes.byteLength; ) {
        const end = Math.min(bytes.byteLength, at + 1 + Math.floor(r() * 300_000))
        got.push(...decoder.push(bytes.subarray(at, end)))
        at = end
      }
      assert.equal(got.length, sent.length, `seed ${seed}, round ${round}`)
      assert.deepEqual(got, sent, `seed ${seed}, round ${round}`)
    }
  })

  it('a zero length is skipped; an oversized length or an endless prefix is refused with malformed', () => {
    const one = new Uint8Array(10).fill(1)
    const withZeros = new Uint8ArrayList(Uint8Array.of(0, 0), encodeFrame(one), Uint8Array.of(0))
    assert.deepEqual(new FrameDecoder().push(withZeros), [one])
    throwsCode(() => new FrameDecoder().push(varint.encode(MAX_FRAME_BYTES + 1)), 'malformed')
    throwsCode(() => new FrameDecoder().push(new Uint8Array(8).fill(0x80)), 'malformed')
  })
})
