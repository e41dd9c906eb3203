/**
 * The libp2p links against peers that are not Talken, or not honest: interop with a plain
 * js-libp2p node, and bad input on the mesh protocol, which must never harm other links.
 */
import '../../src/platform/node-shims.ts'
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { identify } from '@libp2p/identify'
import type { Stream } from '@libp2p/interface'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import * as varint from 'uint8-varint'
import { encodeFrame } from '../../src/links/framing.ts'
import { MESH_PROTOCOL } from '../../src/links/libp2p-links.ts'
import type { TalkenNode } from '../../src/node/node.ts'
import { introduce, makeHome, startNode, until } from '../helpers/nodes.ts'

/** Mesh streams B accepts per connection (`MAX_MESH_STREAMS` in src/links/libp2p-links.ts; docs/limits.md). */
const MAX_MESH_STREAMS = 2

async function plainNode(): Promise<
  Libp2p<{ identify: ReturnType<ReturnType<typeof identify>>; ping: ReturnType<ReturnType<typeof ping>> }>
> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping() },
  })
}

describe('libp2p links', () => {
  const homes = [makeHome('Ada'), makeHome('Bob')]
  let a: TalkenNode
  let b: TalkenNode
  let stranger: Awaited<ReturnType<typeof plainNode>>

  before(async () => {
    introduce(...homes)
    b = await startNode(homes[1]!.home)
    a = await startNode(homes[0]!.home, { bootstrap: b.addresses() })
    stranger = await plainNode()
    // It speaks the mesh protocol (reads and ignores), so B treats it as a mesh link.
    await stranger.handle(MESH_PROTOCOL, (stream) => {
      stream.addEventListener('message', () => {})
    })
    await until(() => a.peers().some((p) => p.mesh) && b.peers().some((p) => p.mesh), 10_000, 'mesh link A–B')
  })

  after(async () => {
    await stranger?.stop()
    await a?.stop()
    await b?.stop()
    for (const h of homes) h.remove()
  })

  /** A message from A to B still goes through: the honest link is unharmed. */
  async function stillDelivers(text: string): Promise<void> {
    const handle = a.send('Bob', text)
    await handle.delivered(AbortSignal.timeout(10_000))
    assert.ok(b.store.getMessage(handle.id), 'B stored the message')
  }

  function bAddress() {
    return multiaddr(b.addresses()[0]!)
  }

  /** Waits until B has identified the stranger as a mesh peer: its connection is fully set up. */
  async function untilMeshPeer(): Promise<void> {
    const id = stranger.peerId.toString()
    await until(
      () => b.peers().some((p) => p.peerId === id && p.mesh),
      10_000,
      'B takes the stranger as a mesh peer',
    )
  }

  /** The mesh streams the stranger opened that B holds open: where B enforces its limits. */
  function inboundOnB(): Stream[] {
    return b
      .links!.libp2p.getConnections(stranger.peerId)
      .flatMap((c) => c.streams)
      .filter((s) => s.protocol === MESH_PROTOCOL && s.direction === 'inbound' && s.status === 'open')
  }

  /** Waits until B holds no more of the stranger's mesh streams than its limit, and some: `what` reached it. */
  async function untilWithinStreamLimit(what: string): Promise<void> {
    await until(
      () => inboundOnB().length <= MAX_MESH_STREAMS,
      10_000,
      `B to hold at most ${MAX_MESH_STREAMS} mesh streams from the stranger (holds ${inboundOnB().length})`,
    )
    assert.ok(inboundOnB().length >= 1, `${what} reached B`)
  }

  it('a plain js-libp2p node connects, runs identify and ping, and is no mesh link', async () => {
    const plain = await plainNode()
    try {
      const connection = await plain.dial(bAddress())
      const rtt = await plain.services.ping.ping(connection.remotePeer)
      assert.ok(rtt >= 0)
      const info = await plain.services.identify.identify(connection)
      assert.ok(info.protocols.includes(MESH_PROTOCOL), info.protocols.join(' '))
      assert.ok(info.protocols.some((p) => p.startsWith('/ipfs/ping/')))
      await until(
        () => b.peers().some((p) => p.peerId === plain.peerId.toString()),
        5_000,
        'B lists the plain node',
      )
      assert.equal(b.peers().find((p) => p.peerId === plain.peerId.toString())?.mesh, false)
    } finally {
      await plain.stop()
    }
  })

  it('garbage on the mesh protocol aborts that stream only', async () => {
    const before = b.status().links.badStreams
    const stream = await stranger.dialProtocol(bAddress(), MESH_PROTOCOL)
    // A varint that never ends, then junk: no frame can come of it.
    stream.send(new Uint8Array(20).fill(0xff))
    await until(() => b.status().links.badStreams > before, 5_000, 'bad stream counted')
    await stillDelivers('after garbage')
    stream.abort(new Error('done'))
  })

  it('an oversized frame length is refused before its bytes arrive', async () => {
    const before = b.status().links.badStreams
    const stream = await stranger.dialProtocol(bAddress(), MESH_PROTOCOL)
    stream.send(varint.encode(16 * 1024 * 1024))
    stream.send(new Uint8Array(1024))
    await until(() => b.status().links.badStreams > before, 5_000, 'oversized frame refused')
    await stillDelivers('after an oversized frame')
    stream.abort(new Error('done'))
  })

  it('well-framed nonsense is dropped and counted by the mesh, and the stream lives on', async () => {
    const before = b.status().mesh.malformed
    const stream = await stranger.dialProtocol(bAddress(), MESH_PROTOCOL)
    for (let i = 0; i < 10; i++) stream.send(encodeFrame(new Uint8Array([0x83, 0x01, 0x02, i])))
    await until(() => b.status().mesh.malformed >= before + 1, 5_000, 'malformed frames counted')
    assert.equal(stream.status, 'open')
    await stillDelivers('after malformed frames')
    stream.abort(new Error('done'))
  })

  it('a half-open stream (a frame that never completes) harms nothing, and is closed on B once the stranger ends it', async () => {
    const connection = await stranger.dial(bAddress())
    await untilMeshPeer()
    const stream = await connection.newStream(MESH_PROTOCOL, {
      maxOutboundStreams: 1_000,
      signal: AbortSignal.timeout(10_000),
    })
    // A frame that announces 60,000 bytes and sends 100 of them.
    stream.send(varint.encode(60_000))
    stream.send(new Uint8Array(100))
    await until(() => inboundOnB().some((s) => s.id === stream.id), 10_000, 'B holds the half-open stream')
    await stillDelivers('beside a half-open stream')
    // B never writes on a peer's stream and has closed its half: once the stranger ends its half
    // in the middle of the frame, nothing is left open on B for that stream.
    await stream.close()
    await until(() => !inboundOnB().some((s) => s.id === stream.id), 10_000, 'B lets go of the ended stream')
    await stillDelivers('after the half-open stream ended')
  })

  it('half-open streams beyond the per-connection limit are not held', async () => {
    const connection = await stranger.dial(bAddress())
    await untilMeshPeer()
    const streams: Stream[] = []
    for (let i = 0; i < 10; i++) {
      try {
        const stream = await connection.newStream(MESH_PROTOCOL, {
          maxOutboundStreams: 1_000,
          signal: AbortSignal.timeout(10_000),
        })
        streams.push(stream)
        stream.send(varint.encode(60_000))
        stream.send(new Uint8Array(100))
      } catch {
        // B reset it during negotiation: the limit at work.
      }
    }
    await untilWithinStreamLimit('the half-open streams')
    await stillDelivers('beside half-open streams')
    for (const s of streams) s.abort(new Error('done'))
    await until(() => inboundOnB().length === 0, 10_000, 'B lets go of the aborted streams')
  })

  it('a peer that resets every mesh stream we open is hung up on, not reopened without end, nor redialled at once', async () => {
    const hostile = await plainNode()
    try {
      await hostile.handle(MESH_PROTOCOL, (stream) => stream.abort(new Error('go away')))
      // It listens, and identify tells B where: B would redial it there.
      let fromB = 0
      hostile.addEventListener('connection:open', (event) => {
        if (event.detail.direction === 'inbound') fromB++
      })
      const connection = await hostile.dial(bAddress())
      await connection.newStream(MESH_PROTOCOL)
      const id = hostile.peerId.toString()
      await until(() => b.peers().some((p) => p.peerId === id), 10_000, 'the hostile peer connected')
      await until(() => !b.peers().some((p) => p.peerId === id), 20_000, 'B hangs up on it')
      await stillDelivers('beside a peer that resets our streams')
      // Its dials succeed, so failures alone would not slow B down: it waits all the same (30 s
      // for a first hang-up), and does not take the peer's own calls meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 5_000))
      assert.equal(fromB, 0, 'B did not dial the peer it hung up on')
      // (Its dial may look complete on its side before B's refusal closes it.)
      await hostile.dial(bAddress(), { signal: AbortSignal.timeout(5_000) }).catch(() => {})
      await until(() => hostile.getConnections().length === 0, 5_000, 'B refuses the peer it hung up on')
      assert.ok(!b.peers().some((p) => p.peerId === id))
    } finally {
      await hostile.stop()
    }
  })

  it('a peer opening hundreds of streams is limited', async () => {
    const connection = await stranger.dial(bAddress())
    await untilMeshPeer()
    // The stranger lifts its own client's limit, so whatever limit is met is B's.
    const results = await Promise.allSettled(
      Array.from({ length: 300 }, () =>
        connection.newStream(MESH_PROTOCOL, {
          maxOutboundStreams: 1_000,
          signal: AbortSignal.timeout(10_000),
        }),
      ),
    )
    const opened = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
    await untilWithinStreamLimit('the flood')
    await stillDelivers('beside a stream flood')
    for (const s of opened) s.abort(new Error('done'))
  })
})
