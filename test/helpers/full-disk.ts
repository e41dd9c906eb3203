/** A store whose disk can fill up, for the tests of what a full disk must not lose. */
import { TalkenError } from '../../src/errors.ts'
import type { Store } from '../../src/store/store.ts'

/** Store writes that a full disk makes fail, unless a test names fewer. */
export const STORE_WRITES: readonly string[] = [
  'addMessage',
  'setMessageState',
  'putOutbox',
  'putCustody',
  'kvSet',
]

/** `store`, whose `writes` throw `storage_full` while `disk.full` is set (as a full disk does). */
export function fillable(store: Store, disk: { full: boolean }, writes = STORE_WRITES): Store {
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop)
      if (typeof value !== 'function') return value
      if (!writes.includes(String(prop))) return value.bind(target)
      return (...args: unknown[]) => {
        if (disk.full) throw new TalkenError('storage_full', 'the disk is full')
        return value.apply(target, args)
      }
    },
  })
}

/**
 * `store`, whose outermost transactions fail as a full disk fails them at commit (SQLite writes a
 * transaction's pages to its log when it commits) while `disk.full` is set: everything the
 * transaction did is undone, and it throws `storage_full`.
 */
export function fullAtCommit(store: Store, disk: { full: boolean }): Store {
  let depth = 0
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop)
      if (typeof value !== 'function') return value
      if (prop !== 'transaction') return value.bind(target)
      return <T>(fn: () => T): T =>
        target.transaction(() => {
          depth++
          try {
            const result = fn()
            if (depth === 1 && disk.full) throw new TalkenError('storage_full', 'the disk is full')
            return result
          } finally {
            depth--
          }
        })
    },
  })
}

/** Every write of a {@link Store}: what makes a transaction write something. */
export const ALL_STORE_WRITES = [
  'setIdentity',
  'putContact',
  'removeContact',
  'addMessage',
  'setMessageState',
  'putOutbox',
  'removeOutbox',
  'putCustody',
  'removeCustody',
  'expireCustody',
  'notePeer',
  'noteAddressFailure',
  'removePeer',
  'kvSet',
  'kvDelete',
] as const satisfies ReadonlyArray<keyof Store>

/**
 * {@link fullAtCommit}, as SQLite fails a transaction on a full disk: only one that wrote
 * something fails at commit (its pages go to the log then); one that wrote nothing commits, and
 * says nothing of the disk. While `disk.full` is set, an outermost transaction that called any of
 * {@link ALL_STORE_WRITES} (and did not throw from it) is undone and throws `storage_full`.
 */
export function fullAtCommitIfWritten(store: Store, disk: { full: boolean }): Store {
  const writes: readonly string[] = ALL_STORE_WRITES
  let depth = 0
  let wrote = false
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop)
      if (typeof value !== 'function') return value
      if (writes.includes(String(prop))) {
        return (...args: unknown[]) => {
          const result = value.apply(target, args)
          wrote = true
          return result
        }
      }
      if (prop !== 'transaction') return value.bind(target)
      return <T>(fn: () => T): T =>
        target.transaction(() => {
          if (depth === 0) wrote = false
          depth++
          try {
            const result = fn()
            if (depth === 1 && disk.full && wrote) throw new TalkenError('storage_full', 'the disk is full')
            return result
          } finally {
            depth--
          }
        })
    },
  })
}
