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
 * An answer is believed only for what its sender can vouch for: itself. Of its `dnsaddr=` records
 * only `/ip4/<ip>/tcp/<port>` ones are kept, optionally followed by `/p2p/<id>` naming the one
 * peer the answer is about, and `<ip>` must be the packet's source address (an answer from
 * loopback may name any 127.x address). Any other transport, name or host is dropped, and an
 * answer with no address left is ignored: a spoofed answer can at most point a node at the
 * spoofed source itself. What passes is then paced ({@link PEER_REPEAT_MS},
 * {@link PEERS_PER_SECOND}, {@link PEER_BURST}), so that a flood of answers with made-up peer IDs
 * becomes a trickle of peers, not a flood of dials.
 *
 * Only ever run this where multicast is meant to go: a real LAN, or a network namespace a test
 * created. Talken's tests never start it on the machine's own interfaces.
 */
import { type NetworkInterfaceInfo, networkInterfaces } from 'node:os'
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
  /**
   * Called for every accepted answer that passes the pace, from peers heard before too (the
   * 'peer' event, dispatched for the same answers, leads libp2p to dial only peers new to it).
   */
  readonly heard?: (peer: { id: PeerId; multiaddrs: Multiaddr[] }) => void
  /** The clock, in milliseconds. Default `Date.now`. */
  readonly now?: () => number
  /** The host's network interfaces. Default `os.networkInterfaces`. */
  readonly networkInterfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>
  /** Opens one interface's mDNS socket. Default `multicast-dns`; tests pass a fake that sends nothing. */
  readonly multicastDns?: (options: multicastDns.Options) => multicastDns.MulticastDNS
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
/** Least time between two dispatches of one peer whose accepted addresses did not change. */
export const PEER_REPEAT_MS = 30_000
/** Peers dispatched per second, all together, once {@link PEER_BURST} is spent. */
export const PEERS_PER_SECOND = 8
/** Peers dispatched at once after a quiet spell: a LAN's worth answering our first query. */
export const PEER_BURST = 16
/** Peers remembered for {@link PEER_REPEAT_MS}; beyond it, the one dispatched longest ago is forgotten. */
export const MAX_PEERS_HEARD = 1_024

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
  readonly #heard: MdnsInit['heard']
  readonly #now: () => number
  readonly #interfaces: () => NodeJS.Dict<NetworkInterfaceInfo[]>
  readonly #openMdns: (options: multicastDns.Options) => multicastDns.MulticastDNS
  readonly #pace = new PeerPace()
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
    this.#heard = init.heard
    this.#now = init.now ?? Date.now
    this.#interfaces = init.networkInterfaces ?? networkInterfaces
    this.#openMdns = init.multicastDns ?? multicastDns
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
    this.#pace.clear()
    await Promise.all([...this.#sockets.keys()].map((address) => this.#close(address)))
  }

  /** Opens a socket for each new IPv4 interface and closes those whose interface went away. */
  #scan(): void {
    if (!this.#started) return
    const present = new Map<string, { netmask: string; internal: boolean }>()
    for (const entries of Object.values(this.#interfaces())) {
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
      mdns = this.#openMdns({
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
      if (ours(rinfo)) this.#onResponse(response, rinfo?.address)
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
    const wait = socket.answeredAt + MIN_ANSWER_INTERVAL_MS - this.#now()
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
    socket.answeredAt = this.#now()
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

  /** Dispatches the peer of an answer from `source`, if it names one by addresses we accept and the pace allows. */
  #onResponse(response: ResponsePacket, source: string | undefined): void {
    if (source === undefined) return
    const ptr = response.answers.find((a) => a.type === 'PTR' && a.name === this.#serviceTag)
    if (ptr === undefined) return
    const instance = (ptr as { data?: unknown }).data
    if (typeof instance === 'string' && instance.startsWith(`${this.#peerName}.`)) return
    const found = parseAddresses([...response.answers, ...(response.additionals ?? [])], source)
    if (found === undefined || found.id.equals(this.#components.peerId)) return
    const addresses = found.multiaddrs
      .map((a) => a.toString())
      .sort()
      .join(' ')
    if (!this.#pace.admit(found.id.toString(), addresses, this.#now())) return
    this.safeDispatchEvent('peer', { detail: found })
    try {
      this.#heard?.(found)
    } catch (err) {
      // The callback's failure must not take the socket's packet handler down with it.
      this.#log.error('mDNS heard callback failed: %e', err)
    }
  }
}

/**
 * Which accepted answers are dispatched: a peer again only after {@link PEER_REPEAT_MS} or with
 * other addresses, and no more than a token bucket of {@link PEER_BURST} refilled at
 * {@link PEERS_PER_SECOND} lets through, whoever the peers. No timers: it refills when asked.
 */
class PeerPace {
  /** Peer ID → when it was last dispatched, and with which addresses; oldest first. */
  readonly #recent = new Map<string, { at: number; addresses: string }>()
  #tokens = PEER_BURST
  #filledAt: number | undefined

  /** Whether `peer` with `addresses` may be dispatched `now`; if so, it is counted as dispatched. */
  admit(peer: string, addresses: string, now: number): boolean {
    const last = this.#recent.get(peer)
    // A clock set back does not hold a peer back longer than the pace.
    const recent = last !== undefined && now >= last.at && now - last.at < PEER_REPEAT_MS
    if (recent && last.addresses === addresses) return false
    const elapsed = Math.max(0, now - (this.#filledAt ?? now))
    this.#tokens = Math.min(PEER_BURST, this.#tokens + (elapsed * PEERS_PER_SECOND) / 1_000)
    this.#filledAt = now
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    this.#recent.delete(peer)
    this.#recent.set(peer, { at: now, addresses })
    if (this.#recent.size > MAX_PEERS_HEARD) {
      const oldest = this.#recent.keys().next()
      if (oldest.done !== true) this.#recent.delete(oldest.value)
    }
    return true
  }

  /** Forgets every peer and refills the bucket, for a fresh start. */
  clear(): void {
    this.#recent.clear()
    this.#tokens = PEER_BURST
    this.#filledAt = undefined
  }
}

/**
 * The peer and the addresses an answer sent from `source` may give for it, from its `dnsaddr=`
 * TXT records: `/ip4/<source>/tcp/<port>` with `/p2p/<peer>` or nothing after (from a loopback
 * source, any 127.x address). Undefined when no address is left or none names the peer.
 */
function parseAddresses(records: ResponsePacket['answers'], source: string): PeerInfo | undefined {
  let id: string | undefined
  const multiaddrs = new Map<string, Multiaddr>()
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
        const [ip, tcp, p2p, ...rest] = multiaddr(text.slice('dnsaddr='.length)).getComponents()
        if (ip?.name !== 'ip4' || tcp?.name !== 'tcp' || rest.length > 0) continue
        if (ip.value !== source && !(isLoopbackIp(source) && isLoopbackIp(ip.value))) continue
        if (p2p !== undefined) {
          if (p2p.name !== 'p2p' || p2p.value === undefined) continue
          if (id !== undefined && p2p.value !== id) continue
          id = p2p.value
        }
        const address = multiaddr(`/ip4/${ip.value}/tcp/${tcp.value}`)
        multiaddrs.set(address.toString(), address)
      } catch {
        // a record that is not a multiaddr: skip it
      }
    }
  }
  if (id === undefined || multiaddrs.size === 0) return undefined
  try {
    return { id: peerIdFromString(id), multiaddrs: [...multiaddrs.values()] }
  } catch {
    return undefined
  }
}

/** TCP addresses on IPv4 that a neighbour could dial; loopback only when announcing on loopback. */
function isDialable(address: Multiaddr, loopback: boolean): boolean {
  const parts = address.getComponents()
  const ip = parts.find((c) => c.name === 'ip4')?.value
  if (ip === undefined || parts.every((c) => c.name !== 'tcp')) return false
  return isLoopbackIp(ip) === loopback
}

/** Whether IPv4 `ip` is a loopback address (127.0.0.0/8). */
function isLoopbackIp(ip: string | undefined): boolean {
  return ip?.startsWith('127.') === true
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
