import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { createIdentity } from '../../src/identity/identity.ts'
import {
  decodeKeyFile,
  encodeKeyFile,
  isKeyFileEncrypted,
  readFileIfExists,
  writePrivateFile,
} from '../../src/identity/key-file.ts'
import { throwsCode } from '../helpers/errors.ts'

const FAST = { logN: 10, r: 8, p: 1 } // test speed only; the default is 2^17
const me = createIdentity({ now: 1_750_000_000_000, deviceName: 'phone' })

describe('key file', () => {
  it('round-trips in plain form', () => {
    const bytes = encodeKeyFile(me.secrets)
    assert.equal(isKeyFileEncrypted(bytes), false)
    assert.deepEqual(decodeKeyFile(bytes), me.secrets)
  })

  it('round-trips encrypted, and refuses a wrong or missing passphrase', () => {
    const bytes = encodeKeyFile(me.secrets, 'correct horse', FAST)
    assert.equal(isKeyFileEncrypted(bytes), true)
    assert.deepEqual(decodeKeyFile(bytes, 'correct horse'), me.secrets)
    throwsCode(() => decodeKeyFile(bytes, 'wrong horse'), 'bad_passphrase')
    throwsCode(() => decodeKeyFile(bytes), 'passphrase_required')
    // The seeds never appear in the encrypted file.
    assert.equal(Buffer.from(bytes).includes(Buffer.from(me.secrets.accountSeed)), false)
  })

  it('detects any flipped byte of an encrypted file', () => {
    const bytes = encodeKeyFile(me.secrets, 'pw', FAST)
    for (let i = 0; i < bytes.length; i += 7) {
      const bad = new Uint8Array(bytes)
      bad[i]! ^= 0x01
      throwsCode(
        () => decodeKeyFile(bad, 'pw'),
        'bad_passphrase',
        'malformed',
        'non_canonical',
        'unsupported_version',
      )
    }
  })

  it('is written with mode 0600 in a 0700 directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'talken-key-'))
    try {
      const path = join(dir, 'home', 'identity.key')
      writePrivateFile(path, encodeKeyFile(me.secrets))
      assert.equal(statSync(path).mode & 0o777, 0o600)
      assert.equal(statSync(join(dir, 'home')).mode & 0o777, 0o700)
      assert.deepEqual(decodeKeyFile(readFileIfExists(path)!), me.secrets)
      assert.equal(readFileIfExists(join(dir, 'missing')), undefined)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a write that fails leaves no copy of the secrets behind', () => {
    const dir = mkdtempSync(join(tmpdir(), 'talken-key-'))
    try {
      // The rename fails: a directory that is not empty stands where the file goes.
      const path = join(dir, 'identity.key')
      mkdirSync(path)
      writeFileSync(join(path, 'x'), 'x')
      throwsCode(() => writePrivateFile(path, encodeKeyFile(me.secrets)), 'io_failed')
      assert.deepEqual(readdirSync(dir), ['identity.key'])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('refuses to write what it could not read back: scrypt costs out of range', () => {
    for (const cost of [
      { logN: 9, r: 8, p: 1 },
      { logN: 10, r: 33, p: 1 },
      { logN: 10, r: 8, p: 17 },
      { logN: 10.5, r: 8, p: 1 },
    ]) {
      throwsCode(() => encodeKeyFile(me.secrets, 'pw', cost), 'invalid_argument')
    }
  })
})
