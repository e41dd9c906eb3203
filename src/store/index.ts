/**
 * Talken's storage: the {@link Store} interface and its two implementations, the embedded SQLite
 * store (the default on disk) and the in-memory store (tests, simulations, ephemeral nodes).
 */
export { createMemoryStore, type MemoryStoreOptions } from './memory-store.ts'
export { openSqliteStore, type SqliteStoreOptions } from './sqlite-store.ts'
export {
  type Contact,
  type CustodyEntry,
  type CustodyQuota,
  type CustodyUsage,
  DEFAULT_CUSTODY_QUOTA,
  DELIVERY_STATES,
  type DeliveryState,
  MAX_PEER_ADDRESSES,
  MAX_PEERS,
  type MessageRecord,
  type OutboxEntry,
  type PeerAddress,
  type PeerRecord,
  type Store,
  type StoredIdentity,
} from './store.ts'
