/**
 * Every SQL statement the SQLite store runs, prepared once when the store opens (the schema is in
 * sqlite-migrations.ts). Orderings spell out their tie-breaks so both stores list identically;
 * `LIMIT -1` means no limit.
 */
import type Database from 'better-sqlite3'
import type { Contact, CustodyEntry, MessageRecord, OutboxEntry, StoredIdentity } from './store.ts'

/** A prepared statement returning rows keyed by column name. */
export type Statement = Database.Statement<unknown[], Record<string, unknown>>

const MESSAGE_COLUMNS = 'id, conversation, direction, body, created_at, state, state_reason, updated_at'
const CUSTODY_COLUMNS = 'message_id, origin, destination, envelope, copies, expires_at, received_at'
const OUTBOX_COLUMNS = 'message_id, envelope, attempts, next_attempt_at, expires_at'

const SQL = {
  getIdentity: 'SELECT account_key, name, card, created_at FROM identity WHERE slot = 0',
  setIdentity: `INSERT INTO identity (slot, account_key, name, card, created_at) VALUES (0, ?, ?, ?, ?)
    ON CONFLICT (slot) DO UPDATE SET account_key = excluded.account_key, name = excluded.name,
      card = excluded.card, created_at = excluded.created_at`,

  putContact: `INSERT INTO contacts (id, account_key, name, card, verified, added_at) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET account_key = excluded.account_key, name = excluded.name,
      card = excluded.card, verified = excluded.verified, added_at = excluded.added_at`,
  getContact: 'SELECT * FROM contacts WHERE id = ?',
  listContacts: 'SELECT * FROM contacts ORDER BY name, id',
  removeContact: 'DELETE FROM contacts WHERE id = ?',

  // ON CONFLICT DO NOTHING, not INSERT OR IGNORE: only a duplicate ID is ignored, never a bad row.
  addMessage: `INSERT INTO messages (${MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO NOTHING`,
  getMessage: `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE id = ?`,
  setMessageState: 'UPDATE messages SET state = ?, state_reason = ?, updated_at = ? WHERE id = ?',
  // The newest `limit` messages (before a bound), returned oldest first.
  listMessages: `SELECT * FROM (SELECT ${MESSAGE_COLUMNS} FROM messages WHERE conversation = ?
    ORDER BY created_at DESC, id DESC LIMIT ?) ORDER BY created_at, id`,
  listMessagesBefore: `SELECT * FROM (SELECT ${MESSAGE_COLUMNS} FROM messages
    WHERE conversation = ? AND created_at < ? ORDER BY created_at DESC, id DESC LIMIT ?) ORDER BY created_at, id`,

  putOutbox: `INSERT INTO outbox (${OUTBOX_COLUMNS}) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (message_id) DO UPDATE SET envelope = excluded.envelope, attempts = excluded.attempts,
      next_attempt_at = excluded.next_attempt_at, expires_at = excluded.expires_at`,
  getOutbox: `SELECT ${OUTBOX_COLUMNS} FROM outbox WHERE message_id = ?`,
  listOutboxDue: `SELECT ${OUTBOX_COLUMNS} FROM outbox WHERE next_attempt_at <= ?
    ORDER BY next_attempt_at, message_id LIMIT ?`,
  removeOutbox: 'DELETE FROM outbox WHERE message_id = ?',
  outboxSize: 'SELECT count(*) AS n FROM outbox',

  // Updating origin/envelope fires the custody_changed trigger, which moves the bytes in the usage.
  putCustody: `INSERT INTO custody (${CUSTODY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (message_id) DO UPDATE SET origin = excluded.origin, destination = excluded.destination,
      envelope = excluded.envelope, copies = excluded.copies, expires_at = excluded.expires_at,
      received_at = excluded.received_at`,
  getCustody: `SELECT ${CUSTODY_COLUMNS} FROM custody WHERE message_id = ?`,
  custodyMeta: 'SELECT origin, size FROM custody WHERE message_id = ?',
  listCustody: `SELECT ${CUSTODY_COLUMNS} FROM custody ORDER BY received_at, message_id LIMIT ?`,
  listCustodyFor: `SELECT ${CUSTODY_COLUMNS} FROM custody WHERE destination = ?
    ORDER BY received_at, message_id LIMIT ?`,
  removeCustody: 'DELETE FROM custody WHERE message_id = ?',
  expireCustody: 'DELETE FROM custody WHERE expires_at <= ?',
  usageOf: 'SELECT bytes, count FROM custody_usage WHERE origin = ?',
  usageTotal: 'SELECT bytes, count FROM custody_total WHERE slot = 0',

  notePeer: `INSERT INTO peers (peer_id, last_seen) VALUES (?, ?)
    ON CONFLICT (peer_id) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)`,
  noteAddress: `INSERT INTO peer_addresses (peer_id, address, last_seen, failures) VALUES (?, ?, ?, 0)
    ON CONFLICT (peer_id, address) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen), failures = 0`,
  noteAddressFailure: 'UPDATE peer_addresses SET failures = failures + 1 WHERE peer_id = ? AND address = ?',
  forgetOldAddresses: `DELETE FROM peer_addresses WHERE peer_id = ? AND address NOT IN
    (SELECT address FROM peer_addresses WHERE peer_id = ? ORDER BY last_seen DESC, address LIMIT ?)`,
  forgetOldPeers: `DELETE FROM peers WHERE peer_id IN
    (SELECT peer_id FROM peers ORDER BY last_seen DESC, peer_id LIMIT -1 OFFSET ?)`,
  getPeer: 'SELECT peer_id, last_seen FROM peers WHERE peer_id = ?',
  listPeers: 'SELECT peer_id, last_seen FROM peers ORDER BY last_seen DESC, peer_id LIMIT ?',
  peerAddresses: `SELECT address, last_seen, failures FROM peer_addresses WHERE peer_id = ?
    ORDER BY last_seen DESC, address`,
  removePeer: 'DELETE FROM peers WHERE peer_id = ?',

  kvGet: 'SELECT value FROM kv WHERE namespace = ? AND key = ?',
  kvSet: `INSERT INTO kv (namespace, key, value) VALUES (?, ?, ?)
    ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value`,
  kvDelete: 'DELETE FROM kv WHERE namespace = ? AND key = ?',
  kvList: 'SELECT key, value FROM kv WHERE namespace = ? ORDER BY key',
} as const

