/**
 * The storage interface every Talken layer writes through.
 *
 * The interface is synchronous on purpose: the embedded default (better-sqlite3) is synchronous,
 * the sans-IO protocol cores call it inside one step with no interleaving, and "the call
 * returned" then means "the write is durable" (see docs/storage.md). Both implementations
 * ({@link openSqliteStore}, {@link createMemoryStore}) pass the same compliance suite in
 * `test/compliance/store.ts`.
 */

/** Where an outgoing message is in its delivery contract; incoming messages are `received` or `read`. */
export type DeliveryState =
  | 'queued' // accepted and persisted, not yet handed to any link
  | 'sent' // transmitted to a neighbour
  | 'relayed' // a neighbour took custody
  | 'delivered' // the recipient acknowledged end to end
  | 'read' // the recipient read it (receipts on)
  | 'expired' // its lifetime ran out before delivery
  | 'failed' // given up for a stated reason
  | 'received' // an incoming message, stored and shown to the app

/** All delivery states, in contract order. */
export const DELIVERY_STATES: readonly DeliveryState[] = [
  'queued',
  'sent',
  'relayed',
  'delivered',
  'read',
  'expired',
  'failed',
  'received',
]

/** The local identity's public profile. Secret keys never enter the store; they live in the key file. */
export interface StoredIdentity {
  /** Ed25519 account public key, 32 bytes. */
  readonly accountKey: Uint8Array
  /** Display name shown to others. */
  readonly name: string
  /** The signed contact card (wire encoding) others receive in our link. */
  readonly card: Uint8Array
  /** Unix milliseconds. */
  readonly createdAt: number
}

/** Someone whose contact link we accepted. */
export interface Contact {
  /** Text ID (see identity/text-id.ts); primary key. */
  readonly id: string
  readonly accountKey: Uint8Array
  /** Local name for this contact (a petname; defaults to their display name). */
  readonly name: string
  /** Their signed contact card as received (wire encoding). */
  readonly card: Uint8Array
  /** True once the user compared safety numbers. */
  readonly verified: boolean
  /** Unix milliseconds. */
  readonly addedAt: number
}

/** One message in a conversation, in either direction. */
export interface MessageRecord {
  /** Message ID, lower-case hex of the 16-byte envelope ID; primary key. */
  readonly id: string
  /** The contact (text ID) or room this message belongs to. */
  readonly conversation: string
  readonly direction: 'in' | 'out'
  /** Application content (plaintext at rest on the owner's device only). */
  readonly body: Uint8Array
  /** Unix milliseconds. */
  readonly createdAt: number
  readonly state: DeliveryState
  /** Why the message is `failed` or `expired`, when it is. */
  readonly stateReason?: string | undefined
  /** Unix milliseconds of the last state change. */
  readonly updatedAt: number
}

/** A message waiting for a link: the envelope to send and its retry schedule. */
export interface OutboxEntry {
  readonly messageId: string
  /** The envelope bytes to transmit. */
  readonly envelope: Uint8Array
  readonly attempts: number
  /** Unix milliseconds before which it is not retried. */
  readonly nextAttemptAt: number
  /** Unix milliseconds after which it is expired rather than sent. */
  readonly expiresAt: number
}

/** An envelope held for someone else (store-and-forward custody). */
export interface CustodyEntry {
  readonly messageId: string
  /** Opaque quota key: who handed the envelope over (a neighbour), not who wrote it. */
  readonly origin: string
  /** The envelope's destination tag. */
  readonly destination: Uint8Array
  readonly envelope: Uint8Array
  /** Copies this node may still hand out (spray budget). */
  readonly copies: number
  /** Unix milliseconds. */
  readonly expiresAt: number
  /** Unix milliseconds. */
  readonly receivedAt: number
}

/** Byte quotas for custody; an insert that would exceed either throws `quota_exceeded`. */
export interface CustodyQuota {
  /** Most bytes of envelopes held for one origin. */
  readonly perOriginBytes: number
  /** Most bytes of envelopes held in total. */
  readonly totalBytes: number
}

/** Default custody quotas: 4 MiB per origin, 64 MiB in total. */
/** Addresses remembered per peer, at most (see {@link Store.notePeer}). */
export const MAX_PEER_ADDRESSES = 8
/** Peers remembered, at most (see {@link Store.notePeer}). */
export const MAX_PEERS = 1024

export const DEFAULT_CUSTODY_QUOTA: CustodyQuota = {
  perOriginBytes: 4 * 1024 * 1024,
  totalBytes: 64 * 1024 * 1024,
}

/** A network address we have seen a peer at. */
export interface PeerAddress {
  readonly address: string
  /** Unix milliseconds. */
  readonly lastSeen: number
  /** Consecutive failed dials; reset on success. */
  readonly failures: number
}

/** A peer (a device on the network) we have met. */
export interface PeerRecord {
  readonly peerId: string
  /** Unix milliseconds. */
  readonly lastSeen: number
  readonly addresses: readonly PeerAddress[]
}

/** Bytes held in custody, overall or for one origin. */
export interface CustodyUsage {
  readonly bytes: number
  readonly count: number
}

