/**
 * The node's network identity and port, kept in the data directory: the libp2p key (`peer.key`),
 * and the TCP port of the last run, so that the addresses contacts hold for us stay valid.
 */
import { createServer } from 'node:net'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { TalkenError } from '../errors.ts'
import { readFileIfExists, writePrivateFile } from '../identity/key-file.ts'
import type { Store } from '../store/store.ts'

/** The libp2p key file in the data directory: this device's network identity. */
export const PEER_KEY_FILE = 'peer.key'

/** Where the node's TCP port is remembered, so its addresses (and links to it) stay valid. */
const PORT_KEY = ['node', 'tcp-port'] as const

/** Every IPv4 interface, on the port of the last run when it is still free, else a free one. */
export async function defaultListen(store: Store): Promise<string[]> {
  const stored = store.kvGet(...PORT_KEY)
  const port = stored?.length === 2 ? (stored[0]! << 8) | stored[1]! : 0
  return [`/ip4/0.0.0.0/tcp/${port !== 0 && (await isPortFree(port)) ? port : 0}`]
}

function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => resolve(true)))
  })
}

/** Reads the device's libp2p key from `home`, creating it on first use. */
export async function loadPeerKey(home: string | undefined): Promise<PrivateKey> {
  if (home === undefined) return generateKeyPair('Ed25519')
  const path = join(home, PEER_KEY_FILE)
  const bytes = readFileIfExists(path)
  if (bytes !== undefined) {
    try {
      return privateKeyFromProtobuf(bytes)
    } catch (err) {
      throw new TalkenError('malformed', `${path} is not a libp2p private key`, { cause: err })
    }
  }
  const key = await generateKeyPair('Ed25519')
  writePrivateFile(path, privateKeyToProtobuf(key))
  return key
}

/** Remembers the port of `addresses` (ours, listening on every interface) for the next run. */
export function rememberPort(store: Store, addresses: readonly string[]): void {
  const port = Number(/\/tcp\/(\d+)\//.exec(addresses[0] ?? '')?.[1] ?? 0)
  if (port > 0 && port < 65536) store.kvSet(...PORT_KEY, new Uint8Array([port >> 8, port & 0xff]))
}