/** The store's prepared statements, by name. */
export type Statements = { readonly [K in keyof typeof SQL]: Statement }

/** Prepares every statement of the store against an open, migrated database. */
export function prepareStatements(db: Database.Database): Statements {
  const out: Partial<Record<keyof typeof SQL, Statement>> = {}
  for (const name of Object.keys(SQL) as Array<keyof typeof SQL>) out[name] = db.prepare(SQL[name])
  return out as Statements
}

/** better-sqlite3 returns Buffers; callers get plain Uint8Arrays that own their memory. */
export function bytes(b: Uint8Array): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength
    ? new Uint8Array(b.buffer, 0, b.byteLength)
    : new Uint8Array(b) // a copy: a pooled slice must not expose its neighbours
}

/** Decodes an identity row. */
export function identityOf(r: Record<string, unknown>): StoredIdentity {
  return {
    accountKey: bytes(r.account_key as Uint8Array),
    name: r.name as string,
    card: bytes(r.card as Uint8Array),
    createdAt: r.created_at as number,
  }
}

/** Decodes a contact row. */
export function contactOf(r: Record<string, unknown>): Contact {
  return {
    id: r.id as string,
    accountKey: bytes(r.account_key as Uint8Array),
    name: r.name as string,
    card: bytes(r.card as Uint8Array),
    verified: r.verified === 1,
    addedAt: r.added_at as number,
  }
}

/** Decodes a message row. */
export function messageOf(r: Record<string, unknown>): MessageRecord {
  const m = {
    id: r.id as string,
    conversation: r.conversation as string,
    direction: r.direction as MessageRecord['direction'],
    body: bytes(r.body as Uint8Array),
    createdAt: r.created_at as number,
    state: r.state as MessageRecord['state'],
    updatedAt: r.updated_at as number,
  }
  return r.state_reason === null ? m : { ...m, stateReason: r.state_reason as string }
}

/** Decodes an outbox entry row. */
export function outboxOf(r: Record<string, unknown>): OutboxEntry {
  return {
    messageId: r.message_id as string,
    envelope: bytes(r.envelope as Uint8Array),
    attempts: r.attempts as number,
    nextAttemptAt: r.next_attempt_at as number,
    expiresAt: r.expires_at as number,
  }
}

/** Decodes a custody entry row. */
export function custodyOf(r: Record<string, unknown>): CustodyEntry {
  return {
    messageId: r.message_id as string,
    origin: r.origin as string,
    destination: bytes(r.destination as Uint8Array),
    envelope: bytes(r.envelope as Uint8Array),
    copies: r.copies as number,
    expiresAt: r.expires_at as number,
    receivedAt: r.received_at as number,
  }
}
