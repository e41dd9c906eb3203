/**
 * The SQLite schema, as an ordered list of migration steps (see docs/storage.md).
 *
 * `PRAGMA user_version` holds how many steps a database has applied. Opening runs the missing steps
 * in order, each in its own transaction together with its user_version bump, so a crash leaves the
 * database at a step boundary. Steps are append-only: a released step is never edited, a change is
 * a new step. A database whose user_version is newer than this list was written by a newer Talken
 * and is refused (`unsupported_version`) rather than guessed at.
 */
import type Database from 'better-sqlite3'
import { TalkenError } from '../errors.ts'

/** `PRAGMA application_id` of a Talken database: the ASCII bytes "TLKN". */
export const TALKEN_APPLICATION_ID = 0x544c4b4e

/** Migration steps; step `i` takes user_version `i` to `i + 1`. */
export const MIGRATIONS: readonly string[] = [
  // 1: the initial schema. STRICT tables: a wrong type is an error, never a silent coercion.
  `
  CREATE TABLE identity (
    slot        INTEGER PRIMARY KEY CHECK (slot = 0),
    account_key BLOB    NOT NULL,
    name        TEXT    NOT NULL,
    card        BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE contacts (
    id          TEXT    PRIMARY KEY,
    account_key BLOB    NOT NULL,
    name        TEXT    NOT NULL,
    card        BLOB    NOT NULL,
    verified    INTEGER NOT NULL CHECK (verified IN (0, 1)),
    added_at    INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX contacts_by_name ON contacts (name, id);

  CREATE TABLE messages (
    id           TEXT    PRIMARY KEY,
    conversation TEXT    NOT NULL,
    direction    TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    body         BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    state        TEXT    NOT NULL,
    state_reason TEXT,
    updated_at   INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX messages_by_conversation ON messages (conversation, created_at, id);

  CREATE TABLE outbox (
    message_id      TEXT    PRIMARY KEY,
    envelope        BLOB    NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX outbox_due ON outbox (next_attempt_at, message_id);

  CREATE TABLE custody (
    message_id  TEXT    PRIMARY KEY,
    origin      TEXT    NOT NULL,
    destination BLOB    NOT NULL,
    envelope    BLOB    NOT NULL,
    size        INTEGER NOT NULL GENERATED ALWAYS AS (length(envelope)) STORED,
    copies      INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    received_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX custody_by_received ON custody (received_at, message_id);
  CREATE INDEX custody_by_destination ON custody (destination, received_at, message_id);
  CREATE INDEX custody_by_expiry ON custody (expires_at);

  -- Running custody usage, kept by triggers in the same transaction as the change, so quota checks
  -- are two primary-key reads and stay right across crashes and restarts.
  CREATE TABLE custody_usage (
    origin TEXT    PRIMARY KEY,
    bytes  INTEGER NOT NULL,
    count  INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
  CREATE TABLE custody_total (
    slot  INTEGER PRIMARY KEY CHECK (slot = 0),
    bytes INTEGER NOT NULL,
    count INTEGER NOT NULL
  ) STRICT;
  INSERT INTO custody_total (slot, bytes, count) VALUES (0, 0, 0);

  CREATE TRIGGER custody_added AFTER INSERT ON custody BEGIN
    INSERT INTO custody_usage (origin, bytes, count) VALUES (NEW.origin, NEW.size, 1)
      ON CONFLICT (origin) DO UPDATE SET bytes = bytes + excluded.bytes, count = count + 1;
    UPDATE custody_total SET bytes = bytes + NEW.size, count = count + 1;
  END;
  CREATE TRIGGER custody_removed AFTER DELETE ON custody BEGIN
    UPDATE custody_usage SET bytes = bytes - OLD.size, count = count - 1 WHERE origin = OLD.origin;
    DELETE FROM custody_usage WHERE origin = OLD.origin AND count = 0;
    UPDATE custody_total SET bytes = bytes - OLD.size, count = count - 1;
  END;
  CREATE TRIGGER custody_changed AFTER UPDATE OF origin, envelope ON custody BEGIN
    UPDATE custody_usage SET bytes = bytes - OLD.size, count = count - 1 WHERE origin = OLD.origin;
    DELETE FROM custody_usage WHERE origin = OLD.origin AND count = 0;
    INSERT INTO custody_usage (origin, bytes, count) VALUES (NEW.origin, NEW.size, 1)
      ON CONFLICT (origin) DO UPDATE SET bytes = bytes + excluded.bytes, count = count + 1;
    UPDATE custody_total SET bytes = bytes - OLD.size + NEW.size;
  END;

  CREATE TABLE peers (
    peer_id   TEXT    PRIMARY KEY,
    last_seen INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX peers_by_last_seen ON peers (last_seen DESC, peer_id);
  CREATE TABLE peer_addresses (
    peer_id   TEXT    NOT NULL REFERENCES peers (peer_id) ON DELETE CASCADE,
    address   TEXT    NOT NULL,
    last_seen INTEGER NOT NULL,
    failures  INTEGER NOT NULL,
    PRIMARY KEY (peer_id, address)
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE kv (
    namespace TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     BLOB NOT NULL,
    PRIMARY KEY (namespace, key)
  ) STRICT, WITHOUT ROWID;
  `,
  // 2: incoming messages the application could not open are no longer recorded (their IDs are
  // not bound to their payloads: a record would refuse the genuine copy); forget those recorded.
  `DELETE FROM messages WHERE direction = 'in' AND state = 'failed';`,
]

/**
 * Refuses, without writing anything, a database this Talken must not touch: `storage_failed` for a
 * SQLite database that is not Talken's, `unsupported_version` for one from a newer Talken.
 */
export function checkDatabase(db: Database.Database, steps: readonly string[] = MIGRATIONS): number {
  const version = db.pragma('user_version', { simple: true }) as number
  const appId = db.pragma('application_id', { simple: true }) as number
  const tables = db.prepare('SELECT count(*) AS n FROM sqlite_schema').get() as { n: number }
  if (appId !== TALKEN_APPLICATION_ID && (appId !== 0 || tables.n > 0)) {
    throw new TalkenError('storage_failed', 'the file is a SQLite database, but not a Talken database')
  }
  if (version > steps.length) {
    throw new TalkenError(
      'unsupported_version',
      `the database has schema version ${version}; this Talken knows versions up to ${steps.length}`,
      { details: { version, known: steps.length } },
    )
  }
  return version
}

/** Brings `db` up to the newest schema, after {@link checkDatabase}; each step is one transaction. */
export function migrate(db: Database.Database, steps: readonly string[] = MIGRATIONS): void {
  for (let i = checkDatabase(db, steps); i < steps.length; i++) {
    db.transaction(() => {
      db.exec(steps[i]!)
      db.pragma(`application_id = ${TALKEN_APPLICATION_ID}`)
      db.pragma(`user_version = ${i + 1}`)
    })()
  }
}
