/**
 * Setting up a data directory (src/node/data-dir.ts `initHome`) never leaves a dead end: a key file
 * that could not be written leaves no profile behind, and keys without a profile (the database
 * lost) get their profile back from the next init.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { DATABASE_FILE, initHome, KEY_FILE, loadIdentity, openHome } from '../../src/node/data-dir.ts'
import { tempDir } from '../helpers/cli.ts'
import { throwsCode } from '../helpers/errors.ts'

describe('data directory set-up', () => {
  it('a key file that cannot be written leaves no profile: init works once the cause is gone', (t) => {
    const dir = tempDir('talken-home-')
    t.after(dir.remove)
    const home = join(dir.path, 'home')
    // Something stands where the key file is written first (its write fails, as on a full disk).
    const tmp = join(home, `${KEY_FILE}.tmp-${process.pid}`)
    mkdirSync(tmp, { recursive: true, mode: 0o700 })
    writeFileSync(join(tmp, 'x'), 'x')
    throwsCode(() => initHome({ home, name: 'Ada' }), 'io_failed')
    rmSync(tmp, { recursive: true })
    const made = initHome({ home, name: 'Ada' })
    made.close()
    assert.ok(existsSync(join(home, KEY_FILE)))
  })

  it('a name that is no name is refused before anything is made', (t) => {
    const dir = tempDir('talken-home-')
    t.after(dir.remove)
    const home = join(dir.path, 'home')
    for (const name of ['', '   ', 'x'.repeat(65), 'Ada\u001b[2J']) {
      throwsCode(() => initHome({ home, name }), 'invalid_argument')
    }
    assert.equal(existsSync(home), false)
    initHome({ home, name: 'Ada' }).close()
    assert.ok(existsSync(join(home, DATABASE_FILE)))
  })

  it('keys without a profile (the database lost) get their profile back, for the same account', (t) => {
    const dir = tempDir('talken-home-')
    t.after(dir.remove)
    const home = join(dir.path, 'home')
    const first = initHome({ home, name: 'Ada' })
    const account = first.identity.account.publicKey
    first.close()
    for (const suffix of ['', '-wal', '-shm']) rmSync(join(home, DATABASE_FILE + suffix), { force: true })
    throwsCode(() => openHome({ home }), 'no_identity')
    const again = initHome({ home, name: 'Ada' })
    again.close()
    assert.deepEqual(again.identity.account.publicKey, account)
    const opened = openHome({ home })
    assert.deepEqual(opened.profile.accountKey, account)
    opened.close()
    assert.deepEqual(loadIdentity({ home }).account.publicKey, account)
    // With its profile back, the identity is there: init refuses to touch it.
    throwsCode(() => initHome({ home, name: 'Eve' }), 'identity_exists')
  })
})
