/**
 * The key file: an identity's secrets on disk, optionally encrypted with a passphrase.
 *
 * ```
 * plain:     [ 1, 0, secrets ]
 * encrypted: [ 1, 1, salt: bytes(16), logN: uint, r: uint, p: uint, nonce: bytes(12), sealed: bytes ]
 *   key    = scrypt(passphrase, salt, N = 2^logN, r, p) → 32 bytes
 *   sealed = ChaCha20-Poly1305(key, nonce, aad = CBOR([1, 1, salt, logN, r, p, nonce]), CBOR(secrets))
 * secrets = [ accountSeed: bytes(32), deviceSeed: bytes(32), deviceName: text, deviceCreated: uint,
 *             accountCreated: uint ]
 * ```
 * Written atomically (temporary file, fsync, rename) with mode 0600 in a 0700 directory.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto'
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs'
import { dirname } from 'node:path'
import { TalkenError } from '../errors.ts'
import { type CborValue, decodeCbor, encodeCbor, FieldReader } from '../wire/cbor.ts'
import { MAX_NAME_BYTES } from '../wire/limits.ts'
import { SEED_LENGTH } from './ed25519.ts'
import type { IdentitySecrets } from './identity.ts'

const VERSION = 1
const PLAIN = 0
const SCRYPT_CHACHA = 1
const MAX_KEY_FILE_BYTES = 1024
const TAG_LENGTH = 16

/** scrypt cost: N = 2^17, r = 8, p = 1 (128 MiB of memory, a fraction of a second here): RFC 7914's interactive-login setting doubled. */
export const DEFAULT_SCRYPT = { logN: 17, r: 8, p: 1 } as const
/**
 * The scrypt costs a key file may name (decoders refuse others, so encoders do too). They are
 * read, and paid, before the tag can say whether the file is ours: a file planted or damaged
 * must not be able to ask for more than 1 GiB of memory (128 · 2^logN · r bytes: 2^20 · 8 is
 * exactly that) or more than four times that work. The lower bounds are for tests (fast key files);
 * what is written by `talken init` is always {@link DEFAULT_SCRYPT}.
 */
export const SCRYPT_LIMITS = { logN: [10, 20], r: [1, 8], p: [1, 4] } as const
/** The most memory a key file's scrypt may take: 1 GiB. */
const MAX_SCRYPT_MEMORY = 2 ** 30

function scryptMemory(logN: number, r: number): number {
  return 128 * 2 ** logN * r
}

function secretsToCbor(s: IdentitySecrets): CborValue {
  return [s.accountSeed, s.deviceSeed, s.deviceName, s.deviceCreated, s.accountCreated]
}

function secretsFromCbor(value: CborValue): IdentitySecrets {
  const r = new FieldReader(value, 'key file secrets', 5)
  return {
    accountSeed: r.bytes('accountSeed', SEED_LENGTH),
    deviceSeed: r.bytes('deviceSeed', SEED_LENGTH),
    deviceName: r.text('deviceName', MAX_NAME_BYTES),
    deviceCreated: r.uint('deviceCreated'),
    accountCreated: r.uint('accountCreated'),
  }
}

function deriveKey(passphrase: string, salt: Uint8Array, logN: number, r: number, p: number): Buffer {
  const N = 2 ** logN
  // Also judged here, whoever calls: never more than the limits, whatever a file says.
  if (
    logN > SCRYPT_LIMITS.logN[1] ||
    r > SCRYPT_LIMITS.r[1] ||
    p > SCRYPT_LIMITS.p[1] ||
    scryptMemory(logN, r) > MAX_SCRYPT_MEMORY
  ) {
    throw new TalkenError('malformed', 'key file: scrypt cost beyond the limits')
  }
  try {
    return scryptSync(passphrase.normalize('NFKC'), salt, 32, {
      N,
      r,
      p,
      maxmem: scryptMemory(logN, r) + 128 * r * (p + 2) + 1024 * 1024,
    })
  } catch (cause) {
    // Within the limits, but a combination scrypt refuses (N ≥ 2^(16·r), say).
    throw new TalkenError('malformed', 'key file: scrypt cost not usable', { cause })
  }
}

/**
 * Encodes secrets as key-file bytes, encrypted when a passphrase is given. `cost` is
 * {@link DEFAULT_SCRYPT} unless told; others (within {@link SCRYPT_LIMITS}) are for tests.
 */
