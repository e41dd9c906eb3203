/**
 * The node's public types: what {@link createNode} takes, what its events and queries return.
 * (Kept apart from node.ts, which runs the node.)
 */
import type { PrivateKey } from '@libp2p/interface'
import type { Identity } from '../identity/identity.ts'
import type { LinkStats } from '../links/libp2p-links.ts'
import type { MdnsInit } from '../links/mdns.ts'
import type { MeshConfig } from '../mesh/config.ts'
import type { MeshStats } from '../mesh/mesh-core.ts'
import type { Logger } from '../mesh/router.ts'
import type { DeliveryState, Store } from '../store/store.ts'
import type { RoomEntryEvent } from './rooms.ts'

/** Options of {@link createNode}. */
export interface NodeOptions {
  /** Data directory holding the identity and the SQLite store. */
  readonly home?: string
  /** Passphrase of an encrypted key file in `home`. */
  readonly passphrase?: string
  /**
   * With `home`: the store's durability (docs/storage.md §Durability). `normal` (the default)
   * survives a killed process; after a power cut the last commits may be gone, among them
   * deliveries this node already acknowledged (their senders show them delivered). `full` syncs
   * every commit, at a cost per message.
   */
  readonly durability?: 'normal' | 'full'
  /** Bring your own store and identity instead of `home` (both are then required). */
  readonly store?: Store
  readonly identity?: Identity
  /** The libp2p key; default: read from (or created in) `home`, or a fresh one. */
  readonly peerKey?: PrivateKey
  /** Multiaddrs to listen on. Default `/ip4/0.0.0.0/tcp/0`. */
  readonly listen?: readonly string[]
  /** Multiaddrs to keep dialling; contacts' card addresses are added to these. */
  readonly bootstrap?: readonly string[]
  /** LAN discovery; default on. Switch off where multicast must not go. */
  readonly mdns?: boolean | MdnsInit
  /**
   * Which devices (libp2p peer IDs) this node may link with; default all. Others are neither
   * dialled nor accepted (see `LinksOptions.allowPeer`). Fixes the topology of a local mesh.
   */
  readonly allowPeer?: (peerId: string) => boolean
  readonly logger?: Logger
  /** Mesh tuning (see mesh/config.ts). */
  readonly mesh?: Partial<MeshConfig>
  /** How long a message may wait for delivery, in milliseconds. Default the mesh's (24 h). */
  readonly ttlMs?: number
}

/** A message someone sent us. */
export interface IncomingMessage {
  readonly id: string
  /** The sender's text ID (their conversation). */
  readonly from: string
  /** The sender as we name them. */
  readonly fromName: string
  readonly text: string
  /** Unix milliseconds, by the sender's clock. */
  readonly sentAt: number
  /** Unix milliseconds, by ours. */
  readonly receivedAt: number
  /** Hops the message travelled, when known. */
  readonly hops: number | undefined
}

/** A change in a sent message's delivery state. */
export interface MessageStateEvent {
  readonly id: string
  readonly conversation: string
  readonly state: DeliveryState
  readonly reason?: string | undefined
}

/** A mesh neighbour, for `talken peers`. */
export interface PeerInfo {
  readonly peerId: string
  readonly addresses: readonly string[]
  /** True when the mesh link is up. */
  readonly mesh: boolean
  /** The contact behind this device, when its Hello proved it is them (docs/protocol.md §Hello proof). */
  readonly contact: string | undefined
}

/** A route, for `talken routes`. */
export interface RouteInfo {
  /** Destination tag (hex). */
  readonly destination: string
  /** The contact it belongs to, when known. */
  readonly contact: string | undefined
  readonly nextHop: string
  readonly metric: number
}

/** A summary for `talken status`. */
export interface NodeStatus {
  readonly id: string
  readonly name: string
  readonly peerId: string
  readonly addresses: readonly string[]
  readonly running: boolean
  readonly peers: number
  readonly routes: number
  readonly outbox: number
  readonly custody: { readonly count: number; readonly bytes: number }
  readonly mesh: MeshStats
  readonly links: LinkStats
  readonly rejected: number
}

/**
 * The node's events. `message`, `state` and `room:entry` announce what is stored already: they
 * are emitted once the writes behind them have committed, outside any store transaction, so a
 * listener may call `send` (its message is persisted before `send` returns, as always) and a
 * listener that throws undoes nothing. Its exception is emitted as `error` (or, with no `error`
 * listener, thrown on a later tick, as an uncaught exception), and the other announcements still
 * happen.
 */
export interface NodeEvents {
  message: [IncomingMessage]
  state: [MessageStateEvent]
  'link:up': [string]
  'link:down': [string]
  /** An entry entered a room's history here (written or received). */
  'room:entry': [RoomEntryEvent]
  /** The node stopped. */
  stopped: []
  error: [Error]
}
