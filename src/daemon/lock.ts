/**
 * One writer per data directory: the daemon holds `daemon.lock` while it runs, and a CLI command
 * that writes the store without a daemon (`talken send` while offline) holds it for that moment.
 * The file names the holder's process; a lock whose process is gone is stale and taken over.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { TalkenError } from '../errors.ts'

export const LOCK_FILE = 'daemon.lock'

/** Who holds the lock. */
export interface LockHolder {
  readonly pid: number
  readonly role: 'daemon' | 'cli'
}

/** Takes the lock, or throws `conflict` naming the live holder. Returns the release function. */
export function acquireLock(home: string, role: LockHolder['role']): () => void {
  const path = join(home, LOCK_FILE)
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600)
      try {
        writeSync(fd, JSON.stringify({ pid: process.pid, role }))
      } finally {
        closeSync(fd)
      }
      let released = false
      return () => {
        if (released) return
        released = true
        try {
          unlinkSync(path)
        } catch {
          // already gone
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new TalkenError('io_failed', `cannot create ${path}: ${(err as Error).message}`, { cause: err })
      }
    }
    const holder = lockHolder(home)
    if (holder !== undefined) {
      throw new TalkenError(
        'conflict',
        holder.role === 'daemon'
          ? `a daemon (pid ${holder.pid}) is running for ${home}`
          : `another talken command (pid ${holder.pid}) is writing ${home}`,
        { details: { pid: holder.pid, role: holder.role } },
      )
    }
    try {
      unlinkSync(path) // stale: its process is gone
    } catch {
      // someone else removed it first; try again
    }
  }
  throw new TalkenError('conflict', `cannot take ${path}`)
}

/** The live holder of the lock, if any. */
export function lockHolder(home: string): LockHolder | undefined {
  let holder: LockHolder
  try {
    holder = JSON.parse(readFileSync(join(home, LOCK_FILE), 'utf8')) as LockHolder
  } catch {
    return undefined
  }
  if (!Number.isSafeInteger(holder.pid) || holder.pid <= 0) return undefined
  try {
    process.kill(holder.pid, 0)
    return holder
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? holder : undefined
  }
}
