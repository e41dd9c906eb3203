/**
 * What the store deletes is gone from the database file, not left in free pages: forward secrecy
 * needs used one-time prekeys, message keys and old chain keys to be unrecoverable from a device
 * taken later.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { openSqliteStore } from '../../src/store/sqlite-store.ts'

describe('sqlite store: deleted secrets', () => {
  it('leaves no trace of deleted or overwritten values in the file after close', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'talken-secure-delete-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const path = join(dir, 'talken.db')
    const store = openSqliteStore({ path })
    const secrets = Array.from({ length: 300 }, () => randomBytes(32))
    // As the session store does: a record rewritten on each step, and keys deleted when used.
    for (const [i, secret] of secrets.entries()) store.kvSet('e2e/test', `key-${i}`, secret)
    for (let i = 0; i < secrets.length; i++) store.kvDelete('e2e/test', `key-${i}`)
    for (const secret of secrets.slice(0, 100)) store.kvSet('e2e/test', 'record', secret)
    store.kvSet('e2e/test', 'record', new Uint8Array(32))
    store.close()
    const file = readFileSync(path)
    const left = secrets.filter((s) => file.includes(s))
    assert.equal(left.length, 0, `${left.length} of ${secrets.length} deleted secrets are still in the file`)
  })
})
