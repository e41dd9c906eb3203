/**
 * What a baseline router persists: its message buffer and the IDs it has had delivered. The
 * simulator creates one per node and hands the same object to every router it creates for that
 * node, so a node that leaves and comes back keeps its buffer, as a phone keeps its disk.
 */

/** Byte offsets of a stored message record: ID (16) | destination tag (16) | payload. */
export const RECORD_DESTINATION = 16
export const RECORD_PAYLOAD = 32

/** A message in a baseline router's buffer. */
export interface HeldMessage {
  /** ID | destination | payload in one allocation (the DATA frame's layout after its type byte). */
  readonly record: Uint8Array
  /** The ID as a 16-character binary string (see `idKey` in frames.ts): the map key. */
  readonly key: string
  /** The destination tag as a binary string. */
  readonly destKey: string
  /** Milliseconds on the host clock. */
  readonly expiresAt: number
  /** Copies this node may still hand out (spray-and-wait); 1 elsewhere. */
  copies: number
  /** Hops travelled to reach this node. */
  readonly hops: number
  /** True on the node that created the message. */
  readonly own: boolean
}

/** Payload bytes of a held message. */
export function payloadSize(m: HeldMessage): number {
  return m.record.length - RECORD_PAYLOAD
}

/** A message this node received as its destination. */
export interface DeliveredRecord {
  readonly id: Uint8Array
  /** Kept until then (plus a grace period), so late copies are recognised as duplicates. */
  readonly expiresAt: number
}

/** A baseline router's persistent state. */
export interface BaselineStore {
  /** Buffered messages by binary ID key, in arrival order (oldest first: the drop order). */
  readonly messages: Map<string, HeldMessage>
  /** Messages delivered here, by binary ID key. */
  readonly delivered: Map<string, DeliveredRecord>
  /** Payload bytes in `messages`. */
  bytes: number
  /** Most payload bytes buffered; the oldest messages are dropped to make room. */
  readonly capacityBytes: number
}

/** The Helsinki scenario's buffer: 5 MB. */
export const DEFAULT_BUFFER_BYTES = 5_000_000

/**
 * An empty store for a baseline router.
 *
 * @example
 * const entry = defineRouter({ factory: createEpidemicRouter(), makeStore: () => createBaselineStore() })
 */
export function createBaselineStore(capacityBytes = DEFAULT_BUFFER_BYTES): BaselineStore {
  return { messages: new Map(), delivered: new Map(), bytes: 0, capacityBytes }
}
