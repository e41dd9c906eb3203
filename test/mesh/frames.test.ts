import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeFrame, encodeFrame, type Frame } from '../../src/mesh/frames.ts'
import { encodeCbor } from '../../src/wire/cbor.ts'
import { throwsCode } from '../helpers/errors.ts'

const tag = new Uint8Array(16).fill(5)

describe('mesh frames', () => {
  it('every kind round-trips', () => {
    const frames: Frame[] = [
      { kind: 0, node: tag, seqno: 7, encounters: 3 },
      { kind: 1, envelope: new Uint8Array(40).fill(1) },
      { kind: 2, id: tag, status: 3 },
      { kind: 3, secrets: [tag] },
      { kind: 4, routes: [{ dest: tag, seqno: 2, metric: 4 }] },
      { kind: 5, dest: tag, origin: tag, originSeqno: 1, reqId: 2, hops: 0, hopLimit: 8, wantSeqno: 0 },
      { kind: 6, ids: [tag.subarray(0, 8)] },
      { kind: 7, dest: tag, seqno: 2, metric: 0, origin: tag, reqId: 2 },
    ]
    for (const f of frames) assert.deepEqual(decodeFrame(encodeFrame(f)), f)
  })

  it('a Hello is the bytes docs/protocol.md shows, and carries the encounter count', () => {
    const bytes = encodeFrame({ kind: 0, node: tag, seqno: 7, encounters: 3 })
    // 85 (array of 5), 00 (Hello), 02 (version), 50 + 16 bytes (tag), 07 (seqno), 03 (encounters)
    assert.equal(Buffer.from(bytes).toString('hex'), `85000250${'05'.repeat(16)}0703`)
  })

  it('a version 1 Hello (before the encounter count) is refused as another version', () => {
    const v1 = encodeCbor([0, 1, tag, 7])
    throwsCode(() => decodeFrame(v1), 'unsupported_version')
  })

  it('the retired Met frame (kind 8) is an unknown kind', () => {
    throwsCode(() => decodeFrame(encodeCbor([8, 12])), 'malformed')
  })
})
