/**
 * The contract between a routing core and whatever hosts it: the deterministic simulator, or
 * the real node over libp2p links.
 *
 * A router is sans-IO: the host feeds it events (a link came up or went down, a frame arrived,
 * a timer fired, the application sends) and the router answers only through the host's
 * callbacks (transmit a frame to a neighbour, deliver a message, report a delivery state, ask to
 * be woken). It never reads a clock, draws randomness, or touches a socket on its own. Talken's
 * mesh core implements this interface, and so do the baseline routers the simulator compares it
 * with (epidemic, direct delivery, spray-and-wait).
 */
import type { DeliveryState } from '../store/store.ts'

/** A link-level neighbour, named by the host (a libp2p peer ID, or a simulator node number). */
export type NeighbourId = string

/** Log levels a router may use. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

/** Where a router writes its logs; injected, so tests and the simulator can silence or capture them. */
export type Logger = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void

/** A message that reached its destination. */
export interface Delivery {
  /** Message ID (lower-case hex of the envelope ID). */
  readonly id: string
  readonly payload: Uint8Array
  /** How many hops the envelope travelled, when known. */
  readonly hops?: number
  /** Sent as a datagram ({@link SendOptions.datagram}): not recorded, not acknowledged; the filing returned is ignored. */
  readonly datagram?: boolean
}

/** A change in an outgoing message's delivery contract. */
export interface StateChange {
  readonly id: string
  readonly state: DeliveryState
  readonly reason?: string
}

/** What a router asks of its host. All times are milliseconds on the host's clock. */
export interface RouterHost {
  /** The current time, in milliseconds. */
  now(): number
  /** A uniformly distributed number in [0, 1), from the host's (seeded, in the simulator) generator. */
  random(): number
  /**
   * Sends `frame` to a neighbour whose link is up. Frames may be lost; routers must not assume delivery.
   * `kind` tells the host whether the frame carries message data or is routing control traffic
   * (hellos, summaries, acknowledgements), so that the simulator can count the two apart; it does
   * not change how the frame travels. Default `'data'`.
   */
  transmit(neighbour: NeighbourId, frame: Uint8Array, kind?: 'data' | 'control'): void
  /**
   * Hands a message addressed to this node to the application, once per message ID, also across
   * restarts. The router then records the message in the store as received, atomically with
   * whatever the host wrote during this call; the host may return how to file it (by default the
   * conversation is the sender's tag, in hex, and the body is the payload).
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: hosts that only count deliveries return nothing
  deliver(delivery: Delivery): MessageFiling | undefined | void
  /** Reports a state change of a message this node sent. */
  stateChanged(change: StateChange): void
  /**
   * Whether `proof`, in the Hello of the link to `neighbour`, proves that the link speaks for the
   * account whose destination tag is `tag` (the host knows its contacts' devices; see
   * src/node/hello-proof.ts). Without it (the simulator), every Hello only claims its tag.
   */
  verifyHello?(neighbour: NeighbourId, tag: Uint8Array, proof: Uint8Array): boolean
  /** Asks the host to call {@link Router.timer} at (or soon after) `time`. Repeated calls: the host may keep only the earliest pending one. */
  wakeAt(time: number): void
  readonly log: Logger
}

/** How a message is filed in the store's conversations (an application's view of it). */
export interface MessageFiling {
  readonly conversation: string
  readonly body: Uint8Array
  /**
   * Why the application refused the message (it could not be opened or verified). A refused
   * message is remembered (as `failed`, so never delivered twice) but not acknowledged: its
   * sender is not told it was delivered, and the copies expire.
   */
  readonly refused?: string
  /**
   * For a message sent with {@link SendOptions.ackSecret}: the secret the application found
   * inside the payload. It proves delivery; a message delivered without the secret its ID commits
   * to is treated as refused.
   */
  readonly ackSecret?: Uint8Array
  /**
   * For such a message: the sender's destination tag, as the application learned it from the
   * opened body. The acknowledgement envelope goes there; without it the proof travels back only
   * along the paths the message came.
   */
  readonly source?: Uint8Array
  /**
   * For such a message: the ack tag the application found inside it (16 bytes; the sender's
   * `MeshCore.ackTagFor` of the secret). The acknowledgement envelope carries it instead of the
   * secret, so that relays cannot link it to the message; without it, it carries the secret.
   */
  readonly ackTag?: Uint8Array
}

/** Options of {@link Router.send}. */
export interface SendOptions {
  /** Lifetime in milliseconds; after it the message is expired everywhere. */
  readonly ttlMs?: number
  /** How to file the outgoing message; by default under the destination tag (hex), with the payload as body. */
  readonly filing?: MessageFiling
  /**
   * Send best-effort: no end-to-end acknowledgement, no delivery states, nothing written to the
   * store on either end, one copy (no spraying), each holder forgetting it once the next hop
   * took it. For protocols that repair losses themselves (room gossip). The receiver hands it to
   * the application at most once while it remembers the ID (a bounded, in-memory set).
   */
  readonly datagram?: boolean
  /**
   * The delivery proof (16 bytes, random), which the caller has hidden inside `payload` under
   * end-to-end encryption. The envelope's ID is its hash; the recipient's application returns it
   * in its {@link MessageFiling}, and only then is the message acknowledged. Relays see the ID,
   * never the secret, so they cannot forge an acknowledgement; nor do they see the source, which
   * the recipient's application also finds in the body ({@link MessageFiling.source}). Without
   * it, secret and source travel in the clear beside the payload (for callers with no end-to-end
   * layer, such as the simulator). Datagrams carry neither.
   */
  readonly ackSecret?: Uint8Array
  /**
   * When the message was written (Unix ms), as the store files it: a message sent again in place
   * of another keeps that one's place in its conversation. Default: now.
   */
  readonly createdAt?: number
}

/** What a router holds right now, for the simulator's storage metrics. */
export interface RouterLoad {
  /** Envelopes held: own messages waiting plus custody for others. */
  readonly storedMessages: number
  readonly storedBytes: number
}

/** A sans-IO routing core. */
export interface Router {
  /** A link to `neighbour` came up; `mtu` is the largest frame it carries, in bytes. */
  linkUp(neighbour: NeighbourId, mtu: number): void
  /** The link to `neighbour` went down. */
  linkDown(neighbour: NeighbourId): void
  /**
   * A frame arrived from `neighbour`. Bad frames are dropped and counted, never thrown; a store
   * that fails (`storage_full`, `storage_failed`) is thrown, for the caller to undo the step it
   * ran in (the core's memory of it is undone with the store's writes).
   */
  receive(neighbour: NeighbourId, frame: Uint8Array): void
  /** A wake-up requested through {@link RouterHost.wakeAt} is due. */
  timer(): void
  /**
   * Sends `payload` to the node whose destination tag is `destination`; returns the message ID (hex).
   * Throws `invalid_argument` for this node's own tag.
   */
  send(destination: Uint8Array, payload: Uint8Array, options?: SendOptions): string
  /** Current storage load. */
  load(): RouterLoad
}

/** Creates a router for one node; the simulator calls it again after churn, with the same store. */
export type RouterFactory<Store = unknown> = (init: {
  readonly self: Uint8Array
  readonly host: RouterHost
  readonly store: Store
}) => Router
