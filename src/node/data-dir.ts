/**
 * The data directory (`$TALKEN_HOME`, default `~/.talken`): the key file and the SQLite store.
 *
 * ```
 * <home>/            mode 0700
 *   identity.key     mode 0600  secrets (key-file.ts), optionally passphrase-encrypted
 *   talken.db        mode 0600  the store (plus -wal and -shm while open)
 * ```
 */
import { existsSync, mkdirSync, statSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { openSessionStore } from '../e2e/session-store.ts'
import { TalkenError } from '../errors.ts'
import { encodeContactCard } from '../identity/contact-card.ts'
import { toContactLink } from '../identity/contact-link.ts'
import { createIdentity, type Identity, identityFromSecrets, makeContactCard } from '../identity/identity.ts'
import {
  decodeKeyFile,
  encodeKeyFile,
  isKeyFileEncrypted,
  readFileIfExists,
  writePrivateFile,
} from '../identity/key-file.ts'
import { openSqliteStore } from '../store/sqlite-store.ts'
import type { Store, StoredIdentity } from '../store/store.ts'
import { bytesEqual, nameProblem } from '../wire/cbor.ts'
import { MAX_NAME_BYTES } from '../wire/limits.ts'

/** File names inside the data directory. */
export const KEY_FILE = 'identity.key'
export const DATABASE_FILE = 'talken.db'

/**
 * The data directory to use: the explicit one, else `$TALKEN_HOME`, else `~/.talken`. An empty
 * `TALKEN_HOME` counts as unset (`TALKEN_HOME= talken …` is how one unsets it for a command). An
 * empty explicit one (`--home ""`, an unset shell variable, say) is `invalid_argument`: it would
 * otherwise mean the current directory, and keys would be written wherever one stands.
 */
export function resolveHome(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit === '') {
    throw new TalkenError('invalid_argument', '--home is empty: give the data directory, or leave --home out')
  }
  const chosen = explicit ?? (env.TALKEN_HOME || join(homedir(), '.talken'))
  return resolve(chosen)
}

/**
 * Creates `home` (mode 0700) if it is missing, and checks that it is ours alone: owned by this
 * user and writable by nobody else. Otherwise another user could read or swap the key file, or
 * plant a control socket that the CLI would hand our messages to. Throws `unsafe_directory`.
 * (Skipped where the platform has no user IDs.)
 */
export function ensurePrivateDirectory(home: string): void {
  mkdirSync(home, { recursive: true, mode: 0o700 })
  checkPrivateDirectory(home)
}

/** {@link ensurePrivateDirectory} for a directory that exists already; nothing is created. */
function checkPrivateDirectory(home: string): void {
  const uid = process.getuid?.()
  if (uid === undefined) return
  const st = statSync(home)
  if (!st.isDirectory()) throw new TalkenError('io_failed', `${home} is not a directory`)
  if (st.uid !== uid || (st.mode & 0o022) !== 0) {
    throw new TalkenError(
      'unsafe_directory',
      `${home} ${st.uid !== uid ? 'belongs to another user' : 'can be written by other users'}: choose another data directory, or make it yours alone (chmod 700)`,
      { details: { path: home } },
    )
  }
}

/** Options for creating or opening a data directory. */
export interface HomeOptions {
  readonly home: string
  /** Passphrase for an encrypted key file (or to encrypt a new one). */
  readonly passphrase?: string | undefined
  /** Unix milliseconds; injected for tests. */
  readonly now?: number
  /**
   * The store's durability (docs/storage.md §Durability): `normal` (the default) survives a killed
   * process; `full` also a power cut, at the cost of a sync per commit.
   */
  readonly durability?: 'normal' | 'full' | undefined
}

/** An open data directory: the store, and (when loaded) the identity able to sign. */
export interface OpenHome {
  readonly home: string
  readonly store: Store
  readonly profile: StoredIdentity
  close(): void
}

/** The store in `home`, which the caller has checked ({@link ensurePrivateDirectory}). */
function openStore(home: string, durability?: 'normal' | 'full'): Store {
  return openSqliteStore({
    path: join(home, DATABASE_FILE),
    ...(durability === undefined ? {} : { durability }),
  })
}

/**
 * Creates an identity in `home`. Throws `identity_exists` when there is one already; the existing
 * identity is never touched. A key file without a profile (the database lost, or an init stopped
 * after the key file was written) gets its profile back, for the keys it holds (with
 * `passphrase` when they are encrypted).
 */
