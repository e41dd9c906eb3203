import { strict as assert } from 'node:assert'
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import Database from 'better-sqlite3'
import fc from 'fast-check'
import { isTalkenError } from '../../src/errors.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'
import { MIGRATIONS, migrate, TALKEN_APPLICATION_ID } from '../../src/store/sqlite-migrations.ts'
import { bytes } from '../../src/store/sqlite-statements.ts'
import { openSqliteStore } from '../../src/store/sqlite-store.ts'
import type { Store } from '../../src/store/store.ts'
import { storeCompliance } from '../compliance/store.ts'
import { throwsCode } from '../helpers/errors.ts'
import { messageRecord } from '../helpers/records.ts'

const dir = mkdtempSync(join(tmpdir(), 'talken-sqlite-store-'))
after(() => rmSync(dir, { recursive: true, force: true }))
let files = 0
const freshPath = () => join(dir, `store-${++files}.db`)

storeCompliance('sqlite', (options) => openSqliteStore({ path: freshPath(), ...options }))

const message = messageRecord

const mode = (path: string) => statSync(path).mode & 0o777

describe('sqlite store: files', () => {
  it('creates the database, -wal and -shm with mode 0600', () => {
    const path = freshPath()
    const store = openSqliteStore({ path })
    store.addMessage(message(1))
    for (const suffix of ['', '-wal', '-shm']) {
      assert.ok(existsSync(path + suffix), `${suffix} exists`)
      assert.equal(mode(path + suffix).toString(8), '600', `mode of ${suffix || 'db'}`)
    }
    store.close()
  })

  it('tightens an existing file to 0600 on open', () => {
    const path = freshPath()
    openSqliteStore({ path }).close()
    chmodSync(path, 0o644)
    const store = openSqliteStore({ path })
    assert.equal(mode(path).toString(8), '600')
    store.close()
  })

  it('keeps everything across close and reopen, custody usage included', () => {
    const path = freshPath()
    const quota = { perOriginBytes: 100, totalBytes: 1000 }
    const a = openSqliteStore({ path, custodyQuota: quota, durability: 'full' })
    a.setIdentity({ accountKey: new Uint8Array(32), name: 'me', card: new Uint8Array([1]), createdAt: 1 })
    for (let n = 1; n <= 5; n++) a.addMessage(message(n))
    a.setMessageState(message(2).id, 'delivered', 9)
    a.putCustody({
      messageId: 'c1',
      origin: 'n1',
      destination: new Uint8Array([1]),
      envelope: new Uint8Array(60),
      copies: 1,
      expiresAt: 10,
      receivedAt: 1,
    })
    a.kvSet('ns', 'k', new Uint8Array([7]))
    const snapshot = [a.getIdentity(), a.listMessages('alice'), a.listCustody(), a.kvList('ns')]
    a.close()
    const b = openSqliteStore({ path, custodyQuota: quota })
    assert.deepEqual([b.getIdentity(), b.listMessages('alice'), b.listCustody(), b.kvList('ns')], snapshot)
    assert.deepEqual(b.custodyUsage('n1'), { bytes: 60, count: 1 })
    assert.equal(b.addMessage(message(3)), false)
    throwsCode(
      () => b.putCustody({ ...b.getCustody('c1')!, messageId: 'c2', envelope: new Uint8Array(41) }),
      'quota_exceeded',
    )
    b.close()
  })
})

describe('sqlite store: bytes from SQLite', () => {
  it('become plain Uint8Arrays that own exactly their memory', () => {
    for (const b of [Buffer.from('abc'), Buffer.alloc(5, 1).subarray(1, 3), Buffer.alloc(0)]) {
      const u = bytes(b)
      assert.equal(Object.getPrototypeOf(u), Uint8Array.prototype)
      assert.deepEqual(u, new Uint8Array(b))
      assert.equal(u.buffer.byteLength, b.length)
    }
  })
})