/**
 * Durable local state. Every method either completes (and is durable once it returns) or throws a
 * `TalkenError` (`not_found`, `conflict`, `quota_exceeded`, `storage_full`, `storage_failed`,
 * `closed`, `invalid_argument`).
 */
export interface Store {
  // identity -----------------------------------------------------------------------------------
  getIdentity(): StoredIdentity | undefined
  /** Sets or replaces the profile; replacing with a different account key is a `conflict`. */
  setIdentity(identity: StoredIdentity): void

  // contacts -----------------------------------------------------------------------------------
  /** Inserts or replaces the contact with this ID. */
  putContact(contact: Contact): void
  getContact(id: string): Contact | undefined
  /** All contacts, ordered by name then ID. */
  listContacts(): Contact[]
  /** Returns false when there was no such contact. */
  removeContact(id: string): boolean

  // messages -----------------------------------------------------------------------------------
  /**
   * Inserts a message. Returns false, changing nothing, when a message with this ID exists already
   * (this is how the exactly-once rule is kept across restarts).
   */
  addMessage(message: MessageRecord): boolean
  getMessage(id: string): MessageRecord | undefined
  /** Throws `not_found` for an unknown ID. */
  setMessageState(id: string, state: DeliveryState, at: number, reason?: string): void
  /** A conversation's messages, oldest first; `before` (exclusive, createdAt) pages backwards. */
  listMessages(conversation: string, options?: { limit?: number; before?: number }): MessageRecord[]

  // outbox -------------------------------------------------------------------------------------
  /** Inserts or replaces the outbox entry for this message. */
  putOutbox(entry: OutboxEntry): void
  getOutbox(messageId: string): OutboxEntry | undefined
  /** Entries with `nextAttemptAt <= now`, earliest first. */
  listOutboxDue(now: number, limit?: number): OutboxEntry[]
  /** Returns false when there was no such entry. */
  removeOutbox(messageId: string): boolean
  outboxSize(): number

  // custody ------------------------------------------------------------------------------------
  /**
   * Takes custody of an envelope. Replaces an entry with the same ID (its bytes leave the quota
   * first). Throws `quota_exceeded` when the per-origin or total byte quota would be exceeded.
   */
  putCustody(entry: CustodyEntry): void
  getCustody(messageId: string): CustodyEntry | undefined
  /** Entries, oldest first; only those for `destination` when given. */
  listCustody(options?: { destination?: Uint8Array; limit?: number }): CustodyEntry[]
  /** Returns false when there was no such entry. */
  removeCustody(messageId: string): boolean
  /** Removes entries with `expiresAt <= now`; returns how many. */
  expireCustody(now: number): number
  /** Usage in total, or for one origin. */
  custodyUsage(origin?: string): CustodyUsage
  readonly custodyQuota: CustodyQuota

  // peers --------------------------------------------------------------------------------------
  /**
   * Records that a peer was seen, optionally at an address (which resets that address's failures).
   * Bounded, since any peer on the network can make us note it: a peer keeps its
   * {@link MAX_PEER_ADDRESSES} most recently seen addresses, and the store its {@link MAX_PEERS}
   * most recently seen peers (ties: the lower address or ID stays); the rest are forgotten.
   */
  notePeer(peerId: string, seenAt: number, address?: string): void
  /** Counts a failed dial of one address. */
  noteAddressFailure(peerId: string, address: string): void
  getPeer(peerId: string): PeerRecord | undefined
  /** Peers, most recently seen first. */
  listPeers(limit?: number): PeerRecord[]
  removePeer(peerId: string): boolean

  // small key-value state for later layers ----------------------------------------------------
  kvGet(namespace: string, key: string): Uint8Array | undefined
  kvSet(namespace: string, key: string, value: Uint8Array): void
  kvDelete(namespace: string, key: string): boolean
  /** All entries of a namespace, ordered by key. */
  kvList(namespace: string): Array<[string, Uint8Array]>

  // lifecycle ----------------------------------------------------------------------------------
  /** Runs `fn` atomically: all of its writes land, or none (when it throws). Nested calls join the outer one. */
  transaction<T>(fn: () => T): T
  /**
   * Runs `fn` if the transaction under way is undone instead of committed: when it throws, or
   * when a transaction it is nested in does (nested calls undo only their own part, like SQLite
   * savepoints). For state kept in memory beside the store (caches, announcements), which must
   * not outlive writes that did not land. Outside a transaction it does nothing. `fn` must not
   * use the store; callbacks run newest first.
   */
  onRollback(fn: () => void): void
  /** Idempotent. Any later call throws `closed`. */
  close(): void
}

/**
 * Runs the undo callbacks of `log` from `mark` on, newest first, and takes them out of it. One
 * that throws stops none of the others (and is not run again by an outer transaction): the
 * transaction's own error is what its caller gets.
 */
export function undoAll(log: Array<() => void>, mark: number): void {
  const undo = log.splice(mark)
  for (let i = undo.length - 1; i >= 0; i--) {
    try {
      undo[i]!()
    } catch {
      // see above
    }
  }
}