export function initHome(options: HomeOptions & { name: string; deviceName?: string }): OpenHome & {
  identity: Identity
  link: string
} {
  // Judged before anything is made: a refused name leaves no database behind.
  // The checks a contact card's name gets from everyone who decodes it (`nameProblem`).
  for (const [what, name, empty] of [
    ['name', options.name, false],
    ['device name', options.deviceName, true],
  ] as const) {
    if (name === undefined) continue
    const problem = name.length === 0 && !empty ? 'is empty' : nameProblem(name)
    if (problem !== undefined || Buffer.byteLength(name) > MAX_NAME_BYTES) {
      throw new TalkenError(
        'invalid_argument',
        `a ${what} is ${empty ? 0 : 1} to ${MAX_NAME_BYTES} bytes of text, with no invisible characters and no whitespace at either end${problem === undefined ? '' : `: this one ${problem}`}`,
      )
    }
  }
  const keyPath = join(options.home, KEY_FILE)
  ensurePrivateDirectory(options.home) // before anything in it is looked at
  const now = options.now ?? Date.now()
  const store = openStore(options.home)
  const keysKept = existsSync(keyPath)
  if (keysKept && store.getIdentity() !== undefined) {
    store.close()
    throw new TalkenError('identity_exists', `${options.home} already holds an identity; nothing was changed`)
  }
  try {
    // The kept key file is read once: the keys loaded are the ones re-encoded below, if they are.
    const keptBytes = keysKept ? readFileIfExists(keyPath) : undefined
    if (keysKept && keptBytes === undefined) {
      throw new TalkenError('conflict', `${keyPath} went away during init; run \`talken init\` again`)
    }
    const identity =
      keptBytes !== undefined
        ? identityFromSecrets(decodeKeyFile(keptBytes, options.passphrase))
        : createIdentity({ now, ...(options.deviceName ? { deviceName: options.deviceName } : {}) })
    // The card carries this device's prekey bundle, so a first message can be sent while we are away.
    const e2e = openSessionStore({ store, device: identity.device, now: () => now })
    const card = makeContactCard(identity, { name: options.name, extensions: [e2e.cardExtension()], now })
    const existing = store.getIdentity()
    if (existing && !bytesEqual(existing.accountKey, identity.account.publicKey)) {
      throw new TalkenError(
        'conflict',
        `${options.home} holds a database of another identity (or of an init that was interrupted); move ${DATABASE_FILE} away first`,
      )
    }
    const profile: StoredIdentity = {
      accountKey: identity.account.publicKey,
      name: options.name,
      card: encodeContactCard(card),
      createdAt: now,
    }
    // The key file is encoded first (with a passphrase that takes a second), then written inside
    // the profile's transaction: a write that fails (a full disk) leaves no profile behind, and a
    // process killed between the key file's rename and the commit leaves keys without a profile,
    // which the next init gives their profile back.
    // Kept keys are rewritten only to encrypt them: a passphrase given for a plain key file is
    // never dropped. An encrypted one stays as it is (without its passphrase it was not read
    // above, `passphrase_required`), never decrypted to a plain file.
    const encryptKept =
      keptBytes !== undefined && options.passphrase !== undefined && !isKeyFileEncrypted(keptBytes)
    const keyFile =
      keptBytes === undefined || encryptKept ? encodeKeyFile(identity.secrets, options.passphrase) : undefined
    store.transaction(() => {
      store.setIdentity(profile)
      if (keyFile !== undefined) writePrivateFile(keyPath, keyFile)
    })
    return {
      home: options.home,
      store,
      profile,
      identity,
      link: toContactLink(card),
      close: () => store.close(),
    }
  } catch (err) {
    store.close()
    throw err
  }
}

/**
 * Throws `no_identity` unless `home` holds a key file, and `unsafe_directory` unless it is ours
 * alone: what the daemon and an offline send check before they take the directory's lock.
 */
export function requireIdentity(home: string): void {
  if (existsSync(home)) checkPrivateDirectory(home) // before anything in it is looked at
  if (!existsSync(join(home, KEY_FILE))) {
    throw new TalkenError('no_identity', `no identity in ${home}: run \`talken init\` first`)
  }
}

/** Opens the data directory's store and profile, without loading secret keys. Throws `no_identity`. */
export function openHome(options: HomeOptions): OpenHome {
  requireIdentity(options.home)
  const store = openStore(options.home, options.durability)
  const profile = store.getIdentity()
  if (profile === undefined) {
    store.close()
    throw new TalkenError(
      'no_identity',
      `the database in ${options.home} has no profile: run \`talken init\` again`,
    )
  }
  return { home: options.home, store, profile, close: () => store.close() }
}

/** Loads the identity's secret keys (asks for the passphrase through `passphrase` when encrypted). */
export function loadIdentity(options: HomeOptions): Identity {
  const bytes = readFileIfExists(join(options.home, KEY_FILE))
  if (bytes === undefined)
    throw new TalkenError('no_identity', `no identity in ${options.home}: run \`talken init\` first`)
  return identityFromSecrets(decodeKeyFile(bytes, options.passphrase))
}
