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
      { kind: 0, node: tag, seqno: 7, encounters: 3, proof: new Uint8Array(64).fill(9) },
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

  it('a Hello is the bytes docs/protocol.md shows, and carries the encounter count and a proof', () => {
    const bytes = encodeFrame({ kind: 0, node: tag, seqno: 7, encounters: 3 })
    // 86 (array of 6), 00 (Hello), 03 (version), 50 + 16 bytes (tag), 07 (seqno), 03 (encounters),
    // 40 (no proof)
    assert.equal(Buffer.from(bytes).toString('hex'), `86000350${'05'.repeat(16)}070340`)
    const proved = encodeFrame({ kind: 0, node: tag, seqno: 7, encounters: 3, proof: new Uint8Array(64) })
    assert.equal(Buffer.from(proved).toString('hex'), `86000350${'05'.repeat(16)}07035840${'00'.repeat(64)}`)
    // A proof is 64 bytes or none.
    throwsCode(() => decodeFrame(encodeCbor([0, 3, tag, 7, 3, new Uint8Array(63)])), 'malformed')
  })

  it('Hellos of versions 1 (before the encounter count) and 2 (before proofs) are refused as other versions', () => {
    throwsCode(() => decodeFrame(encodeCbor([0, 1, tag, 7])), 'unsupported_version')
    throwsCode(() => decodeFrame(encodeCbor([0, 2, tag, 7, 3])), 'unsupported_version')
  })

  it('the retired Met frame (kind 8) is an unknown kind', () => {
    throwsCode(() => decodeFrame(encodeCbor([8, 12])), 'malformed')
  })
})