export function encodeKeyFile(
  secrets: IdentitySecrets,
  passphrase?: string,
  cost: { logN: number; r: number; p: number } = DEFAULT_SCRYPT,
): Uint8Array {
  // Through the decoder's checks, so that what is written can be read back.
  secretsFromCbor(secretsToCbor(secrets))
  if (passphrase === undefined) return encodeCbor([VERSION, PLAIN, secretsToCbor(secrets)])
  if (passphrase.length === 0)
    throw new TalkenError('invalid_argument', 'an empty passphrase protects nothing')
  for (const name of ['logN', 'r', 'p'] as const) {
    const [min, max] = SCRYPT_LIMITS[name]
    const v = cost[name]
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new TalkenError('invalid_argument', `scrypt ${name} must be ${min} to ${max}, not ${v}`)
    }
  }
  if (scryptMemory(cost.logN, cost.r) > MAX_SCRYPT_MEMORY) {
    throw new TalkenError('invalid_argument', 'scrypt cost beyond 1 GiB of memory (128 · 2^logN · r bytes)')
  }
  const inner = encodeCbor(secretsToCbor(secrets))
  const salt = new Uint8Array(randomBytes(16))
  const nonce = new Uint8Array(randomBytes(12))
  const header: CborValue[] = [VERSION, SCRYPT_CHACHA, salt, cost.logN, cost.r, cost.p, nonce]
  const key = deriveKey(passphrase, salt, cost.logN, cost.r, cost.p)
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_LENGTH })
  cipher.setAAD(encodeCbor(header), { plaintextLength: inner.length })
  const sealed = Buffer.concat([cipher.update(inner), cipher.final(), cipher.getAuthTag()])
  key.fill(0)
  return encodeCbor([...header, new Uint8Array(sealed)])
}

/** True when key-file bytes are passphrase-encrypted (throws `malformed` if they are not a key file). */
export function isKeyFileEncrypted(bytes: Uint8Array): boolean {
  const value = decodeCbor(bytes, MAX_KEY_FILE_BYTES, 'key file')
  if (!Array.isArray(value) || value.length < 2)
    throw new TalkenError('malformed', 'key file: unknown layout')
  return value[1] === SCRYPT_CHACHA
}

/**
 * Decodes key-file bytes. Throws `passphrase_required`, `bad_passphrase`, `malformed`,
 * `non_canonical`, `too_large` or `unsupported_version`.
 */
export function decodeKeyFile(bytes: Uint8Array, passphrase?: string): IdentitySecrets {
  const value = decodeCbor(bytes, MAX_KEY_FILE_BYTES, 'key file')
  if (!Array.isArray(value) || value.length < 2)
    throw new TalkenError('malformed', 'key file: unknown layout')
  if (value[0] !== VERSION)
    throw new TalkenError('unsupported_version', `key file version ${String(value[0])}`)
  if (value[1] === PLAIN) {
    const r = new FieldReader(value, 'key file', 3)
    r.uint('version')
    r.uint('kind')
    return secretsFromCbor(r.value())
  }
  if (value[1] !== SCRYPT_CHACHA) throw new TalkenError('unsupported_version', 'key file: unknown protection')
  const r = new FieldReader(value, 'key file', 8)
  r.uint('version')
  r.uint('kind')
  const salt = r.bytes('salt', 16)
  const logN = r.uint('logN', SCRYPT_LIMITS.logN[1], SCRYPT_LIMITS.logN[0])
  const rr = r.uint('r', SCRYPT_LIMITS.r[1], SCRYPT_LIMITS.r[0])
  const p = r.uint('p', SCRYPT_LIMITS.p[1], SCRYPT_LIMITS.p[0])
  const nonce = r.bytes('nonce', 12)
  const sealed = r.bytes('sealed', TAG_LENGTH, MAX_KEY_FILE_BYTES)
  if (passphrase === undefined) {
    throw new TalkenError('passphrase_required', 'the key file is encrypted: a passphrase is needed')
  }
  const key = deriveKey(passphrase, salt, logN, rr, p)
  const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_LENGTH })
  decipher.setAAD(encodeCbor([VERSION, SCRYPT_CHACHA, salt, logN, rr, p, nonce]), {
    plaintextLength: sealed.length - TAG_LENGTH,
  })
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_LENGTH))
  let inner: Buffer
  try {
    inner = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_LENGTH)), decipher.final()])
  } catch (cause) {
    throw new TalkenError('bad_passphrase', 'wrong passphrase (or a damaged key file)', { cause })
  } finally {
    key.fill(0)
  }
  const secrets = secretsFromCbor(decodeCbor(inner, MAX_KEY_FILE_BYTES, 'key file secrets'))
  inner.fill(0)
  return secrets
}

/** Writes bytes to `path` atomically with `mode` (0600 unless told), creating the directory (0700) if needed. */
export function writePrivateFile(path: string, bytes: Uint8Array, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}`
  let renamed = false
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
    // A new file, never one found there (left by a crash, or a link planted to it): 'wx'.
    rmSync(tmp, { force: true })
    const fd = openSync(tmp, 'wx', mode)
    try {
      writeSync(fd, bytes)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, path)
    renamed = true
    const dir = openSync(dirname(path), 'r')
    try {
      fsyncSync(dir)
    } finally {
      closeSync(dir)
    }
  } catch (cause) {
    // A copy of what was being written (secrets, say) never stays behind.
    try {
      if (!renamed) rmSync(tmp, { force: true })
    } catch {
      // Nothing more can be done here; the error below says what failed.
    }
    const code = (cause as NodeJS.ErrnoException).code
    throw new TalkenError(
      code === 'ENOSPC' ? 'storage_full' : 'io_failed',
      `cannot write ${path}: ${code ?? cause}`,
      {
        cause,
      },
    )
  }
}

/** Reads a file, mapping a missing one to `undefined` and other failures to `io_failed`. */
export function readFileIfExists(path: string): Uint8Array | undefined {
  try {
    return new Uint8Array(readFileSync(path))
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new TalkenError('io_failed', `cannot read ${path}`, { cause })
  }
}
