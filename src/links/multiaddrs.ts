/**
 * Small judgements about multiaddrs that the links make when they record and dial addresses:
 * parsing with a typed error, the peer an address names, and which network it is on.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { TalkenError } from '../errors.ts'

/** `address` as a multiaddr; `invalid_argument` (saying it is `what`, if given) when it is not one. */
export function parseMultiaddr(address: string, what?: string): Multiaddr {
  try {
    return multiaddr(address)
  } catch (err) {
    const prefix = what === undefined ? '' : `${what}: `
    throw new TalkenError('invalid_argument', `${prefix}not a multiaddr: ${address}`, { cause: err })
  }
}

/**
 * Throws `invalid_argument` naming the first of `addresses` that is not a multiaddr, or names a
 * peer (`/p2p/…`) by something that is not a peer ID.
 */
export function checkMultiaddrs(addresses: readonly string[], what: string): void {
  for (const address of addresses) {
    for (const c of parseMultiaddr(address, what).getComponents()) {
      if (c.name !== 'p2p') continue
      try {
        peerIdFromString(c.value ?? '')
      } catch (err) {
        throw new TalkenError('invalid_argument', `${what}: not a peer ID in ${address}`, { cause: err })
      }
    }
  }
}

/** The peer ID an address names (its last `/p2p/` component), if any. */
export function peerOf(address: Multiaddr): string | undefined {
  return address.getComponents().findLast((c) => c.name === 'p2p')?.value
}

/**
 * Whether the address is a plain TCP one, `/ip4|ip6/<ip>/tcp/<port>` with at most a `/p2p/<peer>`
 * after it: the only kind taken from others (a peer's identify, an mDNS answer, a contact's card).
 * Any other (`/unix/<path>`, a DNS name, a relay) could make this node connect to local sockets
 * or to hosts of someone else's choosing; an operator may still give one (bootstrap, dial).
 */
export function isPlainTcp(address: Multiaddr): boolean {
  const parts = address.getComponents()
  const [ip, tcp, peer, ...rest] = parts
  return (
    rest.length === 0 &&
    (ip?.name === 'ip4' || ip?.name === 'ip6') &&
    tcp?.name === 'tcp' &&
    (peer === undefined || peer.name === 'p2p')
  )
}

/** {@link isPlainTcp} for an address as text; false when it is not a multiaddr. */
export function isPlainTcpText(address: string): boolean {
  try {
    return isPlainTcp(multiaddr(address))
  } catch {
    return false
  }
}

/** Whether the address listens on every interface (0.0.0.0 or ::): not one to dial. */
export function isUnspecified(address: Multiaddr): boolean {
  const ip = ipOf(address)?.ip
  return ip === '0.0.0.0' || ip === '::'
}

/** Whether the address is on the loopback interface: of use only on the same host. */
export function isLoopback(address: Multiaddr): boolean {
  const a = ipOf(address)
  return a !== undefined && (a.family === 4 ? a.ip.startsWith('127.') : a.ip === '::1')
}

/** Whether two addresses look to be on one network: the same IPv4 /24, or IPv6 first four groups as written. */
export function sameNetwork(a: Multiaddr, b: Multiaddr): boolean {
  const x = ipOf(a)
  const y = ipOf(b)
  if (x === undefined || y === undefined || x.family !== y.family) return false
  if (x.family === 4) return x.ip.split('.').slice(0, 3).join('.') === y.ip.split('.').slice(0, 3).join('.')
  const head = (ip: string) => ip.split(':').slice(0, 4).join(':')
  return head(x.ip) === head(y.ip)
}

/** `address` ending in `/p2p/<peer>` (unchanged if it names a peer already). */
export function withPeer(address: string, peer: string): string {
  return address.includes('/p2p/') ? address : `${address}/p2p/${peer}`
}

/** `address` without its `/p2p/…` tail: the form the store records a peer's addresses in. */
export function stripPeer(address: string): string {
  const at = address.indexOf('/p2p/')
  return at === -1 ? address : address.slice(0, at)
}

function ipOf(address: Multiaddr): { family: 4 | 6; ip: string } | undefined {
  const c = address.getComponents().find((x) => x.name === 'ip4' || x.name === 'ip6')
  if (c?.value === undefined) return undefined
  return { family: c.name === 'ip4' ? 4 : 6, ip: c.value }
}
