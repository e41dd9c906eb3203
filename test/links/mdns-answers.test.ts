/**
 * Which mDNS answers become peers, without sockets: a fake multicast-dns per interface (it sends
 * nothing; the test hands it packets as if they came from the LAN), fake interfaces and a fake
 * clock. An answer gives only `/ip4/<its source>/tcp/<port>` addresses, a peer is dispatched again
 * only after 30 s or with other addresses, and a flood of made-up peers is cut to the pace.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { NetworkInterfaceInfo } from 'node:os'
import { afterEach, describe, it } from 'node:test'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import type { ComponentLogger, Logger, PeerDiscovery, PeerId, PeerInfo, Startable } from '@libp2p/interface'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import type multicastDns from 'multicast-dns'
import type { ResponsePacket } from 'multicast-dns'
import {
  type MdnsInit,
  PEER_BURST,
  PEER_REPEAT_MS,
  PEERS_PER_SECOND,
  talkenMdns,
} from '../../src/links/mdns.ts'

const TAG = '_p2p._udp.local'
const LAN = '10.0.0.1'
const SENDER = '10.0.0.5'

/** A multicast-dns stand-in: sends nothing, and emits what the test hands it. */
class FakeMdns extends EventEmitter {
  destroyed = false
  query(): void {}
  respond(): void {}
  destroy(done?: () => void): void {
    this.destroyed = true
    done?.()
  }
}

const interfaces = (): NodeJS.Dict<NetworkInterfaceInfo[]> => ({
  lo: [
    {
      address: '127.0.0.1',
      netmask: '255.0.0.0',
      family: 'IPv4',
      mac: '00:00:00:00:00:00',
      internal: true,
      cidr: '127.0.0.1/8',
    },
  ],
  eth0: [
    {
      address: LAN,
      netmask: '255.255.255.0',
      family: 'IPv4',
      mac: '02:00:00:00:00:01',
      internal: false,
      cidr: `${LAN}/24`,
    },
  ],
})

const quiet: Logger = Object.assign(() => {}, {
  enabled: false,
  error: () => {},
  trace: () => {},
  newScope: () => quiet,
})
const logger: ComponentLogger = { forComponent: () => quiet }

function randomPeer(): PeerId {
  return peerIdFromPublicKey(publicKeyFromRaw(randomBytes(32)))
}

/** A running discovery on fake sockets, what it dispatched, and its clock. */
interface Harness {
  readonly discovery: PeerDiscovery & Startable
  /** The fake socket of each interface, by its address. */
  readonly sockets: Map<string, FakeMdns>
  /** `peer` events, in order. */
  readonly peers: PeerInfo[]
  /** `heard` calls, in order. */
  readonly heard: PeerInfo[]
  clock: number
}

const running: Harness[] = []

afterEach(async () => {
  for (const h of running.splice(0)) await h.discovery.stop()
})

async function harness(init: Partial<MdnsInit> = {}): Promise<Harness> {
  const sockets = new Map<string, FakeMdns>()
  const h: Harness = {
    discovery: undefined as unknown as PeerDiscovery & Startable,
    sockets,
    peers: [],
    heard: [],
    clock: 1_700_000_000_000,
  }
  const discovery = talkenMdns({
    networkInterfaces: interfaces,
    multicastDns: (options: multicastDns.Options) => {
      const fake = new FakeMdns()
      sockets.set(options.interface ?? '', fake)
      return fake as unknown as multicastDns.MulticastDNS
    },
    now: () => h.clock,
    heard: (peer) => h.heard.push(peer),
    ...init,
  })({ peerId: randomPeer(), addressManager: { getAddresses: () => [] }, logger })
  Object.assign(h, { discovery })
  discovery.addEventListener('peer', (event) => h.peers.push(event.detail))
  await discovery.start()
  await discovery.afterStart?.()
  running.push(h)
  assert.deepEqual([...sockets.keys()].sort(), ['10.0.0.1', '127.0.0.1'])
  return h
}

