/**
 * The addresses the links keep redialling are bounded (256), and the ones given to them (bootstrap
 * addresses, `dial`) are never pushed out by addresses learned from other peers: remembered in the
 * store, or advertised through identify by peers met on the way.
 *
 * Learned addresses point at local TCP servers that count the connections they get and close
 * them at once, so which addresses the links dial is seen from outside.
 */
import '../../src/platform/node-shims.ts'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import * as varint from 'uint8-varint'
import { isTalkenError } from '../../src/errors.ts'
import { createIdentity, makeContactCard } from '../../src/identity/identity.ts'
import { Libp2pLinks, MESH_PROTOCOL } from '../../src/links/libp2p-links.ts'
import { acceptContactCard } from '../../src/node/contacts.ts'
import { openHome } from '../../src/node/data-dir.ts'
import { createNode } from '../../src/node/node.ts'
import { createMemoryStore, type Store } from '../../src/store/index.ts'
import { makeHome, until } from '../helpers/nodes.ts'

const MAX_DIAL_TARGETS = 256

/** `n` loopback addresses that nothing speaking libp2p listens on, and how often each was dialled. */
async function countingAddresses(t: TestContext, n: number) {
  const hits = new Map<string, number>()
  const servers: Server[] = []
  t.after(() => Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve)))))
  const addresses: string[] = []
  for (let i = 0; i < n; i++) {
    const server = createServer()
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    const address = `/ip4/127.0.0.1/tcp/${port}`
    server.on('connection', (socket) => {
      hits.set(address, (hits.get(address) ?? 0) + 1)
      socket.destroy()
    })
    addresses.push(address)
  }
  return {
    addresses,
    hits,
    /** True once some address has been dialled twice: the first round of redials is long over. */
    secondRound: () => [...hits.values()].some((count) => count >= 2),
  }
}

/**
 * A plain js-libp2p node on loopback, and the address it listens on; with `advertise`, identify
 * gives those addresses instead, and with `meshPeer` it takes mesh streams (and reads nothing).
 */
async function plainNode(
  t: TestContext,
  options: { advertise?: Array<string | Multiaddr>; meshPeer?: boolean } = {},
) {
  let own: Multiaddr[] = []
  const node = await createLibp2p({
    addresses: {
      listen: ['/ip4/127.0.0.1/tcp/0'],
      announceFilter: (addresses) => {
        own = addresses
        return options.advertise ? options.advertise.map((a) => multiaddr(a)) : addresses
      },
    },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() },
  })
  t.after(() => node.stop())
  if (options.meshPeer) {
    await node.handle(MESH_PROTOCOL, (stream) => {
      stream.addEventListener('message', () => {})
    })
  }
  node.getMultiaddrs()
  return { node, address: own[0]!.toString() }
}

/** Counts the connections `node` gets from `from`. */
function countConnections(node: Libp2p, from: () => string): () => number {
  let count = 0
  node.addEventListener('connection:open', (event) => {
    if (event.detail.remotePeer.toString() === from()) count++
  })
  return () => count
}

async function startLinks(t: TestContext, store: Store, bootstrap: string[]): Promise<Libp2pLinks> {
  const links = await Libp2pLinks.create({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: false,
    bootstrap,
    store,
    log: () => {},
    handlers: { linkUp: () => {}, linkDown: () => {}, frames: () => {} },
  })
  t.after(() => links.stop())
  await links.start()
  return links
}

