import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { createIdentity } from '../../src/identity/identity.ts'
import {
  DEFAULT_SCRYPT,
  decodeKeyFile,
  encodeKeyFile,
  isKeyFileEncrypted,
  readFileIfExists,
  SCRYPT_LIMITS,
  writePrivateFile,
} from '../../src/identity/key-file.ts'
import { encodeCbor } from '../../src/wire/cbor.ts'
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

describe('key file scrypt bounds', () => {
  /** An encrypted key file naming these costs (its tag is never reached). */
  function fileWithCost(logN: number, r: number, p: number): Uint8Array {
    return encodeCbor([1, 1, new Uint8Array(16), logN, r, p, new Uint8Array(12), new Uint8Array(64)])
  }

  it('refuses to read costs beyond 1 GiB of memory or four passes, before deriving anything', () => {
    // Each is cheap for scrypt itself (what a file could ask before the limits was up to 16 GiB).
    for (const [logN, r, p] of [
      [10, 9, 1],
      [10, 8, 5],
      [21, 1, 1],
      [22, 8, 16],
    ] as const) {
      const started = performance.now()
      throwsCode(() => decodeKeyFile(fileWithCost(logN, r, p), 'pw'), 'malformed')
      assert.ok(performance.now() - started < 1000, `logN ${logN}, r ${r}, p ${p} refused at once`)
    }
  })

  it('refuses to write such costs, and keeps the default and the largest allowed', () => {
    for (const cost of [
      { logN: 21, r: 8, p: 1 },
      { logN: 17, r: 9, p: 1 },
      { logN: 17, r: 8, p: 5 },
    ]) {
      throwsCode(() => encodeKeyFile(me.secrets, 'pw', cost), 'invalid_argument')
    }
    assert.deepEqual(SCRYPT_LIMITS, { logN: [10, 20], r: [1, 8], p: [1, 4] })
    const { logN, r, p } = DEFAULT_SCRYPT
    assert.ok(logN <= SCRYPT_LIMITS.logN[1] && r <= SCRYPT_LIMITS.r[1] && p <= SCRYPT_LIMITS.p[1])
    const bytes = encodeKeyFile(me.secrets, 'pw')
    assert.deepEqual(decodeKeyFile(bytes, 'pw'), me.secrets)
  })

  it('reports an unusable combination within the limits as malformed, never a raw error', () => {
    // scrypt needs N < 2^(16·r): r = 1 allows logN 15 at most.
    throwsCode(() => decodeKeyFile(fileWithCost(16, 1, 1), 'pw'), 'malformed')
  })
})