/** A PTR answer for `TAG` whose TXT records carry `addresses`. */
function answer(addresses: readonly string[]): ResponsePacket {
  const instance = `${randomBytes(8).toString('hex')}.${TAG}`
  return {
    type: 'response',
    id: 0,
    flags: 0,
    questions: [],
    answers: [{ name: TAG, type: 'PTR', class: 'IN', ttl: 120, data: instance }],
    authorities: [],
    additionals: addresses.map((a) => ({
      name: instance,
      type: 'TXT' as const,
      class: 'IN' as const,
      ttl: 120,
      data: [`dnsaddr=${a}`],
    })),
  } as ResponsePacket
}

/** Hands `packet` to the socket of interface `on`, as sent from `source`. */
function hear(h: Harness, packet: ResponsePacket, source = SENDER, on = LAN): void {
  const socket = h.sockets.get(on)
  assert.ok(socket, `a socket on ${on}`)
  socket.emit('response', packet, { address: source, family: 'IPv4', port: 5353, size: 100 })
}

const texts = (addresses: readonly Multiaddr[]) => addresses.map((a) => a.toString()).sort()

describe('mDNS answers', () => {
  it('dispatches a peer whose answer gives its own source address over TCP', async () => {
    const h = await harness()
    const peer = randomPeer()
    hear(h, answer([`/ip4/${SENDER}/tcp/4001/p2p/${peer}`]))
    assert.equal(h.peers.length, 1)
    assert.ok(h.peers[0]?.id.equals(peer))
    assert.deepEqual(texts(h.peers[0]?.multiaddrs ?? []), [`/ip4/${SENDER}/tcp/4001`])
    assert.equal(h.heard.length, 1)
    assert.ok(h.heard[0]?.id.equals(peer))
    assert.deepEqual(texts(h.heard[0]?.multiaddrs ?? []), [`/ip4/${SENDER}/tcp/4001`])
  })

  it('ignores answers whose addresses are another transport, a name, another host or UDP', async () => {
    const h = await harness()
    for (const address of [
      '/unix/%2Ftmp%2Fx.sock',
      '/dns4/example.com/tcp/1',
      '/ip4/10.0.0.99/tcp/1',
      `/ip4/${SENDER}/udp/1`,
      `/ip4/${SENDER}/tcp/1/ws`,
      '/ip4/127.0.0.1/tcp/1',
      '/ip6/::1/tcp/1',
    ]) {
      hear(h, answer([`${address}/p2p/${randomPeer()}`]))
    }
    assert.deepEqual(h.peers, [])
    assert.deepEqual(h.heard, [])
  })

  it('keeps only the acceptable addresses of an answer, for the one peer it names', async () => {
    const h = await harness()
    const peer = randomPeer()
    hear(
      h,
      answer([
        `/dns4/example.com/tcp/1/p2p/${peer}`,
        `/ip4/10.0.0.99/tcp/4001/p2p/${peer}`,
        `/ip4/${SENDER}/tcp/4001/p2p/${peer}`,
        `/ip4/${SENDER}/tcp/4002/p2p/${randomPeer()}`,
        `/ip4/${SENDER}/tcp/4003`,
      ]),
    )
    assert.equal(h.peers.length, 1)
    assert.ok(h.peers[0]?.id.equals(peer))
    assert.deepEqual(texts(h.peers[0]?.multiaddrs ?? []), [
      `/ip4/${SENDER}/tcp/4001`,
      `/ip4/${SENDER}/tcp/4003`,
    ])
  })

  it('takes loopback addresses from a loopback answer only', async () => {
    const h = await harness()
    const local = randomPeer()
    hear(h, answer([`/ip4/127.0.0.1/tcp/4001/p2p/${local}`]), '127.0.0.1', '127.0.0.1')
    assert.equal(h.peers.length, 1)
    assert.ok(h.peers[0]?.id.equals(local))
    hear(h, answer([`/ip4/127.0.0.1/tcp/4001/p2p/${randomPeer()}`]), SENDER)
    hear(h, answer([`/ip4/${SENDER}/tcp/4001/p2p/${randomPeer()}`]), '127.0.0.1', '127.0.0.1')
    assert.equal(h.peers.length, 1)
    assert.equal(h.heard.length, 1)
  })

  it('dispatches at most the burst and a second of pace from 10,000 made-up peers in one second', async () => {
    const h = await harness()
    const start = h.clock
    for (let i = 0; i < 10_000; i++) {
      h.clock = start + Math.floor((i * 999) / 10_000)
      hear(h, answer([`/ip4/${SENDER}/tcp/4001/p2p/${randomPeer()}`]))
    }
    assert.ok(h.peers.length >= PEER_BURST, `${h.peers.length} dispatched`)
    assert.ok(h.peers.length <= PEER_BURST + PEERS_PER_SECOND, `${h.peers.length} dispatched`)
    assert.equal(h.heard.length, h.peers.length)
    // The pace refills: a real peer gets through a little later.
    h.clock = start + 1_000 + 1_000 / PEERS_PER_SECOND
    const real = randomPeer()
    hear(h, answer([`/ip4/${SENDER}/tcp/4001/p2p/${real}`]))
    assert.ok(h.peers.at(-1)?.id.equals(real))
  })

  it('dispatches a peer again after 30 s, or sooner when its addresses change', async () => {
    const h = await harness()
    const peer = randomPeer()
    const start = h.clock
    const at = (ms: number, port: number) => {
      h.clock = start + ms
      hear(h, answer([`/ip4/${SENDER}/tcp/${port}/p2p/${peer}`]))
      return h.peers.length
    }
    assert.equal(at(0, 4001), 1)
    assert.equal(at(1_000, 4001), 1, 'the same answer a second later')
    assert.equal(at(PEER_REPEAT_MS - 1, 4001), 1, 'the same answer just before 30 s')
    assert.equal(at(PEER_REPEAT_MS, 4001), 2, 'the same answer 30 s later')
    assert.equal(at(PEER_REPEAT_MS + 1_000, 4002), 3, 'a new port')
    assert.equal(at(PEER_REPEAT_MS + 2_000, 4002), 3)
    assert.equal(at(PEER_REPEAT_MS + 3_000, 4001), 4, 'the old port again')
    assert.equal(at(2 * PEER_REPEAT_MS + 2_999, 4001), 4)
    assert.equal(at(2 * PEER_REPEAT_MS + 3_000, 4001), 5)
    // `heard` follows every dispatch, the known peer's included.
    assert.equal(h.heard.length, 5)
    assert.ok(h.heard.every((p) => p.id.equals(peer)))
    assert.deepEqual(
      h.heard.map((p) => texts(p.multiaddrs)[0]),
      [4001, 4001, 4002, 4001, 4001].map((port) => `/ip4/${SENDER}/tcp/${port}`),
    )
  })

  it('goes on dispatching when the heard callback throws', async () => {
    let calls = 0
    const h = await harness({
      heard: () => {
        calls++
        throw new Error('boom')
      },
    })
    hear(h, answer([`/ip4/${SENDER}/tcp/4001/p2p/${randomPeer()}`]))
    hear(h, answer([`/ip4/${SENDER}/tcp/4001/p2p/${randomPeer()}`]))
    assert.equal(calls, 2)
    assert.equal(h.peers.length, 2)
  })

  it('closes its sockets and forgets its peers on stop', async () => {
    const h = await harness()
    const peer = randomPeer()
    hear(h, answer([`/ip4/${SENDER}/tcp/4001/p2p/${peer}`]))
    hear(h, answer([`/ip4/${SENDER}/tcp/4001/p2p/${peer}`]))
    assert.equal(h.peers.length, 1)
    await h.discovery.stop()
    assert.ok([...h.sockets.values()].every((s) => s.destroyed && s.listenerCount('response') === 0))
    await h.discovery.start()
    await h.discovery.afterStart?.()
    hear(h, answer([`/ip4/${SENDER}/tcp/4001/p2p/${peer}`]))
    assert.equal(h.peers.length, 2)
  })
})
