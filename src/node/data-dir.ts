/**
 * The data directory (`$TALKEN_HOME`, default `~/.talken`): the key file and the SQLite store.
 *
 * ```
 * <home>/            mode 0700
 *   identity.key     mode 0600  secrets (key-file.ts), optionally passphrase-encrypted
 *   talken.db        mode 0600  the store (plus -wal and -shm while open)
 * ```
 */
import { existsSync, mkdirSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { openSessionStore } from '../e2e/session-store.ts'
import { TalkenError } from '../errors.ts'
import { encodeContactCard } from '../identity/contact-card.ts'
import { toContactLink } from '../identity/contact-link.ts'
import { createIdentity, type Identity, identityFromSecrets, makeContactCard } from '../identity/identity.ts'
import { decodeKeyFile, encodeKeyFile, readFileIfExists, writePrivateFile } from '../identity/key-file.ts'
import { openSqliteStore } from '../store/sqlite-store.ts'
import type { Store, StoredIdentity } from '../store/store.ts'
import { bytesEqual } from '../wire/cbor.ts'

/** File names inside the data directory. */
export const KEY_FILE = 'identity.key'
export const DATABASE_FILE = 'talken.db'

/** The data directory to use: the explicit one, else `$TALKEN_HOME`, else `~/.talken`. */
export function resolveHome(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = explicit ?? env.TALKEN_HOME ?? join(homedir(), '.talken')
  return resolve(chosen)
}

/** Options for creating or opening a data directory. */
export interface HomeOptions {
  readonly home: string
  /** Passphrase for an encrypted key file (or to encrypt a new one). */
  readonly passphrase?: string | undefined
  /** Unix milliseconds; injected for tests. */
  readonly now?: number
}

/** An open data directory: the store, and (when loaded) the identity able to sign. */
export interface OpenHome {
  readonly home: string
  readonly store: Store
  readonly profile: StoredIdentity
  close(): void
}

function openStore(home: string): Store {
  mkdirSync(home, { recursive: true, mode: 0o700 })
  return openSqliteStore({ path: join(home, DATABASE_FILE) })
}

/**
 * Creates an identity in `home`. Throws `identity_exists` when there is one already; the existing
 * identity is never touched.
 */
export function initHome(options: HomeOptions & { name: string; deviceName?: string }): OpenHome & {
  identity: Identity
  link: string
} {
  const keyPath = join(options.home, KEY_FILE)
  if (existsSync(keyPath)) {
    throw new TalkenError('identity_exists', `${options.home} already holds an identity; nothing was changed`)
  }
  const now = options.now ?? Date.now()
  const identity = createIdentity({ now, ...(options.deviceName ? { deviceName: options.deviceName } : {}) })
  const store = openStore(options.home)
  try {
    // The card carries this device's prekey bundle, so a first message can be sent while we are away.
    const e2e = openSessionStore({ store, device: identity.device, now: () => now })
    const card = makeContactCard(identity, { name: options.name, extensions: [e2e.cardExtension()], now })
    const existing = store.getIdentity()
    if (existing && !bytesEqual(existing.accountKey, identity.account.publicKey)) {
      throw new TalkenError(
        'conflict',
        `${options.home} holds a database of another identity; move it away first`,
      )
    }
    // Key file last: a crash in between leaves no key file, and init can simply run again.
    const profile: StoredIdentity = {
      accountKey: identity.account.publicKey,
      name: options.name,
      card: encodeContactCard(card),
      createdAt: now,
    }
    store.setIdentity(profile)
    writePrivateFile(keyPath, encodeKeyFile(identity.secrets, options.passphrase))
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

/** Opens the data directory's store and profile, without loading secret keys. Throws `no_identity`. */
export function openHome(options: HomeOptions): OpenHome {
  if (!existsSync(join(options.home, KEY_FILE))) {
    throw new TalkenError('no_identity', `no identity in ${options.home}: run \`talken init\` first`)
  }
  const store = openStore(options.home)
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
