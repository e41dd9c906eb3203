/**
 * This device's private prekeys, kept in the store (kv namespace `e2e-prekeys`):
 *
 * | Key | Value |
 * |---|---|
 * | `meta` | CBOR `[1, nextSignedPrekeyId, nextOneTimePrekeyId]` |
 * | `bundle` | the current signed {@link PrekeyBundle} (what the contact card carries) |
 * | `signed/<id>` | CBOR `[1, privateKey (32), created (Unix s)]`; the newest {@link MAX_SIGNED_PREKEYS} are kept |
 * | `one-time/<id>` | the 32-byte private key; deleted when a session uses it |
 *
 * and in the namespace `e2e-prekeys-seen`, apart so that listing the keys above stays short however
 * many first contacts came:
 *
 * | Key | Value |
 * |---|---|
 * | `<signedId>/<hex EK>` | empty: an accepted prekey message's ephemeral key, so a replay is refused |
 *
 * IDs are decimal, zero-padded to 10 digits so that `kvList` returns them in order.
 */
import { TalkenError } from '../errors.ts'
import type { Store } from '../store/store.ts'
import { bytesEqual, decodeCbor, encodeCbor, FieldReader } from '../wire/cbor.ts'
import {
  DH_KEY_LENGTH,
  type DhKeyPair,
  dhKeyFromPrivate,
  generateDhKey,
  type RandomSource,
} from './primitives.ts'
import type { PrekeyLookup } from './session.ts'
import {
  decodePrekeyBundle,
  type E2eIdentity,
  encodePrekeyBundle,
  MAX_BUNDLE_ONE_TIME_PREKEYS,
  MAX_PREKEY_ID,
  type PrekeyBundle,
  signPrekeyBundle,
} from './x3dh.ts'

/** The kv namespace of private prekeys. */
export const PREKEY_NAMESPACE = 'e2e-prekeys'
/** The kv namespace of accepted first contacts' ephemeral keys (replay records). */
export const SEEN_NAMESPACE = 'e2e-prekeys-seen'
/** Signed prekeys kept (the current one and older ones that old contact cards still name). */
export const MAX_SIGNED_PREKEYS = 4
/** One-time prekeys held at most; replenishing beyond drops the oldest. */
export const MAX_ONE_TIME_PREKEYS = 100
/** One-time prekeys a new bundle carries by default. */
export const DEFAULT_BUNDLE_ONE_TIME_PREKEYS = 8
/**
 * A signed prekey older than this is replaced ({@link PrekeyStore.rotateIfOlderThan}): with the
 * newest {@link MAX_SIGNED_PREKEYS} kept, a link still works for a first contact for 4 weeks.
 */
export const SIGNED_PREKEY_LIFETIME_MS = 7 * 24 * 3600_000

const id10 = (id: number) => String(id).padStart(10, '0')

/** A stored signed prekey (`signed/<id>`): its private key, and when it was made (Unix s). */
function decodeSignedPrekey(bytes: Uint8Array): { privateKey: Uint8Array; created: number } {
  const r = new FieldReader(decodeCbor(bytes, 128, 'signed prekey'), 'signed prekey', 3)
  r.uint('version', 1, 1)
  return { privateKey: r.bytes('privateKey', DH_KEY_LENGTH), created: r.uint('created') }
}
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

/** Prekey management for one device over a {@link Store}. */
export class PrekeyStore implements PrekeyLookup {
  readonly #store: Store
  readonly #identity: E2eIdentity
  readonly #random: RandomSource
  readonly #now: () => number
  /** Private prekeys already imported, by kv key (deleted with them; a miss just reads the store). */
  readonly #keys = new Map<string, DhKeyPair>()

  constructor(store: Store, identity: E2eIdentity, random: RandomSource, now: () => number) {
    this.#store = store
    this.#identity = identity
    this.#random = random
    this.#now = now
    // Replay records kept beside the keys before they had a namespace of their own: moved once.
    const old = store.kvList(PREKEY_NAMESPACE).filter(([k]) => k.startsWith('seen/'))
    if (old.length > 0) {
      store.transaction(() => {
        for (const [k, v] of old) {
          store.kvSet(SEEN_NAMESPACE, k.slice('seen/'.length), v)
          store.kvDelete(PREKEY_NAMESPACE, k)
        }
      })
    }
  }

