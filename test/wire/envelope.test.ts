import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { encodeCbor } from '../../src/wire/cbor.ts'
import { decodeEnvelope, type Envelope, encodeEnvelope, messageIdHex } from '../../src/wire/envelope.ts'
import { MAX_ENVELOPE_BYTES, MAX_PAYLOAD_BYTES } from '../../src/wire/limits.ts'
import { throwsCode } from '../helpers/errors.ts'

function envelope(overrides: Partial<Envelope> = {}): Envelope {
  return {
    id: new Uint8Array(randomBytes(16)),
    destination: new Uint8Array(randomBytes(16)),
    hopLimit: 16,
    expires: 1_750_000_000,
    copies: 8,
    flags: 0,
    payload: new Uint8Array(randomBytes(100)),
    ...overrides,
  }
}

describe('envelope codec', () => {
  it('round-trips, including the largest payload', () => {
    for (const e of [
      envelope(),
      envelope({ payload: new Uint8Array(MAX_PAYLOAD_BYTES), hopLimit: 64, copies: 1024 }),
    ]) {
      const bytes = encodeEnvelope(e)
      assert.ok(bytes.length <= MAX_ENVELOPE_BYTES)
      assert.deepEqual(decodeEnvelope(bytes), e)
    }
  })

  it('refuses to encode values others would refuse', () => {
    throwsCode(
      () => encodeEnvelope(envelope({ payload: new Uint8Array(MAX_PAYLOAD_BYTES + 1) })),
      'too_large',
    )
    throwsCode(() => encodeEnvelope(envelope({ hopLimit: 65 })), 'invalid_argument')
    throwsCode(() => encodeEnvelope(envelope({ copies: 0 })), 'invalid_argument')
    throwsCode(() => encodeEnvelope(envelope({ id: new Uint8Array(15) })), 'invalid_argument')
  })

  it('decodes only the one canonical encoding', () => {
    const e = envelope({ hopLimit: 3 })
    const bytes = encodeEnvelope(e)
    // hopLimit 3 written in two bytes (0x18 0x03) instead of one: same value, not canonical.
    const hopAt = 1 + 1 + 17 + 17
    assert.equal(bytes[hopAt], 3)
    const long = new Uint8Array([...bytes.subarray(0, hopAt), 0x18, 0x03, ...bytes.subarray(hopAt + 1)])
    throwsCode(() => decodeEnvelope(long), 'non_canonical')
    // A byte string's length written in two bytes (0x58 0x10) instead of one (0x50).
    const idLong = new Uint8Array([bytes[0]!, bytes[1]!, 0x58, 0x10, ...bytes.subarray(3)])
    assert.equal(bytes[2], 0x50)
    throwsCode(() => decodeEnvelope(idLong), 'non_canonical')
    // Valid CBOR that differs from the canonical form otherwise: a map with its keys out of order
    // ({"b": 0, "a": 0}).
    throwsCode(
      () => decodeEnvelope(new Uint8Array([0xa2, 0x61, 0x62, 0x00, 0x61, 0x61, 0x00])),
      'non_canonical',
    )
  })

  it('refuses every malformed shape with a typed error', () => {
    throwsCode(() => decodeEnvelope(new Uint8Array(0)), 'malformed')
    throwsCode(() => decodeEnvelope(new Uint8Array(MAX_ENVELOPE_BYTES + 1)), 'too_large')
    throwsCode(() => decodeEnvelope(encodeCbor([2, new Uint8Array(16)])), 'malformed')
    throwsCode(
      () =>
        decodeEnvelope(
          encodeCbor([2, new Uint8Array(16), new Uint8Array(16), 1, 1, 1, 0, new Uint8Array(0)]),
        ),
      'unsupported_version',
    )
    throwsCode(
      () => decodeEnvelope(encodeCbor([1, 'x', new Uint8Array(16), 1, 1, 1, 0, new Uint8Array(0)])),
      'malformed',
    )
    throwsCode(() => decodeEnvelope(encodeCbor('hello')), 'malformed')
    const bytes = encodeEnvelope(envelope())
    throwsCode(() => decodeEnvelope(bytes.subarray(0, bytes.length - 1)), 'malformed')
    throwsCode(() => decodeEnvelope(new Uint8Array([...bytes, 0])), 'malformed', 'non_canonical')
  })

  it('gives the message ID as hex', () => {
    assert.equal(messageIdHex(new Uint8Array([0, 1, 255])), '0001ff')
  })
})
