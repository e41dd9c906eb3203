import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { setImmediate as turn } from 'node:timers/promises'
import Database from 'better-sqlite3'
import { CHECKPOINT_EVERY, Checkpointer, FALLBACK_PAGES } from '../../src/store/checkpointer.ts'
import { openSqliteStore } from '../../src/store/sqlite-store.ts'
import { until } from '../helpers/nodes.ts'
import { messageRecord } from '../helpers/records.ts'

const dir = mkdtempSync(join(tmpdir(), 'talken-checkpointer-'))
after(() => rmSync(dir, { recursive: true, force: true }))
let files = 0
const freshPath = () => join(dir, `store-${++files}.db`)

const message = messageRecord

const size = (path: string) => (existsSync(path) ? statSync(path).size : 0)

describe('sqlite store: WAL checkpoints on a worker thread', () => {
  it('copies committed pages into the database file while the writer goes on', async () => {
    const path = freshPath()
    const store = openSqliteStore({ path })
    try {
      const empty = size(path)
      // Three requests' worth of commits of about two pages each: far below the writer's own
      // automatic checkpoint, so only the worker can have moved them into the database file.
      for (let n = 1; n <= 3 * CHECKPOINT_EVERY; n++) {
        store.addMessage(message(n, 6000))
        if (n % 8 === 0) await turn()
      }
      await until(() => size(path) > empty + 3 * CHECKPOINT_EVERY * 6000, 10_000, 'the checkpoint')
      assert.equal(store.listMessages('alice').length, 3 * CHECKPOINT_EVERY)
    } finally {
      store.close()
    }
    const again = openSqliteStore({ path })
    try {
      assert.equal(again.listMessages('alice').length, 3 * CHECKPOINT_EVERY)
    } finally {
      again.close()
    }
  })

  it('keeps the WAL within its bound under sustained writes', async () => {
    const path = freshPath()
    const store = openSqliteStore({ path })
    let largest = 0
    try {
      // Past the bound twice over, with the event loop turning as it does between a node's steps.
      const commits = 2 * FALLBACK_PAGES
      for (let n = 1; n <= commits; n++) {
        store.transaction(() => {
          store.addMessage(message(n, 1500))
          store.setMessageState(message(n, 0).id, 'sent', n + 1)
        })
        if (n % 16 === 0) {
          largest = Math.max(largest, size(`${path}-wal`))
          await turn()
        }
      }
      assert.equal(store.listMessages('alice', { limit: 1 }).length, 1)
    } finally {
      store.close()
    }
    // A WAL frame is a 24-byte header and a page. The writer checkpoints once a commit leaves the
    // WAL past the bound, unless the worker is in the middle of one (then at a later commit):
    // while the worker starts (tens of milliseconds) and runs its first, long checkpoint, the log
    // can overshoot, but not to twice the bound.
    assert.ok(largest > 0)
    const bound = 2 * FALLBACK_PAGES * (4096 + 24) + 32
    assert.ok(largest <= bound, `WAL grew to ${largest} bytes, over ${bound}`)
  })

  it('closes its connection before the store does, so the WAL is folded in and removed by the time close returns', async () => {
    const path = freshPath()
    const store = openSqliteStore({ path })
    const empty = size(path)
    for (let n = 1; n <= 2 * CHECKPOINT_EVERY; n++) {
      store.addMessage(message(n, 6000))
      await turn()
    }
    // The worker has its connection open: it has copied pages into the database file.
    await until(() => size(path) > empty + CHECKPOINT_EVERY * 6000, 10_000, 'a checkpoint')
    store.close()
    // SQLite removes the WAL when the last connection to the file closes: close waits for the
    // worker's, so the WAL is gone at once (a process that exits right after keeps nothing).
    assert.equal(existsSync(`${path}-wal`), false)
    const again = openSqliteStore({ path })
    try {
      assert.equal(again.listMessages('alice').length, 2 * CHECKPOINT_EVERY)
    } finally {
      again.close()
    }
  })
  it('empties the WAL once the writer is idle, so that overwritten secrets do not stay in it', async () => {
    const path = freshPath()
    const db = new Database(path)
    db.pragma('journal_mode = WAL')
    db.pragma('secure_delete = ON')
    db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)')
    const checkpointer = new Checkpointer(db, path, 'NORMAL', 200)
    try {
      const put = db.prepare('INSERT OR REPLACE INTO kv VALUES (?, ?)')
      const secret = randomBytes(32)
      // As a session state is: written, then overwritten; then more commits than one
      // checkpoint request's worth, so that the worker has copied (and restarted) the log.
      put.run('session', secret)
      checkpointer.committed()
      put.run('session', Buffer.alloc(32))
      checkpointer.committed()
      for (let n = 0; n < 3 * CHECKPOINT_EVERY; n++) {
        put.run(`filler-${n % 8}`, randomBytes(2000))
        checkpointer.committed()
        if (n % 8 === 0) await turn()
      }
      await until(() => size(`${path}-wal`) === 0, 10_000, 'the WAL emptied')
      assert.equal(
        readFileSync(path).includes(secret),
        false,
        'the overwritten value is in the database file',
      )
      assert.deepEqual(db.prepare('SELECT v FROM kv WHERE k = ?').get('session'), { v: Buffer.alloc(32) })
    } finally {
      checkpointer.close()
      db.close()
    }
  })
})
