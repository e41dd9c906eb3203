/**
 * A stored envelope that does not decode (damaged on disk, or written by a version with a defect)
 * does not keep the mesh core, and so the node, from starting: it is removed, an own message of
 * it is given up as `failed` with a reason, and everything else is restored.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { UNREADABLE_ENVELOPE_REASON } from '../../src/mesh/held.ts'
import type { MeshCore } from '../../src/mesh/mesh-core.ts'
import { encodeMeshPayload } from '../../src/mesh/mesh-payload.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'
import { EnvelopeFlags, encodeEnvelope } from '../../src/wire/envelope.ts'
import { handCore, nameTag } from '../helpers/mesh-net.ts'

const NOW = 1_750_000_000_000
const tag = nameTag
const idOf = (n: number) => Uint8Array.from({ length: 16 }, (_, i) => (i === 15 ? n : 0))
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

function envelope(n: number): Uint8Array {
  return encodeEnvelope({
    id: idOf(n),
    destination: tag('D'),
    hopLimit: 30,
    expires: Math.floor(NOW / 1000) + 3600,
    copies: 4,
    flags: EnvelopeFlags.ackRequested,
    payload: encodeMeshPayload({ kind: 3, body: new Uint8Array(8) }),
  })
}

function core(store: ReturnType<typeof createMemoryStore>, logged: string[]): MeshCore {
  return handCore(store, { now: () => NOW, log: (level, message) => logged.push(`${level}: ${message}`) })
}

describe('mesh: stored envelopes that cannot be read', () => {
  it('are set aside at start (an own message given up as failed), and the rest is restored', () => {
    const store = createMemoryStore()
    const garbage = Uint8Array.of(0xff, 0x00, 0x13)
    for (const [n, bytes] of [
      [1, envelope(1)],
      [2, garbage],
    ] as const) {
      const id = hex(idOf(n))
      store.addMessage({
        id,
        conversation: 'bob',
        direction: 'out',
        body: new Uint8Array(1),
        createdAt: NOW - 1000,
        state: 'queued',
        updatedAt: NOW - 1000,
      })
      store.putOutbox({
        messageId: id,
        envelope: bytes,
        attempts: 0,
        nextAttemptAt: NOW,
        expiresAt: NOW + 3600_000,
      })
    }
    for (const [n, bytes] of [
      [3, envelope(3)],
      [4, garbage],
    ] as const) {
      store.putCustody({
        messageId: hex(idOf(n)),
        origin: 'A',
        destination: tag('D'),
        envelope: bytes,
        copies: 2,
        expiresAt: NOW + 3600_000,
        receivedAt: NOW - 500,
      })
    }
    const logged: string[] = []
    const mesh = core(store, logged)
    assert.equal(mesh.load().storedMessages, 2)
    assert.equal(store.getOutbox(hex(idOf(1)))?.attempts, 0)
    assert.equal(store.getOutbox(hex(idOf(2))), undefined)
    const given = store.getMessage(hex(idOf(2)))
    assert.deepEqual([given?.state, given?.stateReason], ['failed', UNREADABLE_ENVELOPE_REASON])
    assert.equal(store.getMessage(hex(idOf(1)))?.state, 'queued')
    assert.ok(store.getCustody(hex(idOf(3))) !== undefined)
    assert.equal(store.getCustody(hex(idOf(4))), undefined)
    assert.equal(logged.filter((l) => l.startsWith('error: ')).length, 2, logged.join('\n'))
    // The next start finds nothing unreadable.
    const again: string[] = []
    assert.equal(core(store, again).load().storedMessages, 2)
    assert.deepEqual(
      again.filter((l) => l.startsWith('error: ')),
      [],
    )
  })
})
