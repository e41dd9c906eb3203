/**
 * The embedded default {@link Store}: one SQLite file through better-sqlite3 (see docs/storage.md).
 *
 * WAL journal, `synchronous=NORMAL` (or FULL), foreign keys on, a busy timeout; the file and its
 * -wal/-shm companions are mode 0600. Every statement is prepared once at open. Each method is one
 * implicit transaction (or joins the caller's `transaction()`), so when it returns the write is in
 * the WAL and survives a killed process. Checkpoints run on a worker thread ({@link Checkpointer}).
 */
import { chmodSync, closeSync, existsSync, openSync } from 'node:fs'
import Database from 'better-sqlite3'
import { TalkenError } from '../errors.ts'
import { Checkpointer } from './checkpointer.ts'
import { checkDatabase, migrate } from './sqlite-migrations.ts'
import {
  bytes,
  contactOf,
  custodyOf,
  identityOf,
  messageOf,
  outboxOf,
  prepareStatements,
} from './sqlite-statements.ts'
import {
  type CustodyQuota,
  DEFAULT_CUSTODY_QUOTA,
  MAX_PEER_ADDRESSES,
  MAX_PEERS,
  type PeerRecord,
  type Store,
  undoAll,
} from './store.ts'
import * as v from './validate.ts'

/** Options for {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /** The database file; created (mode 0600) when missing. `:memory:` opens a private in-memory database. */
  readonly path: string
  /** Custody byte quotas; {@link DEFAULT_CUSTODY_QUOTA} when absent. */
  readonly custodyQuota?: CustodyQuota
  /**
   * `normal` (default): WAL + synchronous=NORMAL, survives a killed process; a power loss may drop
   * the last commits. `full`: synchronous=FULL, every commit is fsynced before the call returns.
   */
  readonly durability?: 'normal' | 'full'
  /**
   * Test-only: caps the database at this many pages (`PRAGMA max_page_count`), so a test can make
   * SQLite really report SQLITE_FULL. Leave unset in production.
   */
  readonly maxPageCount?: number
}

/** How long a write waits for another connection's lock before failing, in milliseconds. */
const BUSY_TIMEOUT_MS = 5000

/** Maps whatever better-sqlite3 threw to a TalkenError; TalkenErrors pass through unchanged. */
function storageError(err: unknown): TalkenError {
  if (err instanceof TalkenError) return err
  if (err instanceof Database.SqliteError) {
    if (err.code === 'SQLITE_FULL') {
      return new TalkenError('storage_full', 'the disk (or the database size limit) is full', { cause: err })
    }
    if (err.code === 'SQLITE_NOTADB' || err.code.startsWith('SQLITE_CORRUPT')) {
      return new TalkenError(
        'storage_failed',
        `the database file is corrupt or not a database: ${err.message}`,
        {
          cause: err,
          details: { sqlite: err.code },
        },
      )
    }
    return new TalkenError('storage_failed', `storage failed: ${err.message}`, {
      cause: err,
      details: { sqlite: err.code },
    })
  }
  if (err instanceof TypeError && /not open/.test(err.message)) {
    return new TalkenError('closed', 'the store is closed', { cause: err })
  }
  const message = err instanceof Error ? err.message : String(err)
  return new TalkenError('storage_failed', `storage failed: ${message}`, { cause: err })
}

function createFile(path: string): void {
  try {
    closeSync(openSync(path, 'a', 0o600))
    chmodSync(path, 0o600)
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    throw new TalkenError('storage_failed', `cannot create the database file ${path}: ${message}`, {
      cause: err,
    })
  }
}

