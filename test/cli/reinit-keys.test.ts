/**
 * `talken init` over a key file kept from an earlier init whose database was lost: a passphrase
 * given for a plain key file encrypts it (never dropped while `encrypted: true` is claimed), and
 * an encrypted one is never decrypted to a plain file.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { decodeKeyFile, isKeyFileEncrypted } from '../../src/identity/key-file.ts'
import { ensureBuilt, talken, tempDir } from '../helpers/cli.ts'

interface InitJson {
  id: string
  encrypted: boolean
}

function dropDatabase(home: string): void {
  for (const f of readdirSync(home)) if (f.startsWith('talken.db')) rmSync(join(home, f))
}

describe('init over kept keys', () => {
  const dir = tempDir('talken-reinit-')
  const pp = join(dir.path, 'pp')

  before(() => {
    ensureBuilt()
    writeFileSync(pp, 'correct horse\n', { mode: 0o600 })
  })
  after(() => dir.remove())

  it('encrypts a plain key file when a passphrase is given, and says so truly', () => {
    const home = join(dir.path, 'plain')
    const first = talken(home, ['init', '--name', 'Ada', '--json'])
    assert.equal(first.status, 0, first.stderr)
    assert.equal((first.json as InitJson).encrypted, false)
    const plain = readFileSync(join(home, 'identity.key'))
    dropDatabase(home)
    const again = talken(home, ['init', '--name', 'Ada', '--passphrase-file', pp, '--json'])
    assert.equal(again.status, 0, again.stderr)
    const json = again.json as InitJson
    assert.equal(json.id, (first.json as InitJson).id, 'the same keys')
    const bytes = readFileSync(join(home, 'identity.key'))
    assert.equal(isKeyFileEncrypted(bytes), true, 'the key file is encrypted on disk')
    assert.equal(json.encrypted, true)
    assert.deepEqual(decodeKeyFile(bytes, 'correct horse'), decodeKeyFile(plain))
    assert.equal(statSync(join(home, 'identity.key')).mode & 0o777, 0o600)
    assert.deepEqual(
      readdirSync(home).filter((f) => f.includes('.tmp-')),
      [],
      'no temporary file left behind',
    )
  })

  it('keeps a plain key file plain without a passphrase', () => {
    const home = join(dir.path, 'stays-plain')
    assert.equal(talken(home, ['init', '--name', 'Ada', '--json']).status, 0)
    dropDatabase(home)
    const again = talken(home, ['init', '--name', 'Ada', '--json'])
    assert.equal(again.status, 0, again.stderr)
    assert.equal((again.json as InitJson).encrypted, false)
    assert.equal(isKeyFileEncrypted(readFileSync(join(home, 'identity.key'))), false)
  })

  it('never decrypts an encrypted key file to a plain one', () => {
    const home = join(dir.path, 'encrypted')
    const first = talken(home, ['init', '--name', 'Ada', '--passphrase-file', pp, '--json'])
    assert.equal(first.status, 0, first.stderr)
    const before = readFileSync(join(home, 'identity.key'))
    dropDatabase(home)
    const bare = talken(home, ['init', '--name', 'Ada', '--no-encrypt', '--json'])
    assert.notEqual(bare.status, 0)
    assert.match(bare.stdout + bare.stderr, /passphrase/)
    assert.deepEqual(readFileSync(join(home, 'identity.key')), before, 'the key file is untouched')
    const again = talken(home, ['init', '--name', 'Ada', '--passphrase-file', pp, '--json'])
    assert.equal(again.status, 0, again.stderr)
    assert.equal((again.json as InitJson).encrypted, true)
    assert.deepEqual(readFileSync(join(home, 'identity.key')), before, 'kept as it was')
  })
})