  #meta(): [nextSigned: number, nextOneTime: number] {
    const bytes = this.#store.kvGet(PREKEY_NAMESPACE, 'meta')
    if (bytes === undefined) return [1, 1]
    const r = new FieldReader(decodeCbor(bytes, 64, 'prekey meta'), 'prekey meta', 3)
    r.uint('version', 1, 1)
    return [r.uint('nextSigned', MAX_PREKEY_ID, 1), r.uint('nextOneTime', MAX_PREKEY_ID, 1)]
  }

  /**
   * The current bundle, creating the first signed and one-time prekeys when there is none, or
   * when the one stored is another device's (an earlier set-up of this data directory that
   * stopped before its identity was kept): a card must never list prekeys its devices did not sign.
   */
  bundle(): PrekeyBundle {
    const bytes = this.#store.kvGet(PREKEY_NAMESPACE, 'bundle')
    const stored = bytes === undefined ? undefined : decodePrekeyBundle(bytes)
    if (stored !== undefined && bytesEqual(stored.deviceKey, this.#identity.device.publicKey)) return stored
    return this.rotateSignedPrekey()
  }

  /** Makes a new signed prekey (dropping the oldest beyond {@link MAX_SIGNED_PREKEYS}) and a new bundle. */
  rotateSignedPrekey(oneTime = DEFAULT_BUNDLE_ONE_TIME_PREKEYS): PrekeyBundle {
    return this.#store.transaction(() => {
      const [nextSigned, nextOneTime] = this.#meta()
      if (nextSigned > MAX_PREKEY_ID) throw new TalkenError('too_large', 'signed prekey IDs exhausted')
      const key = generateDhKey(this.#random)
      const created = Math.floor(this.#now() / 1000)
      this.#store.kvSet(
        PREKEY_NAMESPACE,
        `signed/${id10(nextSigned)}`,
        encodeCbor([1, key.privateKey, created]),
      )
      this.#store.kvSet(PREKEY_NAMESPACE, 'meta', encodeCbor([1, nextSigned + 1, nextOneTime]))
      const signed = this.#store.kvList(PREKEY_NAMESPACE).filter(([k]) => k.startsWith('signed/'))
      for (const [k] of signed.slice(0, Math.max(0, signed.length - MAX_SIGNED_PREKEYS))) {
        this.#delete(k)
        const seen = `${k.slice('signed/'.length)}/`
        for (const [s] of this.#store.kvList(SEEN_NAMESPACE)) {
          if (s.startsWith(seen)) this.#store.kvDelete(SEEN_NAMESPACE, s)
        }
      }
      return this.replenishOneTimePrekeys(oneTime)
    })
  }

  /**
   * Rotates the signed prekey when the newest one was made `maxAgeMs` or longer ago (or there is
   * none); returns the new bundle, or undefined when the current one is young enough. A first
   * contact that uses no one-time prekey then has forward secrecy from the signed prekey's
   * lifetime on, and the replay records of the retired ones go with them.
   */
  rotateIfOlderThan(maxAgeMs = SIGNED_PREKEY_LIFETIME_MS): PrekeyBundle | undefined {
    const newest = this.#store
      .kvList(PREKEY_NAMESPACE)
      .filter(([k]) => k.startsWith('signed/'))
      .at(-1)
    if (newest !== undefined && this.#now() - decodeSignedPrekey(newest[1]).created * 1000 < maxAgeMs) {
      return undefined
    }
    return this.rotateSignedPrekey()
  }

  /**
   * Makes `count` new one-time prekeys (at most {@link MAX_BUNDLE_ONE_TIME_PREKEYS}) and signs a new
   * bundle listing them: for the contact card, or to send a contact through the session.
   */
  replenishOneTimePrekeys(count = DEFAULT_BUNDLE_ONE_TIME_PREKEYS): PrekeyBundle {
    if (!Number.isInteger(count) || count < 0 || count > MAX_BUNDLE_ONE_TIME_PREKEYS) {
      throw new TalkenError(
        'invalid_argument',
        `0–${MAX_BUNDLE_ONE_TIME_PREKEYS} one-time prekeys per bundle`,
      )
    }
    return this.#store.transaction(() => {
      const [nextSigned, nextOneTime] = this.#meta()
      const signedEntries = this.#store.kvList(PREKEY_NAMESPACE).filter(([k]) => k.startsWith('signed/'))
      const newest = signedEntries.at(-1)
      if (newest === undefined) return this.rotateSignedPrekey(count)
      const signedPrekeyId = Number(newest[0].slice('signed/'.length))
      const signedPrekey = this.signedPrekey(signedPrekeyId)!
      if (nextOneTime + count > MAX_PREKEY_ID)
        throw new TalkenError('too_large', 'one-time prekey IDs exhausted')
      const oneTimePrekeys = []
      for (let i = 0; i < count; i++) {
        const key = generateDhKey(this.#random)
        const id = nextOneTime + i
        this.#store.kvSet(PREKEY_NAMESPACE, `one-time/${id10(id)}`, key.privateKey)
        oneTimePrekeys.push({ id, key: key.publicKey })
      }
      this.#store.kvSet(PREKEY_NAMESPACE, 'meta', encodeCbor([1, nextSigned, nextOneTime + count]))
      const held = this.#store.kvList(PREKEY_NAMESPACE).filter(([k]) => k.startsWith('one-time/'))
      for (const [k] of held.slice(0, Math.max(0, held.length - MAX_ONE_TIME_PREKEYS))) this.#delete(k)
      const bundle = signPrekeyBundle(this.#identity, {
        signedPrekeyId,
        signedPrekey: signedPrekey.publicKey,
        created: Math.floor(this.#now() / 1000),
        oneTimePrekeys,
      })
      this.#store.kvSet(PREKEY_NAMESPACE, 'bundle', encodePrekeyBundle(bundle))
      return bundle
    })
  }

  /** How many one-time prekeys are still held. */
  oneTimePrekeysLeft(): number {
    return this.#store.kvList(PREKEY_NAMESPACE).filter(([k]) => k.startsWith('one-time/')).length
  }

  #delete(key: string): void {
    this.#keys.delete(key)
    this.#store.kvDelete(PREKEY_NAMESPACE, key)
  }

  #load(key: string, privateKey: (bytes: Uint8Array) => Uint8Array): DhKeyPair | undefined {
    const bytes = this.#store.kvGet(PREKEY_NAMESPACE, key)
    if (bytes === undefined) {
      this.#keys.delete(key)
      return undefined
    }
    let pair = this.#keys.get(key)
    if (pair === undefined) {
      pair = dhKeyFromPrivate(privateKey(bytes))
      this.#keys.set(key, pair)
      // Read inside a transaction that is then undone (a rotation, say), the key may never have
      // been stored: the next one under the same ID must not find this one cached.
      this.#store.onRollback(() => this.#keys.delete(key))
    }
    return pair
  }

  signedPrekey(id: number): DhKeyPair | undefined {
    return this.#load(`signed/${id10(id)}`, (bytes) => decodeSignedPrekey(bytes).privateKey)
  }

  oneTimePrekey(id: number): DhKeyPair | undefined {
    return this.#load(`one-time/${id10(id)}`, (bytes) => bytes)
  }

  /** True when a prekey message with this ephemeral key was accepted already. */
  seen(signedPrekeyId: number, ephemeral: Uint8Array): boolean {
    return this.#store.kvGet(SEEN_NAMESPACE, `${id10(signedPrekeyId)}/${hex(ephemeral)}`) !== undefined
  }

  /** Records an accepted prekey message: its one-time prekey is gone and its ephemeral key seen. */
  consume(signedPrekeyId: number, oneTimePrekeyId: number, ephemeral: Uint8Array): void {
    if (oneTimePrekeyId !== 0) this.#delete(`one-time/${id10(oneTimePrekeyId)}`)
    this.#store.kvSet(SEEN_NAMESPACE, `${id10(signedPrekeyId)}/${hex(ephemeral)}`, new Uint8Array(0))
  }
}