describe('dial targets', () => {
  it('remembered addresses over the cap leave the bootstrap address in, and the 255 most recently seen are dialled', async (t) => {
    const peers = 40
    const counted = await countingAddresses(t, peers * 8)
    const store = createMemoryStore()
    const now = Date.now()
    for (let p = 0; p < peers; p++) {
      const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
      for (const address of counted.addresses.slice(p * 8, p * 8 + 8)) store.notePeer(id, now - p, address)
    }
    const bootstrap = await plainNode(t)
    let linksPeer = ''
    const fromLinks = countConnections(bootstrap.node, () => linksPeer)
    const links = await startLinks(t, store, [bootstrap.address])
    linksPeer = links.peerId
    // 256 targets: the bootstrap address and 255 of the 320 remembered ones.
    await until(() => fromLinks() >= 1, 10_000, 'the bootstrap node dialled')
    await until(
      () => counted.hits.size >= MAX_DIAL_TARGETS - 1 && counted.secondRound(),
      10_000,
      'remembered addresses dialled twice',
    )
    assert.equal(counted.hits.size, MAX_DIAL_TARGETS - 1)
    // Peer p was seen p ms before the newest: peers 0–30 (248 addresses) and 7 of peer 31's stay.
    const ofPeer = (p: number) => counted.addresses.slice(p * 8, p * 8 + 8)
    const dialled = (p: number) => ofPeer(p).filter((a) => counted.hits.has(a)).length
    assert.deepEqual(
      Array.from({ length: peers }, (_, p) => dialled(p)),
      [...Array(31).fill(8), 7, ...Array(8).fill(0)],
      'addresses dialled, by peer, most recently seen first',
    )
  })

  it('addresses advertised by peers met on the way never push out bootstrap or dialled addresses', async (t) => {
    const strangers = 66
    const counted = await countingAddresses(t, strangers * 4)
    const bootstrap = await plainNode(t)
    const dialled = await plainNode(t)
    let linksPeer = ''
    const fromLinks = [
      countConnections(bootstrap.node, () => linksPeer),
      countConnections(dialled.node, () => linksPeer),
    ]
    const store = createMemoryStore()
    // The bootstrap address is given without its peer ID: the target that learns it stays pinned.
    const links = await startLinks(t, store, [bootstrap.address.slice(0, bootstrap.address.indexOf('/p2p/'))])
    linksPeer = links.peerId
    await links.dial(dialled.address)
    await until(() => fromLinks.every((n) => n() >= 1), 10_000, 'bootstrap and dialled nodes connected')

    // Each stranger advertises four addresses (the links keep four per identify). The links meet
    // them one after another, as they would peers found by mDNS, and stay connected, so that none
    // of those addresses is dialled before the last was learned.
    const met: Libp2p[] = []
    for (let i = 0; i < strangers; i++) {
      const stranger = await plainNode(t, {
        advertise: counted.addresses.slice(4 * i, 4 * i + 4),
        meshPeer: true,
      })
      await links.libp2p.dial(multiaddr(stranger.address))
      await until(
        () => store.getPeer(stranger.node.peerId.toString())?.addresses.length === 4,
        10_000,
        `stranger ${i} identified`,
      )
      met.push(stranger.node)
    }
    await Promise.all(met.map((s) => s.stop()))
    const linksId = links.libp2p.peerId
    await bootstrap.node.hangUp(linksId)
    await dialled.node.hangUp(linksId)
    await until(() => fromLinks.every((n) => n() >= 2), 10_000, 'bootstrap and dialled nodes redialled')

    // 2 pinned + 264 learned: the 10 learned first are gone (two strangers' and half a third's).
    const group = (i: number) => counted.addresses.slice(4 * i, 4 * i + 4)
    const later = counted.addresses.slice(12)
    await until(
      () => later.every((a) => counted.hits.has(a)) && counted.secondRound(),
      10_000,
      'later strangers dialled twice',
    )
    assert.deepEqual(
      [...group(0), ...group(1)].filter((a) => counted.hits.has(a)),
      [],
      'the oldest learned addresses were dropped',
    )
    assert.equal(group(2).filter((a) => counted.hits.has(a)).length, 2)
    assert.equal(counted.hits.size, MAX_DIAL_TARGETS - 2)
  })

  it('an address a peer advertised that keeps failing is then tried rarely; a bootstrap address keeps its pace', async (t) => {
    const counted = await countingAddresses(t, 2)
    const store = createMemoryStore()
    const links = await Libp2pLinks.create({
      privateKey: await generateKeyPair('Ed25519'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      mdns: false,
      bootstrap: [`${counted.addresses[1]!}/p2p/${peerIdFromPrivateKey(await generateKeyPair('Ed25519'))}`],
      store,
      log: () => {},
      handlers: { linkUp: () => {}, linkDown: () => {}, frames: () => {} },
      redialMinMs: 5,
      redialMaxMs: 20,
    })
    t.after(() => links.stop())
    await links.start()
    const stranger = await plainNode(t, { advertise: [counted.addresses[0]!], meshPeer: true })
    await links.libp2p.dial(multiaddr(stranger.address))
    await until(() => store.getPeer(stranger.node.peerId.toString()) !== undefined, 10_000, 'identified')
    await stranger.node.stop()
    const advertised = () => counted.hits.get(counted.addresses[0]!) ?? 0
    const bootstrap = () => counted.hits.get(counted.addresses[1]!) ?? 0
    await until(() => advertised() >= 8, 10_000, 'the advertised address failing eight times')
    const after = bootstrap()
    await until(() => bootstrap() >= after + 8, 10_000, 'the bootstrap address dialled on')
    assert.equal(advertised(), 8)
  })

  it('a start that failed (the port was taken) can be tried again', async (t) => {
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as { port: number }).port
    const links = await Libp2pLinks.create({
      privateKey: await generateKeyPair('Ed25519'),
      listen: [`/ip4/127.0.0.1/tcp/${port}`],
      mdns: false,
      store: createMemoryStore(),
      log: () => {},
      handlers: { linkUp: () => {}, linkDown: () => {}, frames: () => {} },
    })
    t.after(() => links.stop())
    await assert.rejects(links.start())
    await new Promise((resolve) => blocker.close(resolve))
    await links.start()
    assert.ok(links.addresses().some((a) => a.includes(`/tcp/${port}/`)))
  })

  it('an address that does not read back, advertised by a peer or listed by a contact, is skipped: nothing stops', async (t) => {
    // A dns4 name holding '/': valid bytes whose text form does not parse again.
    const name = new TextEncoder().encode('a/b')
    const crooked = multiaddr(
      Uint8Array.from([...varint.encode(54), name.length, ...name, ...varint.encode(6), 0x1f, 0x90]),
    )
    assert.throws(() => multiaddr(crooked.toString()))
    const store = createMemoryStore()
    const links = await startLinks(t, store, [crooked.toString()])
    const peer = await plainNode(t, { advertise: [crooked], meshPeer: true })
    await links.libp2p.dial(multiaddr(peer.address))
    await until(() => store.getPeer(peer.node.peerId.toString()) !== undefined, 10_000, 'the peer identified')
    // Still dialling: another peer is reached after the crooked one was met.
    const next = await plainNode(t)
    await links.dial(next.address)
    await until(() => next.node.getConnections().length > 0, 10_000, 'the next peer')

    // A contact whose card lists one: the node starts all the same.
    const home = makeHome('Ada')
    t.after(() => home.remove())
    const opened = openHome({ home: home.home })
    const mallory = createIdentity({ now: Date.now() })
    const card = makeContactCard(mallory, {
      name: 'Mallory',
      addresses: [crooked.toString()],
      now: Date.now(),
    })
    acceptContactCard(opened.store, opened.profile.accountKey, card, { now: Date.now() })
    opened.close()
    const node = await createNode({ home: home.home, mdns: false, listen: ['/ip4/127.0.0.1/tcp/0'] })
    await node.start()
    await node.stop()
    // The operator's own bootstrap address, though, is refused at once.
    await assert.rejects(
      createNode({ home: home.home, mdns: false, bootstrap: ['/dns4/a/b/tcp/1'] }),
      (err) => isTalkenError(err, 'invalid_argument'),
    )
  })

  it('only plain TCP addresses are taken from others: a /unix/ or DNS address a peer, a card or a remembered record gives is never dialled', async (t) => {
    // A local socket such an address could point the node at: it counts the connections it gets.
    const dir = mkdtempSync(join(tmpdir(), 'talken-trap-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const trapPath = join(dir, 'trap.sock')
    let trapped = 0
    const trap = createServer((socket) => {
      trapped++
      socket.destroy()
    })
    await new Promise<void>((resolve) => trap.listen(trapPath, resolve))
    t.after(() => new Promise((resolve) => trap.close(resolve)))
    const unix = `/unix/${encodeURIComponent(trapPath)}`
    const counted = await countingAddresses(t, 1)
    const dns = counted.addresses[0]!.replace('/ip4/127.0.0.1/', '/dns4/localhost/')

    // Remembered from an earlier run (a store written before the rule).
    const store = createMemoryStore()
    const old = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    store.notePeer(old, Date.now(), unix)
    store.notePeer(old, Date.now(), dns)
    const links = await startLinks(t, store, [])
    // Advertised by a mesh peer through identify, beside a TCP address that is taken.
    const tcpAddress = (await countingAddresses(t, 1)).addresses[0]!
    const peer = await plainNode(t, { advertise: [unix, dns, tcpAddress], meshPeer: true })
    await links.libp2p.dial(multiaddr(peer.address))
    const id = peer.node.peerId.toString()
    await until(() => store.getPeer(id) !== undefined, 10_000, 'the peer identified')
    assert.deepEqual(
      store.getPeer(id)!.addresses.map((a) => a.address),
      [tcpAddress],
      'only the TCP address is recorded',
    )
    // Dialled by peer ID, libp2p would try what identify put in its peer store: refused too.
    await peer.node.stop()
    await links.libp2p.dial(peer.node.peerId, { signal: AbortSignal.timeout(5_000) }).catch(() => {})

    // Listed in a contact's card: the node keeps dialling its contacts' plain TCP addresses only.
    const home = makeHome('Ada')
    t.after(() => home.remove())
    const opened = openHome({ home: home.home })
    const mallory = createIdentity({ now: Date.now() })
    const card = makeContactCard(mallory, { name: 'Mallory', addresses: [unix, dns], now: Date.now() })
    acceptContactCard(opened.store, opened.profile.accountKey, card, { now: Date.now() })
    opened.close()
    const node = await createNode({ home: home.home, mdns: false, listen: ['/ip4/127.0.0.1/tcp/0'] })
    await node.start()
    t.after(() => node.stop())
    // Two seconds of redials: the first round of every target is over (the redial loop runs every 500 ms).
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    assert.equal(trapped, 0, 'the local socket was never connected to')
    assert.equal(counted.hits.size, 0, 'the DNS address was never dialled')

    // An operator may still give any address: the same DNS name, as a bootstrap address, is dialled.
    await startLinks(t, createMemoryStore(), [dns])
    await until(() => counted.hits.size === 1, 10_000, 'the DNS bootstrap address dialled')
  })

  it('a neighbour mDNS hears again is dialled at once, though its addresses were given up while it was away', async (t) => {
    const key = await generateKeyPair('Ed25519')
    const start = async (port: number) => {
      const node = await createLibp2p({
        privateKey: key,
        addresses: { listen: [`/ip4/127.0.0.1/tcp/${port}`] },
        transports: [tcp()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        services: { identify: identify() },
      })
      await node.handle(MESH_PROTOCOL, (stream) => stream.addEventListener('message', () => {}))
      return node
    }
    let peer = await start(0)
    t.after(() => peer.stop())
    const address = peer.getMultiaddrs()[0]!
    const port = Number(address.toString().split('/')[4])
    const id = peer.peerId.toString()
    // Fast redials, so that its addresses are given up within seconds of its going.
    const links = await Libp2pLinks.create({
      privateKey: await generateKeyPair('Ed25519'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      mdns: false,
      store: createMemoryStore(),

      handlers: { linkUp: () => {}, linkDown: () => {}, frames: () => {} },
      log: () => {},
      redialMinMs: 10,
      redialMaxMs: 20,
    })
    t.after(() => links.stop())
    await links.start()
    const connected = () => links.connectedPeers().some((p) => p.peerId === id)
    await links.libp2p.dial(address)
    await until(connected, 10_000, 'the neighbour met')
    await new Promise((resolve) => setTimeout(resolve, 500)) // identify: its address becomes a target
    await peer.stop()
    await until(() => !connected(), 10_000, 'the neighbour gone')
    // Eight failed redials (the redial loop runs every 500 ms): given up for half an hour.
    await new Promise((resolve) => setTimeout(resolve, 4_500))

    // Back on the same address: nothing dials it (libp2p dials only peers new to its store).
    peer = await start(port)
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    assert.equal(connected(), false, 'given up')
    // Its mDNS answer (what src/links/mdns.ts hands the links) brings it back within the redial loop.
    links.heard(id, [multiaddr(`/ip4/127.0.0.1/tcp/${port}`)])
    await until(connected, 2_000, 'dialled again on hearing it')
  })
})