function openDatabase(options: SqliteStoreOptions): Database.Database {
  const { path } = options
  const memory = path === ':memory:'
  if (!memory) createFile(path)
  let db: Database.Database | undefined
  try {
    db = new Database(path, { timeout: BUSY_TIMEOUT_MS })
    checkDatabase(db) // before any pragma writes: a foreign or newer database is left as it was
    const mode = db.pragma('journal_mode = WAL', { simple: true })
    if (!memory && mode !== 'wal') throw new TalkenError('storage_failed', `cannot use WAL mode on ${path}`)
    db.pragma(`synchronous = ${options.durability === 'full' ? 'FULL' : 'NORMAL'}`)
    db.pragma('foreign_keys = ON')
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
    // Deleted content is overwritten, not left in free pages: used one-time prekeys, message keys
    // and the chain keys a session moved past are gone from the file, as forward secrecy needs.
    db.pragma('secure_delete = ON')
    migrate(db)
    if (options.maxPageCount !== undefined) {
      v.checkCount(options.maxPageCount, 'maxPageCount')
      db.pragma(`max_page_count = ${options.maxPageCount}`)
    }
    if (!memory) {
      for (const suffix of ['-wal', '-shm']) if (existsSync(path + suffix)) chmodSync(path + suffix, 0o600)
    }
    return db
  } catch (err) {
    db?.close()
    const e = storageError(err)
    throw e.code === 'storage_failed' && !e.message.includes(path)
      ? new TalkenError('storage_failed', `cannot open ${path}: ${e.message}`, {
          cause: err,
          details: e.details,
        })
      : e
  }
}

/**
 * Opens (creating and migrating as needed) the SQLite store at `options.path`.
 *
 * @example
 * const store = openSqliteStore({ path: join(dataDir, 'talken.db') })
 * try { store.addMessage(message) } finally { store.close() }
 */
