/**
 * A datagram (no acknowledgement asked: room frames) is handed over once while its ID is
 * remembered; but if the step it came in is undone (its room frame was not kept: a full disk, say),
 * it is forgotten again, so that a copy that comes later is taken.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { encodeFrame, FrameKind } from '../../src/mesh/frames.ts'
import { encodeMeshPayload } from '../../src/mesh/mesh-payload.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'
import { encodeEnvelope } from '../../src/wire/envelope.ts'
import { handCore, nameTag } from '../helpers/mesh-net.ts'

const NOW = 1_750_000_000_000
const tag = nameTag

describe('mesh: a datagram taken in a step that is undone', () => {
  it('is taken again when it comes again', () => {
    const store = createMemoryStore()
    const delivered: string[] = []
    const core = handCore(store, {
      now: () => NOW,
      deliver: (d) => {
        delivered.push(d.id)
        return undefined
      },
    })
    core.linkUp('A', 16 * 1024)
    const frame = encodeFrame({
      kind: FrameKind.data,
      envelope: encodeEnvelope({
        id: new Uint8Array(16).fill(9),
        destination: tag('Z'),
        hopLimit: 30,
        expires: Math.floor(NOW / 1000) + 3600,
        copies: 1,
        flags: 0,
        payload: encodeMeshPayload({ kind: 3, body: new Uint8Array(4) }),
      }),
    })
    assert.throws(
      () =>
        store.transaction(() => {
          core.receive('A', frame)
          throw new Error('the room frame could not be stored')
        }),
      /could not be stored/,
    )
    assert.equal(delivered.length, 1)
    store.transaction(() => core.receive('A', frame))
    assert.equal(delivered.length, 2, 'the copy that came again was taken')
    store.transaction(() => core.receive('A', frame))
    assert.equal(delivered.length, 2, 'once kept, a copy is not taken twice')
  })
})
