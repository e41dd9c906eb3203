/**
 * Frames that reach the links before the link to their sender is up (our outbound stream to it
 * still opening) are held for it, but at most 64 frames and 256 KiB: the rest are dropped and
 * counted, the stream lives on, and what was held is handed over once the link is up.
 */
import '../../src/platform/node-shims.ts'
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { Uint8ArrayList } from 'uint8arraylist'
import { encodeFrame } from '../../src/links/framing.ts'
import { Libp2pLinks, MESH_PROTOCOL } from '../../src/links/libp2p-links.ts'
import { createMemoryStore } from '../../src/store/index.ts'
import { until } from '../helpers/nodes.ts'

const MAX_EARLY_FRAMES = 64
const MAX_EARLY_BYTES = 256 * 1024

/** Frame `n`, of `size` bytes; its first two bytes hold `n`. */
function frame(n: number, size = 16): Uint8Array {
  const f = new Uint8Array(size).fill(0xaa)
  f[0] = n >> 8
  f[1] = n & 0xff
  return f
}

/** "number/size" of each frame, for readable comparisons. */
function labels(frames: readonly Uint8Array[]): string[] {
  return frames.map((f) => `${(f[0]! << 8) | f[1]!}/${f.byteLength}`)
}

/**
 * Our links and a sender with a mesh stream open towards them, our outbound stream to the sender
 * held half-open (negotiated, not yet handed to the links) until `openLink`. Everything is stopped
 * when the test ends.
 */
async function linkStillOpening(t: TestContext) {
  const batches: Uint8Array[][] = []
  const ups: string[] = []
  const links = await Libp2pLinks.create({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: false,
    store: createMemoryStore(),
    log: () => {},
    handlers: {
      linkUp: (peer) => ups.push(peer),
      linkDown: () => {},
      frames: (_peer, frames) => batches.push([...frames]),
    },
  })
  await links.start()
  t.after(() => links.stop())
  const sender = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() },
  })
  t.after(() => sender.stop())
  let identified = false
  links.libp2p.addEventListener('peer:identify', (event) => {
    if (event.detail.peerId.equals(sender.peerId)) identified = true
  })
  // The sender does not take mesh streams yet, so identify gives the links no reason to open one.
  // Identify must be over before frames come: libp2p then drops the mesh protocol it had noted
  // for the sender (from the sender's stream), which takes the link down and its early frames.
  const stream = await sender.dialProtocol(multiaddr(links.addresses()[0]!), MESH_PROTOCOL)
  // The links half-close the sender's stream once they handle it. Only then is the hold below
  // installed: libp2p appends the stream handler to the middleware list an inbound stream finds,
  // so the hold must not be the list the sender's stream went through.
  await until(
    () => identified && stream.remoteWriteStatus === 'closed',
    10_000,
    'the links identified the sender and took its stream',
  )
  let held = 0
  let release = () => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  links.libp2p.use(MESH_PROTOCOL, (s, connection, next) => {
    if (s.direction === 'inbound') return next(s, connection)
    held++
    void released.then(() => next(s, connection))
  })
  await sender.handle(MESH_PROTOCOL, (s) => {
    s.addEventListener('message', () => {})
  })

  const send = (frames: readonly Uint8Array[]): void => {
    const chunk = new Uint8ArrayList()
    for (const f of frames) chunk.append(encodeFrame(f))
    stream.send(chunk)
  }
  return {
    links,
    batches,
    stream,
    /** Sends `frames` in one write and waits until the links have read them, the link still opening. */
    async sendEarly(frames: readonly Uint8Array[]): Promise<void> {
      send(frames)
      await until(
        () => links.stats.framesIn === frames.length && held === 1,
        10_000,
        `${frames.length} frames read while the link opens`,
      )
      assert.deepEqual(ups, [])
    },
    send,
    async openLink(): Promise<void> {
      release()
      await until(() => ups.length === 1, 10_000, 'link up')
    },
  }
}

describe('early frames', () => {
  it('an honest sender under the caps loses none: they arrive in order once the link is up', async (t) => {
    const s = await linkStillOpening(t)
    const sent = [frame(0, 300), frame(1, 20_000), frame(2, 40)]
    await s.sendEarly(sent)
    await s.openLink()
    assert.deepEqual(s.batches.map(labels), [labels(sent)])
    assert.equal(s.links.stats.framesDropped, 0)
  })

  it('frames beyond 64 are dropped and counted; the stream and then the link carry on', async (t) => {
    const s = await linkStillOpening(t)
    const sent = Array.from({ length: 1_000 }, (_, i) => frame(i))
    await s.sendEarly(sent)
    await s.openLink()
    assert.deepEqual(s.batches.map(labels), [labels(sent.slice(0, MAX_EARLY_FRAMES))])
    assert.equal(s.links.stats.framesDropped, sent.length - MAX_EARLY_FRAMES)
    assert.equal(s.links.stats.badStreams, 0)
    assert.equal(s.stream.status, 'open')
    s.send([frame(2_000)])
    await until(() => s.batches.length === 2, 10_000, 'a frame on the link')
    assert.deepEqual(labels(s.batches[1]!), ['2000/16'])
  })

  it('frames beyond 256 KiB are dropped and counted; a small one that still fits is kept', async (t) => {
    const s = await linkStillOpening(t)
    const big = Array.from({ length: 40 }, (_, i) => frame(i, 60_000))
    const sent = [...big, frame(40)]
    await s.sendEarly(sent)
    await s.openLink()
    const fit = Math.floor(MAX_EARLY_BYTES / 60_000)
    assert.deepEqual(s.batches.map(labels), [labels([...big.slice(0, fit), frame(40)])])
    assert.equal(s.links.stats.framesDropped, big.length - fit)
    assert.equal(s.links.stats.badStreams, 0)
    assert.equal(s.stream.status, 'open')
  })
})
