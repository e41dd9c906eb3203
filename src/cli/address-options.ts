/**
 * `--listen` and `--bootstrap` of `talken daemon`, checked before anything starts: a malformed
 * address would otherwise surface from inside libp2p, in its words ("String multiaddr must
 * start with "/"", "you may need to remove one or more listen addresses from your
 * configuration…"), as an unexpected failure. Both are usage errors (exit status 2).
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import { parseMultiaddr } from '../links/multiaddrs.ts'
import { usageError } from './usage-error.ts'

/** What the message shows of an address someone typed: enough to recognise it. */
const shown = (address: string): string => (address.length > 120 ? `${address.slice(0, 117)}…` : address)

function parse(option: string, address: string): Multiaddr {
  try {
    return parseMultiaddr(address)
  } catch (err) {
    const why = (err as { cause?: unknown }).cause
    const reason = why instanceof Error ? ` (${why.message})` : ''
    throw usageError(
      `${option} ${shown(address)}: not an address${reason}; one looks like /ip4/192.168.1.20/tcp/4001`,
      { cause: err },
    )
  }
}

/**
 * Throws a usage error for a `--listen` value that is not a TCP multiaddr
 * (`/ip4/<address>/tcp/<port>`, `/ip6/…`, `/dns4/…`): the only transport the node listens on.
 */
export function checkListenOption(addresses: readonly string[]): void {
  for (const address of addresses) {
    const names = parse('--listen', address)
      .getComponents()
      .map((c) => c.name)
    const tcp = names.indexOf('tcp')
    if (tcp < 1 || !names.slice(tcp + 1).every((n) => n === 'p2p')) {
      throw usageError(
        `--listen ${shown(address)}: Talken listens on TCP only: give /ip4/<address>/tcp/<port> (port 0: any free one)`,
      )
    }
  }
}

/** Throws a usage error for a `--bootstrap` value that is not a multiaddr, or names no valid peer ID. */
export function checkBootstrapOption(addresses: readonly string[]): void {
  for (const address of addresses) {
    for (const c of parse('--bootstrap', address).getComponents()) {
      if (c.name !== 'p2p') continue
      try {
        peerIdFromString(c.value ?? '')
      } catch (err) {
        throw usageError(
          `--bootstrap ${shown(address)}: "${shown(c.value ?? '')}" is not a peer ID (one looks like 12D3KooW…, as a daemon prints in its addresses)`,
          { cause: err },
        )
      }
    }
  }
}