describe('sqlite store: migrations', () => {
  it('sets user_version and application_id', () => {
    const path = freshPath()
    openSqliteStore({ path }).close()
    const db = new Database(path)
    assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length)
    assert.equal(db.pragma('application_id', { simple: true }), TALKEN_APPLICATION_ID)
    db.close()
  })

  it('refuses a database from a newer Talken with unsupported_version', () => {
    const path = freshPath()
    openSqliteStore({ path }).close()
    const db = new Database(path)
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`)
    db.close()
    throwsCode(() => openSqliteStore({ path }), 'unsupported_version')
    const after = new Database(path)
    assert.equal(after.pragma('user_version', { simple: true }), MIGRATIONS.length + 1, 'left untouched')
    after.close()
  })

  it('step 2 forgets the incoming messages recorded as failed (refused ones), and nothing else', () => {
    const path = freshPath()
    const db = new Database(path)
    migrate(db, MIGRATIONS.slice(0, 1))
    const insert = db.prepare(
      'INSERT INTO messages (id, conversation, direction, body, created_at, state, updated_at) VALUES (?, ?, ?, ?, 0, ?, 0)',
    )
    insert.run('in-failed', '.rejected', 'in', Buffer.alloc(0), 'failed')
    insert.run('in-received', 'tk1a', 'in', Buffer.alloc(0), 'received')
    insert.run('out-failed', 'tk1a', 'out', Buffer.alloc(0), 'failed')
    db.close()
    const store = openSqliteStore({ path })
    assert.equal(store.getMessage('in-failed'), undefined)
    assert.equal(store.getMessage('in-received')?.state, 'received')
    assert.equal(store.getMessage('out-failed')?.state, 'failed')
    store.close()
  })

  it('runs each step atomically with its version bump', () => {
    const db = new Database(freshPath())
    migrate(db)
    const broken = [...MIGRATIONS, 'CREATE TABLE extra (a INTEGER); THIS IS NOT SQL;']
    assert.throws(() => migrate(db, broken))
    assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length)
    const extra = db.prepare("SELECT name FROM sqlite_schema WHERE name = 'extra'").get()
    assert.equal(extra, undefined)
    migrate(db, [...MIGRATIONS, 'CREATE TABLE extra (a INTEGER);'])
    assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length + 1)
    db.close()
  })

  it('refuses a SQLite database that is not Talken’s with storage_failed', () => {
    const path = freshPath()
    const db = new Database(path)
    db.exec('CREATE TABLE notes (text TEXT)')
    db.close()
    throwsCode(() => openSqliteStore({ path }), 'storage_failed')
    const after = new Database(path)
    assert.equal(after.pragma('journal_mode', { simple: true }), 'delete', 'left untouched')
    assert.equal(after.pragma('user_version', { simple: true }), 0)
    after.close()
  })
})

describe('sqlite store: failures', () => {
  it('reports a full disk as storage_full and keeps earlier data', () => {
    const path = freshPath()
    const setup = openSqliteStore({ path })
    setup.addMessage(message(1))
    setup.close()
    const store = openSqliteStore({ path, maxPageCount: 40 })
    let written = 1
    let failure: unknown
    for (let n = 2; n < 100 && failure === undefined; n++) {
      try {
        store.addMessage(message(n, 4000))
        written = n
      } catch (err) {
        failure = err
      }
    }
    assert.ok(isTalkenError(failure, 'storage_full'), `got ${String(failure)}`)
    assert.ok(written > 2, 'some writes fit before the limit')
    assert.equal(store.getMessage(message(written + 1).id), undefined)
    store.close()
    const reopened = openSqliteStore({ path })
    for (let n = 1; n <= written; n++)
      assert.deepEqual(reopened.getMessage(message(n).id), message(n, n === 1 ? 3 : 4000))
    assert.equal(reopened.getMessage(message(written + 1).id), undefined)
    assert.equal(reopened.addMessage(message(written + 1)), true)
    reopened.close()
  })

  it('reports a file that is not a database as storage_failed, naming the file', () => {
    const path = freshPath()
    writeFileSync(path, 'these are my notes, not a database\n'.repeat(200))
    assert.throws(
      () => openSqliteStore({ path }),
      (err: unknown) =>
        isTalkenError(err, 'storage_failed') &&
        /not a database/.test(err.message) &&
        err.message.includes(path),
    )
  })

  it('reports a database with corrupt pages as storage_failed', () => {
    const path = freshPath()
    openSqliteStore({ path }).close()
    const db = new Database(path)
    const image = db.serialize()
    db.close()
    image.fill(0x41, 100) // keep the header, garble the schema and every page after it
    writeFileSync(path, image)
    throwsCode(() => openSqliteStore({ path }), 'storage_failed')
  })

  it('reports an unusable path as storage_failed', () => {
    throwsCode(() => openSqliteStore({ path: join(dir, 'missing-dir', 'x.db') }), 'storage_failed')
  })
})

describe('sqlite store: matches the memory store on random operation sequences', () => {
  const ids = fc.constantFrom('a', 'b', 'c', 'd')
  const small = fc.integer({ min: 0, max: 20 })
  const op = fc.oneof(
    fc.record({ k: fc.constant('add' as const), id: ids, conv: fc.constantFrom('x', 'y'), at: small }),
    fc.record({
      k: fc.constant('state' as const),
      id: ids,
      at: small,
      reason: fc.option(fc.string(), { nil: undefined }),
    }),
    fc.record({ k: fc.constant('outbox' as const), id: ids, at: small, attempts: small }),
    fc.record({ k: fc.constant('unoutbox' as const), id: ids }),
    fc.record({
      k: fc.constant('custody' as const),
      id: ids,
      origin: fc.constantFrom('o1', 'o2'),
      size: small,
      at: small,
    }),
    fc.record({ k: fc.constant('uncustody' as const), id: ids }),
    fc.record({ k: fc.constant('expire' as const), at: small }),
    fc.record({
      k: fc.constant('peer' as const),
      id: ids,
      at: small,
      addr: fc.option(ids, { nil: undefined }),
    }),
    fc.record({ k: fc.constant('fail' as const), id: ids, addr: ids }),
    fc.record({ k: fc.constant('kv' as const), key: fc.string({ maxLength: 3 }), n: small }),
    fc.record({ k: fc.constant('unkv' as const), key: fc.string({ maxLength: 3 }) }),
    fc.record({ k: fc.constant('contact' as const), id: ids, name: fc.string({ maxLength: 3 }) }),
    fc.record({ k: fc.constant('throw' as const) }),
  )
  type Op = typeof op extends fc.Arbitrary<infer T> ? T : never

  function apply(s: Store, o: Op): unknown {
    const b = (n: number) => new Uint8Array(n).fill(n)
    switch (o.k) {
      case 'add':
        return s.addMessage({ ...message(o.at), id: o.id, conversation: o.conv })
      case 'state':
        return s.setMessageState(o.id, 'sent', o.at, o.reason)
      case 'outbox':
        return s.putOutbox({
          messageId: o.id,
          envelope: b(2),
          attempts: o.attempts,
          nextAttemptAt: o.at,
          expiresAt: 9,
        })
      case 'unoutbox':
        return s.removeOutbox(o.id)
      case 'custody': {
        const e = { messageId: o.id, origin: o.origin, destination: b(o.size % 2), envelope: b(o.size) }
        return s.putCustody({ ...e, copies: 1, expiresAt: o.at, receivedAt: o.size })
      }
      case 'uncustody':
        return s.removeCustody(o.id)
      case 'expire':
        return s.expireCustody(o.at)
      case 'peer':
        return s.notePeer(o.id, o.at, o.addr)
      case 'fail':
        return s.noteAddressFailure(o.id, o.addr)
      case 'kv':
        return s.kvSet('ns', o.key, b(o.n))
      case 'unkv':
        return s.kvDelete('ns', o.key)
      case 'contact':
        return s.putContact({
          id: o.id,
          accountKey: b(1),
          name: o.name,
          card: b(1),
          verified: false,
          addedAt: 0,
        })
      case 'throw':
        throw new Error('scripted')
    }
  }

  function attempt(s: Store, ops: Op[]): unknown {
    try {
      return ops.length === 1 ? apply(s, ops[0]!) : s.transaction(() => ops.map((o) => apply(s, o)))
    } catch (err) {
      return isTalkenError(err) ? { error: err.code } : { thrown: String(err) }
    }
  }

  function dump(s: Store): unknown {
    return {
      x: s.listMessages('x'),
      y: s.listMessages('y', { limit: 2, before: 15 }),
      outbox: s.listOutboxDue(1e9),
      due: s.listOutboxDue(10, 2),
      custody: s.listCustody(),
      dest: s.listCustody({ destination: new Uint8Array([1]) }),
      usage: [s.custodyUsage(), s.custodyUsage('o1'), s.custodyUsage('o2')],
      peers: s.listPeers(),
      kv: s.kvList('ns'),
      contacts: s.listContacts(),
    }
  }

  it('gives the same results, errors and final state', () => {
    const quota = { perOriginBytes: 25, totalBytes: 40 }
    const steps = fc.array(fc.array(op, { minLength: 1, maxLength: 4 }), { maxLength: 30 })
    fc.assert(
      fc.property(steps, (script) => {
        const memory = createMemoryStore({ custodyQuota: quota })
        const sqlite = openSqliteStore({ path: ':memory:', custodyQuota: quota })
        try {
          for (const ops of script) assert.deepEqual(attempt(sqlite, ops), attempt(memory, ops))
          assert.deepEqual(dump(sqlite), dump(memory))
        } finally {
          sqlite.close()
          memory.close()
        }
      }),
      { numRuns: 150 },
    )
  })
})

before(() => assert.ok(existsSync(dir)))
