/** Shared helpers of the e2e tests: seeded random bytes, two devices, text codecs. */

import type { RandomSource } from '../../src/e2e/primitives.ts'
import { openSessionStore, type SessionStore } from '../../src/e2e/session-store.ts'
import { generateSigningKey, type SigningKeyPair, signingKeyFromSeed } from '../../src/identity/ed25519.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'
import type { Store } from '../../src/store/store.ts'
import { prng } from '../helpers/prng.ts'

/** Replayable random bytes from a seed (tests only: not a CSPRNG). */
export function seededRandom(seed: number): RandomSource {
  const next = prng(seed)
  return (length) => {
    const out = new Uint8Array(length)
    for (let i = 0; i < length; i++) out[i] = Math.floor(next() * 256)
    return out
  }
}

export const text = (s: string) => new TextEncoder().encode(s)
export const str = (b: Uint8Array) => new TextDecoder().decode(b)

/** A device with its store and session store; `reopen` simulates a restart. */
export interface Device {
  readonly key: SigningKeyPair
  readonly store: Store
  e2e: SessionStore
  reopen(): void
}

export function device(seed?: number, now: () => number = () => 1_750_000_000_000): Device {
  const key = seed === undefined ? generateSigningKey() : signingKeyFromSeed(new Uint8Array(32).fill(seed))
  const store = createMemoryStore()
  const d: Device = {
    key,
    store,
    e2e: openSessionStore({ store, device: key, now }),
    reopen() {
      d.e2e = openSessionStore({ store, device: key, now })
    },
  }
  return d
}

/** A copy of a device's e2e state (sessions and prekeys), as an attacker who stole it would hold. */
export function stealState(d: Device): SessionStore {
  const copy = createMemoryStore()
  for (const ns of ['e2e-session', 'e2e-prekeys']) {
    for (const [k, v] of d.store.kvList(ns)) copy.kvSet(ns, k, v)
  }
  return openSessionStore({ store: copy, device: d.key, now: () => 1_750_000_000_000 })
}

/** A generator of random test inputs shared by the fuzz and property tests. */
export function shuffle<T>(items: T[], rand: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}
