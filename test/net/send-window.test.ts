import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MAX_TEXT_BYTES } from '../../src/messaging/direct-message.ts'
import { startPair, until } from '../helpers/nodes.ts'

test('a full sending window of the largest messages goes out at once: the link drops none of it', async (t) => {
  const { ada: na, bob: nb } = await startPair(t)
  try {
    await until(() => na.peers().some((p) => p.mesh) && nb.peers().some((p) => p.mesh), 10_000, 'mesh link')
    // Sent in one tick, each sealed into the largest bucket: the mesh hands its whole window (eight
    // envelopes of about 64 KiB) to the link in one step, and the link must take all of it. A frame
    // it dropped would wait for its hop acknowledgement to time out before going again.
    const handles = Array.from({ length: 24 }, (_, i) => na.send('Bob', `${i}:`.padEnd(MAX_TEXT_BYTES, 'x')))
    await Promise.all(handles.map((h) => h.delivered(AbortSignal.timeout(90_000))))
    const { mesh, links } = na.status()
    assert.equal(links.framesDropped, 0, 'frames the link dropped')
    assert.equal(links.framesOut, mesh.framesOut, 'every frame the mesh sent was written')
  } finally {
    await na.stop()
    await nb.stop()
  }
})
