/**
 * An address the node could not listen on, said in the user's words.
 *
 * libp2p reports it as an `UnsupportedListenAddressesError` whose message lists each address
 * with the system's error ("listen EADDRINUSE: address already in use 127.0.0.1:4001"), under
 * advice meant for programs that configure libp2p ("set `transportManager.faultTolerance` to
 * NO_FATAL"). A person who typed `--listen` wants to know which address failed and why: the port
 * is taken, or the address is not this device's.
 */
import { TalkenError } from '../errors.ts'

/** The name libp2p gives the error (libp2p 3: transport-manager.js). */
const LISTEN_ERROR_NAME = 'UnsupportedListenAddressesError'

/** Why one address failed, from the system's error code in libp2p's line for it. */
function reason(address: string, said: string): string {
  const port = /\/tcp\/(\d+)/.exec(address)?.[1]
  const host = /^\/(?:ip4|ip6|dns4|dns6|dns)\/([^/]+)/.exec(address)?.[1]
  if (said.includes('EADDRINUSE'))
    return `port ${port ?? '?'} is in use (by another program, or another daemon)`
  if (said.includes('EADDRNOTAVAIL')) return `${host ?? 'the address'} is not an address of this device`
  if (said.includes('EACCES')) return `port ${port ?? '?'} needs privileges: choose one above 1023`
  if (said.includes('No transport')) return 'not an address Talken listens on (TCP only)'
  return said.replace(/^\w*Error: /, '').split('\n')[0] ?? said
}

/**
 * `err` as an `io_failed` error naming each address that could not be listened on, when it is
 * libp2p's listen failure; otherwise undefined.
 */
export function listenFailure(err: unknown): TalkenError | undefined {
  if (!(err instanceof Error) || err.name !== LISTEN_ERROR_NAME) return undefined
  // One line per address: "  /ip4/127.0.0.1/tcp/4001: Error: listen EADDRINUSE: …".
  const failed = [...err.message.matchAll(/^\s*(\/\S+): (.+)$/gm)].map(([, address = '', said = '']) => ({
    address,
    why: reason(address, said),
  }))
  const what =
    failed.length > 0
      ? failed.map((f) => `${f.address}: ${f.why}`).join('; ')
      : 'the listen address(es) failed'
  return new TalkenError(
    'io_failed',
    `cannot listen on ${what}. Choose another with --listen (port 0 takes any free one)`,
    { cause: err, ...(failed[0] ? { details: { address: failed[0].address } } : {}) },
  )
}
