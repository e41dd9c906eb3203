/**
 * LAN discovery by multicast DNS on every interface of a multi-homed device.
 *
 * It speaks libp2p's mDNS discovery spec (a PTR query for `_p2p._udp.local`, answered with the
 * peer's addresses as `dnsaddr=` TXT records), so it finds and is found by any libp2p node that
 * runs mDNS. It differs from `@libp2p/mdns` in one way that matters for a mesh: that module sends
 * through the system's default multicast interface only, so a phone on Wi-Fi that also shares a
 * hotspot would be discoverable on one of its two networks. Here every IPv4 interface gets its own
 * socket that joins the group and sends through that interface, and interfaces that appear later
 * (a hotspot switched on) are picked up on the next scan.
 *
 * Only ever run this where multicast is meant to go: a real LAN, or a network namespace a test
 * created. Talken's tests never start it on the machine's own interfaces.
 */
import { networkInterfaces } from 'node:os'
import type {
  ComponentLogger,
  Logger,
  PeerDiscovery,
  PeerDiscoveryEvents,
  PeerId,
  PeerInfo,
  Startable,
} from '@libp2p/interface'
import { peerDiscoverySymbol, serviceCapabilities } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter } from 'main-event'
import type { ResponsePacket } from 'multicast-dns'
import multicastDns from 'multicast-dns'

/** Options of {@link talkenMdns}. */
export interface MdnsInit {
  /** How often to ask the LAN who is there, in milliseconds. Default 5,000. */
  readonly queryIntervalMs?: number
  /** How often to look for interfaces that came or went, in milliseconds. Default 3,000. */
  readonly interfaceScanMs?: number
  /** The service name queried. Default libp2p's `_p2p._udp.local`. */
  readonly serviceTag?: string
  /** UDP port. Default 5353. */
  readonly port?: number
  /** Multicast group. Default 224.0.0.251. */
  readonly group?: string
}

interface Components {
  readonly peerId: PeerId
  readonly addressManager: { getAddresses(): Multiaddr[] }
  readonly logger: ComponentLogger
}

interface Socket {
  readonly address: string
  /** The interface's IPv4 netmask: the network this socket speaks for. */
  readonly netmask: string
  readonly loopback: boolean
  readonly mdns: multicastDns.MulticastDNS
  /** When our answer last went out on this interface, and a later one waiting for its turn. */
  answeredAt: number
  answerTimer?: NodeJS.Timeout | undefined
}

const TTL_SECONDS = 120
/**
 * Least time between two answers on one interface (RFC 6762 §6: a record is not multicast again
 * on an interface within a second): queries coming faster share the next answer, so that a host
 * on the LAN cannot make every node multicast at its pace.
 */
const MIN_ANSWER_INTERVAL_MS = 1_000

/** A libp2p peer-discovery component; pass it in `peerDiscovery: [talkenMdns()]`. */
export function talkenMdns(init: MdnsInit = {}): (components: Components) => PeerDiscovery & Startable {
  return (components) => new MultiInterfaceMdns(components, init)
}

class MultiInterfaceMdns extends TypedEventEmitter<PeerDiscoveryEvents> implements PeerDiscovery, Startable {
  readonly [peerDiscoverySymbol] = this
  readonly [Symbol.toStringTag] = 'talken:mdns'
  readonly [serviceCapabilities] = ['@libp2p/peer-discovery']

  readonly #components: Components
  readonly #log: Logger
  readonly #serviceTag: string
  readonly #port: number
  readonly #group: string
  readonly #queryIntervalMs: number
  readonly #interfaceScanMs: number
  /** A random DNS label naming this node in its answers (the peer ID is in the TXT records). */
  readonly #peerName = randomLabel()
  readonly #sockets = new Map<string, Socket>()
  #queryTimer: NodeJS.Timeout | undefined
  #scanTimer: NodeJS.Timeout | undefined
  #started = false

  constructor(components: Components, init: MdnsInit) {
    super()
    this.#components = components
    this.#log = components.logger.forComponent('talken:mdns')
    this.#serviceTag = init.serviceTag ?? '_p2p._udp.local'
    this.#port = init.port ?? 5353
    this.#group = init.group ?? '224.0.0.251'
    this.#queryIntervalMs = init.queryIntervalMs ?? 5_000
    this.#interfaceScanMs = init.interfaceScanMs ?? 3_000
  }

  isStarted(): boolean {
    return this.#started
  }

  start(): void {
    this.#started = true
  }