export function openSqliteStore(options: SqliteStoreOptions): Store {
  const custodyQuota = v.checkQuota(options.custodyQuota ?? DEFAULT_CUSTODY_QUOTA)
  const db = openDatabase(options)
  const q = prepareStatements(db)
  const synchronous = options.durability === 'full' ? 'FULL' : 'NORMAL'
  const checkpointer =
    options.path === ':memory:' ? undefined : new Checkpointer(db, options.path, synchronous)
  let closed = false
  /** Callbacks to run if the transaction under way is undone, newest last (see Store.onRollback). */
  let rollbacks: Array<() => void> | undefined
  /**
   * The failure after which SQLite rolled the whole transaction under way back by itself (it may,
   * on SQLITE_FULL or SQLITE_NOMEM). Until that transaction ends every write is refused with it:
   * run outside any transaction, a write would commit on its own, apart from what was undone.
   */
  let abortedBy: unknown

  /** Notes a failure inside a transaction that SQLite answered by rolling all of it back. */
  function noteAbort(err: unknown): void {
    if (rollbacks !== undefined && abortedBy === undefined && !db.inTransaction) abortedBy = err
  }

  // One wrapper, made once: better-sqlite3 turns nested calls into savepoints, so they join.
  const atomically = db.transaction((fn: () => unknown) => {
    const result = fn()
    if (typeof (result as { then?: unknown } | null)?.then === 'function') {
      throw new TalkenError('invalid_argument', 'a transaction function cannot return a promise')
    }
    return result
  })

  /** Runs one store operation: refuses when closed, maps every failure to a TalkenError. */
  function run<T>(fn: () => T): T {
    if (closed) throw new TalkenError('closed', 'the store is closed')
    try {
      return fn()
    } catch (err) {
      noteAbort(err)
      throw storageError(err)
    }
  }

  /** {@link run} for an operation that writes: outside a transaction, its commit is counted. */
  function write<T>(fn: () => T): T {
    if (abortedBy !== undefined) throw storageError(abortedBy)
    const result = run(fn)
    if (rollbacks === undefined) checkpointer?.committed()
    return result
  }

  function peerOf(r: Record<string, unknown>): PeerRecord {
    const peerId = r.peer_id as string
    const addresses = q.peerAddresses.all(peerId).map((a) => ({
      address: a.address as string,
      lastSeen: a.last_seen as number,
      failures: a.failures as number,
    }))
    return { peerId, lastSeen: r.last_seen as number, addresses }
  }

  const optional = <T>(row: Record<string, unknown> | undefined, of: (r: Record<string, unknown>) => T) =>
    row === undefined ? undefined : of(row)
  const noLimit = (limit: number | undefined) => limit ?? -1

  return {
    custodyQuota,

    getIdentity: () => run(() => optional(q.getIdentity.get(), identityOf)),
    setIdentity: (identity) =>
      write(() => {
        v.checkIdentity(identity)
        atomically.immediate(() => {
          const cur = q.getIdentity.get()
          if (cur !== undefined && !Buffer.from(identity.accountKey).equals(cur.account_key as Uint8Array)) {
            throw new TalkenError(
              'conflict',
              'the store already holds an identity with a different account key',
            )
          }
          q.setIdentity.run(identity.accountKey, identity.name, identity.card, identity.createdAt)
        })
      }),

    putContact: (c) =>
      write(() => {
        v.checkContact(c)
        q.putContact.run(c.id, c.accountKey, c.name, c.card, c.verified ? 1 : 0, c.addedAt)
      }),
    getContact: (id) => run(() => optional(q.getContact.get(id), contactOf)),
    listContacts: () => run(() => q.listContacts.all().map(contactOf)),
    removeContact: (id) => write(() => q.removeContact.run(id).changes > 0),

    addMessage: (m) =>
      write(() => {
        v.checkMessage(m)
        const reason = m.stateReason ?? null
        const r = q.addMessage.run(
          m.id,
          m.conversation,
          m.direction,
          m.body,
          m.createdAt,
          m.state,
          reason,
          m.updatedAt,
        )
        return r.changes > 0
      }),
    getMessage: (id) => run(() => optional(q.getMessage.get(id), messageOf)),
    setMessageState: (id, state, at, reason) =>
      write(() => {
        v.checkState(state)
        v.checkInt(at, 'at')
        v.checkReason(reason)
        if (q.setMessageState.run(state, reason ?? null, at, id).changes === 0) {
          throw new TalkenError('not_found', `no message ${id}`)
        }
      }),
    listMessages: (conversation, options = {}) =>
      run(() => {
        const { limit, before } = options
        v.checkLimit(limit)
        if (before === undefined) return q.listMessages.all(conversation, noLimit(limit)).map(messageOf)
        v.checkBound(before, 'before')
        return q.listMessagesBefore.all(conversation, before, noLimit(limit)).map(messageOf)
      }),

    putOutbox: (e) =>
      write(() => {
        v.checkOutbox(e)
        q.putOutbox.run(e.messageId, e.envelope, e.attempts, e.nextAttemptAt, e.expiresAt)
      }),
    getOutbox: (id) => run(() => optional(q.getOutbox.get(id), outboxOf)),
    listOutboxDue: (now, limit) =>
      run(() => {
        v.checkBound(now, 'now')
        v.checkLimit(limit)
        return q.listOutboxDue.all(now, noLimit(limit)).map(outboxOf)
      }),
    removeOutbox: (id) => write(() => q.removeOutbox.run(id).changes > 0),
    outboxSize: () => run(() => q.outboxSize.get()!.n as number),

    putCustody: (e) =>
      write(() => {
        v.checkCustody(e)
        const size = e.envelope.length
        atomically.immediate(() => {
          const old = q.custodyMeta.get(e.messageId) as { origin: string; size: number } | undefined
          const usage = {
            origin: (q.usageOf.get(e.origin)?.bytes as number | undefined) ?? 0,
            total: q.usageTotal.get()!.bytes as number,
          }
          const fit = v.custodyFits(custodyQuota, size, usage, old, e.origin)
          if (fit !== 'ok') throw v.quotaError(fit, e.origin, size)
          q.putCustody.run(
            e.messageId,
            e.origin,
            e.destination,
            e.envelope,
            e.copies,
            e.expiresAt,
            e.receivedAt,
          )
        })
      }),
    getCustody: (id) => run(() => optional(q.getCustody.get(id), custodyOf)),
    listCustody: (options = {}) =>
      run(() => {
        const { destination, limit } = options
        v.checkLimit(limit)
        if (destination === undefined) return q.listCustody.all(noLimit(limit)).map(custodyOf)
        v.checkBytes(destination, 'destination')
        return q.listCustodyFor.all(destination, noLimit(limit)).map(custodyOf)
      }),
    removeCustody: (id) => write(() => q.removeCustody.run(id).changes > 0),
    expireCustody: (now) =>
      write(() => {
        v.checkBound(now, 'now')
        return q.expireCustody.run(now).changes
      }),
    custodyUsage: (origin) =>
      run(() => {
        const row = origin === undefined ? q.usageTotal.get() : q.usageOf.get(origin)
        return {
          bytes: (row?.bytes as number | undefined) ?? 0,
          count: (row?.count as number | undefined) ?? 0,
        }
      }),

    notePeer: (peerId, seenAt, address) =>
      write(() => {
        v.checkText(peerId, 'peerId')
        v.checkInt(seenAt, 'seenAt')
        if (address !== undefined) v.checkText(address, 'address')
        atomically.immediate(() => {
          q.notePeer.run(peerId, seenAt)
          if (address !== undefined) {
            q.noteAddress.run(peerId, address, seenAt)
            q.forgetOldAddresses.run(peerId, peerId, MAX_PEER_ADDRESSES)
          }
          q.forgetOldPeers.run(MAX_PEERS)
        })
      }),
    noteAddressFailure: (peerId, address) =>
      write(() => {
        if (q.noteAddressFailure.run(peerId, address).changes === 0) {
          throw new TalkenError('not_found', `no address ${address} recorded for peer ${peerId}`)
        }
      }),
    getPeer: (peerId) => run(() => optional(q.getPeer.get(peerId), peerOf)),
    listPeers: (limit) =>
      run(() => {
        v.checkLimit(limit)
        return q.listPeers.all(noLimit(limit)).map(peerOf)
      }),
    removePeer: (peerId) => write(() => q.removePeer.run(peerId).changes > 0),

    kvGet: (namespace, key) =>
      run(() => {
        const row = q.kvGet.get(namespace, key)
        return row === undefined ? undefined : bytes(row.value as Uint8Array)
      }),
    kvSet: (namespace, key, value) =>
      write(() => {
        v.checkString(namespace, 'namespace')
        v.checkString(key, 'key')
        v.checkBytes(value, 'value')
        q.kvSet.run(namespace, key, value)
      }),
    kvDelete: (namespace, key) => write(() => q.kvDelete.run(namespace, key).changes > 0),
    kvList: (namespace) =>
      run(() =>
        q.kvList
          .all(namespace)
          .map((r): [string, Uint8Array] => [r.key as string, bytes(r.value as Uint8Array)]),
      ),

    transaction<T>(fn: () => T): T {
      if (closed) throw new TalkenError('closed', 'the store is closed')
      const outer = rollbacks === undefined
      const log = rollbacks ?? []
      const mark = log.length
      rollbacks = log
      try {
        if (abortedBy !== undefined) throw abortedBy
        const result = atomically.immediate(fn) as T
        if (outer) checkpointer?.committed()
        return result
      } catch (err) {
        noteAbort(err)
        // Undone: this transaction's part (nested ones that committed into it included).
        undoAll(log, mark)
        // What undid it all, rather than what failed after (a commit with no transaction left).
        const cause = outer && abortedBy !== undefined ? abortedBy : err
        // The caller's own errors pass through untouched; only SQLite's failures are translated.
        if (
          cause instanceof Database.SqliteError ||
          cause instanceof TalkenError ||
          (cause instanceof TypeError && /not open/.test(cause.message))
        ) {
          throw cause instanceof TalkenError ? cause : storageError(cause)
        }
        throw cause
      } finally {
        if (outer) {
          rollbacks = undefined
          abortedBy = undefined
        }
      }
    },

    onRollback(fn) {
      if (closed) throw new TalkenError('closed', 'the store is closed')
      rollbacks?.push(fn)
    },
    close() {
      if (closed) return
      closed = true
      checkpointer?.close()
      db.close()
    },
  }
}