  /** Sockets open after libp2p listens, so the first announcement already carries our addresses. */
  afterStart(): void {
    this.#scan()
    this.#queryTimer = setInterval(() => this.#queryAll(), this.#queryIntervalMs)
    this.#scanTimer = setInterval(() => this.#scan(), this.#interfaceScanMs)
    this.#queryTimer.unref()
    this.#scanTimer.unref()
  }

  async stop(): Promise<void> {
    this.#started = false
    clearInterval(this.#queryTimer)
    clearInterval(this.#scanTimer)
    await Promise.all([...this.#sockets.keys()].map((address) => this.#close(address)))
  }

  /** Opens a socket for each new IPv4 interface and closes those whose interface went away. */
  #scan(): void {
    if (!this.#started) return
    const present = new Map<string, { netmask: string; internal: boolean }>()
    for (const entries of Object.values(networkInterfaces())) {
      // One socket per interface: its first IPv4 address names it.
      const v4 = entries?.find((e) => e.family === 'IPv4')
      if (v4 !== undefined) present.set(v4.address, v4)
    }
    for (const address of this.#sockets.keys()) {
      if (!present.has(address)) void this.#close(address)
    }
    for (const [address, { netmask, internal }] of present) {
      if (!this.#sockets.has(address)) this.#open(address, netmask, internal)
    }
  }

  #open(address: string, netmask: string, loopback: boolean): void {
    let mdns: multicastDns.MulticastDNS
    try {
      mdns = multicastDns({
        port: this.#port,
        ip: this.#group,
        interface: address,
        bind: '0.0.0.0',
        reuseAddr: true,
        loopback: true,
      })
    } catch (err) {
      this.#log('cannot open mDNS on %s: %e', address, err)
      return
    }
    const socket: Socket = { address, netmask, loopback, mdns, answeredAt: Number.NEGATIVE_INFINITY }
    this.#sockets.set(address, socket)
    // Every socket is bound to 0.0.0.0:5353, and Linux hands each one the packets of every
    // interface's group: each hears only what came from its own network, so that a query is
    // answered once, on the network it was asked on.
    const ours = (rinfo: { address: string } | undefined) =>
      rinfo === undefined ||
      sameSubnet(rinfo.address, address, netmask) ||
      // A source on no interface's subnet (a point-to-point or /32 link, a secondary address):
      // every socket hears it, as before.
      ![...this.#sockets.values()].some((other) => sameSubnet(rinfo.address, other.address, other.netmask))
    mdns.on('query', (query, rinfo) => {
      if (ours(rinfo)) this.#onQuery(socket, query.questions)
    })
    mdns.on('response', (response, rinfo) => {
      if (ours(rinfo)) this.#onResponse(response)
    })
    // An interface without multicast (a loopback without the flag, say) only warns: other
    // interfaces go on working.
    mdns.on('warning', (err: Error) => this.#log('mDNS warning on %s: %s', address, err.message))
    mdns.on('error', (err: Error) => {
      this.#log('mDNS error on %s: %s', address, err.message)
      void this.#close(address)
    })
    mdns.on('ready', () => {
      this.#announce(socket)
      this.#query(socket)
    })
  }

  #close(address: string): Promise<void> {
    const socket = this.#sockets.get(address)
    if (socket === undefined) return Promise.resolve()
    this.#sockets.delete(address)
    clearTimeout(socket.answerTimer)
    socket.answerTimer = undefined
    socket.mdns.removeAllListeners()
    // A socket that failed may already be closed; destroy's errors are of no interest then.
    socket.mdns.on('error', () => {})
    return new Promise((resolve) => socket.mdns.destroy(() => resolve()))
  }

  #queryAll(): void {
    for (const socket of this.#sockets.values()) this.#query(socket)
  }

  #query(socket: Socket): void {
    socket.mdns.query({ questions: [{ name: this.#serviceTag, type: 'PTR' }] }, (err: Error | null) => {
      if (err) this.#log('mDNS query on %s failed: %s', socket.address, err.message)
    })
  }

  #onQuery(socket: Socket, questions: ReadonlyArray<{ name: string; type: string }>): void {
    if (!questions.some((q) => q.name === this.#serviceTag && (q.type === 'PTR' || q.type === 'ANY'))) return
    if (socket.answerTimer !== undefined) return
    const wait = socket.answeredAt + MIN_ANSWER_INTERVAL_MS - Date.now()
    if (wait <= 0) {
      this.#announce(socket)
      return
    }
    socket.answerTimer = setTimeout(() => {
      socket.answerTimer = undefined
      if (this.#sockets.get(socket.address) === socket) this.#announce(socket)
    }, wait)
    socket.answerTimer.unref()
  }

  /**
   * Sends our PTR answer with the addresses this interface's network may reach: those on its own
   * subnet, or (none there: a listen address of another kind) every address of its kind.
   */
  #announce(socket: Socket): void {
    const dialable = this.#components.addressManager
      .getAddresses()
      .filter((a) => isDialable(a, socket.loopback))
    const here = dialable.filter((a) => {
      const ip = a.getComponents().find((c) => c.name === 'ip4')?.value
      return ip !== undefined && sameSubnet(ip, socket.address, socket.netmask)
    })
    const addresses = (here.length > 0 ? here : dialable).map((a) => withPeer(a, this.#components.peerId))
    if (addresses.length === 0) return
    const instance = `${this.#peerName}.${this.#serviceTag}`
    socket.answeredAt = Date.now()
    const response = {
      answers: [
        {
          name: this.#serviceTag,
          type: 'PTR' as const,
          class: 'IN' as const,
          ttl: TTL_SECONDS,
          data: instance,
        },
      ],
      additionals: addresses.map((a) => ({
        name: instance,
        type: 'TXT' as const,
        class: 'IN' as const,
        ttl: TTL_SECONDS,
        data: [`dnsaddr=${a}`],
      })),
    }
    socket.mdns.respond(response, (err: Error | null) => {
      if (err) this.#log('mDNS answer on %s failed: %s', socket.address, err.message)
    })
  }

  #onResponse(response: ResponsePacket): void {
    const ptr = response.answers.find((a) => a.type === 'PTR' && a.name === this.#serviceTag)
    if (ptr === undefined) return
    const instance = (ptr as { data?: unknown }).data
    if (typeof instance === 'string' && instance.startsWith(`${this.#peerName}.`)) return
    const found = parseAddresses([...response.answers, ...(response.additionals ?? [])])
    if (found === undefined || found.id.equals(this.#components.peerId)) return
    this.safeDispatchEvent('peer', { detail: found })
  }
}

/** The peer and its addresses from `dnsaddr=` TXT records; undefined when none parse or they name different peers. */
function parseAddresses(records: ResponsePacket['answers']): PeerInfo | undefined {
  let id: string | undefined
  const multiaddrs: Multiaddr[] = []
  for (const record of records) {
    if (record.type !== 'TXT') continue
    const data = (record as { data?: unknown }).data
    const values: unknown[] = Array.isArray(data) ? data : [data]
    for (const value of values) {
      const text =
        typeof value === 'string'
          ? value
          : value instanceof Uint8Array
            ? Buffer.from(value).toString('utf8')
            : ''
      if (!text.startsWith('dnsaddr=')) continue
      try {
        const address = multiaddr(text.slice('dnsaddr='.length))
        const peer = address.getComponents().findLast((c) => c.name === 'p2p')?.value
        if (peer === undefined || (id !== undefined && peer !== id)) continue
        id = peer
        multiaddrs.push(address.decapsulateCode(0x01a5))
      } catch {
        // a record that is not a multiaddr: skip it
      }
    }
  }
  if (id === undefined || multiaddrs.length === 0) return undefined
  try {
    return { id: peerIdFromString(id), multiaddrs }
  } catch {
    return undefined
  }
}

/** TCP addresses on IPv4 that a neighbour could dial; loopback only when announcing on loopback. */
function isDialable(address: Multiaddr, loopback: boolean): boolean {
  const parts = address.getComponents()
  const ip = parts.find((c) => c.name === 'ip4')?.value
  if (ip === undefined || parts.every((c) => c.name !== 'tcp')) return false
  return ip.startsWith('127.') === loopback
}

/** Whether IPv4 `ip` is on the network of `address` with `netmask`. */
function sameSubnet(ip: string, address: string, netmask: string): boolean {
  const n = (x: string) => x.split('.').reduce((v, o) => (v * 256 + Number(o)) >>> 0, 0)
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip)) return false
  const mask = n(netmask)
  return (n(ip) & mask) >>> 0 === (n(address) & mask) >>> 0
}

function withPeer(address: Multiaddr, peerId: PeerId): string {
  const text = address.toString()
  return text.includes('/p2p/') ? text : `${text}/p2p/${peerId.toString()}`
}

function randomLabel(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'
  let label = ''
  for (const byte of globalThis.crypto.getRandomValues(new Uint8Array(32)))
    label += alphabet[byte % alphabet.length]
  return label
}
