/**
 * One writer per data directory: the daemon holds the lock while it runs, and a CLI command that
 * writes the store without a daemon (`talken send` while offline) holds it for that moment.
 *
 * The lock itself is the kernel's: an exclusive SQLite lock (POSIX record locks) on
 * `daemon.lock.db`, held on an open transaction for as long as the holder keeps it, and released
 * by the kernel when the holder's process ends however it ends. So no PID is ever judged: a
 * process in another PID namespace (a daemon in a container, a command on the host) and a crash
 * are handled alike, and two processes can never both hold it. Beside it `daemon.lock` names the
 * holder (its PID and role), for the messages and for `lockHolder`; a file left by a holder that
 * died is simply replaced.
 */
import { chmodSync, existsSync, linkSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { TalkenError } from '../errors.ts'

export const LOCK_FILE = 'daemon.lock'
/** The file the kernel lock is taken on. */
export const KERNEL_LOCK_FILE = 'daemon.lock.db'

/** Who holds the lock (pid 0: a process that has just taken it and not named itself yet). */
export interface LockHolder {
  readonly pid: number
  readonly role: 'daemon' | 'cli'
}

/** The kernel locks this process holds, by data directory. */
const held = new Map<string, Database.Database>()

/** How long {@link acquireLockWhenFree} waits for a CLI command holding the lock, by default. */
export const SHORT_HOLDER_WAIT_MS = 10_000
const POLL_MS = 50

/**
 * {@link acquireLock}, waiting up to `waitMs` for a holder that lets go soon: another CLI command
 * (an offline `talken send` holds the lock for the moment it writes), or a lock file being
 * written. Two `talken send` run together, or `talken send` and `talken daemon`, both succeed.
 * A daemon holds the lock for as long as it runs, and this process's own lock is not released
 * while it waits here: those are a `conflict` at once, as is a CLI holder still there at the end.
 */
export async function acquireLockWhenFree(
  home: string,
  role: LockHolder['role'],
  options: { waitMs?: number } = {},
): Promise<() => void> {
  const waitMs = options.waitMs ?? SHORT_HOLDER_WAIT_MS
  const deadline = Date.now() + waitMs
  // A daemon's name may be one left by a daemon that died, read while another command looked at
  // the lock for a moment (`lockHolder`): looked at again a few times before it counts.
  let daemonSeen = 0
  for (;;) {
    try {
      return acquireLock(home, role)
    } catch (err) {
      const holder = err instanceof TalkenError && err.code === 'conflict' ? err.details : undefined
      // Our own lock by what we hold, not by PID: in another PID namespace the holder's PID may
      // be ours (both PID 1 in their containers).
      const own = held.has(home)
      const daemon = !own && holder?.role === 'daemon' && ++daemonSeen <= 3
      const short = daemon || (!own && holder?.role === 'cli')
      if (!short) throw err
      const left = deadline - Date.now()
      if (left <= 0) {
        throw new TalkenError('conflict', `${(err as Error).message} (waited ${waitMs / 1000} s for it)`, {
          details: holder,
        })
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_MS, left)))
    }
  }
}

/** Takes the lock, or throws `conflict` naming the holder. Returns the release function. */
export function acquireLock(home: string, role: LockHolder['role']): () => void {
  const path = join(home, LOCK_FILE)
  const kernel = held.has(home) ? undefined : takeKernelLock(home)
  if (kernel === undefined) {
    const holder = namedHolder(path)
    throw new TalkenError(
      'conflict',
      holder.pid === 0
        ? `another process is taking ${path} right now`
        : holder.role === 'daemon'
          ? `a daemon (pid ${holder.pid}) is running for ${home}`
          : `another talken command (pid ${holder.pid}) is writing ${home}`,
      { details: { pid: holder.pid, role: holder.role } },
    )
  }
  const content = JSON.stringify({ pid: process.pid, role })
  try {
    // Whatever names a holder now is a holder that is gone: the kernel lock was free.
    rmSync(path, { force: true })
    name(path, content)
  } catch (err) {
    kernel.close()
    throw err
  }
  held.set(home, kernel)
  let released = false
  return () => {
    if (released) return
    released = true
    held.delete(home)
    try {
      if (readFileSync(path, 'utf8') === content) unlinkSync(path)
    } catch {
      // already gone
    }
    kernel.close()
  }
}

/** Who holds the lock, if anyone. Creates nothing: without a lock file, nobody ever held it. */
export function lockHolder(home: string): LockHolder | undefined {
  const path = join(home, LOCK_FILE)
  if (held.has(home)) return namedHolder(path)
  if (!existsSync(join(home, KERNEL_LOCK_FILE))) return undefined
  let kernel: Database.Database | undefined
  try {
    kernel = takeKernelLock(home, false)
  } catch {
    // Not ours to lock (a read-only directory, another user's file): what the name says.
    return namedHolderIfAny(path)
  }
  if (kernel === undefined) return namedHolder(path)
  kernel.close()
  return undefined
}

/** The holder `daemon.lock` names, or undefined when there is no such file. */
function namedHolderIfAny(path: string): LockHolder | undefined {
  return existsSync(path) ? namedHolder(path) : undefined
}

/**
 * Takes the kernel lock of `home`: an open exclusive transaction on its lock database. Returns
 * the connection holding it (closing it releases the lock), or undefined when another process
 * (or connection) holds it. `owner` (taking it to hold, not to look) keeps the file 0600.
 */
function takeKernelLock(home: string, owner = true): Database.Database | undefined {
  const path = join(home, KERNEL_LOCK_FILE)
  let db: Database.Database | undefined
  try {
    db = new Database(path, { timeout: 0 })
    if (owner) chmodSync(path, 0o600)
    db.pragma('locking_mode = EXCLUSIVE')
    db.exec('BEGIN EXCLUSIVE')
    return db
  } catch (err) {
    db?.close()
    if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY')) return undefined
    throw new TalkenError('io_failed', `cannot lock ${path}: ${(err as Error).message}`, { cause: err })
  }
}

/** The holder `daemon.lock` names (pid 0 when it names nobody yet: being written). */
function namedHolder(path: string): LockHolder {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as LockHolder
    if (Number.isSafeInteger(h.pid) && h.pid > 0 && (h.role === 'daemon' || h.role === 'cli')) {
      return { pid: h.pid, role: h.role }
    }
  } catch {
    // not written yet
  }
  return { pid: 0, role: 'cli' }
}

/** Writes `daemon.lock` with `content`: written aside and linked, so it never exists empty. */
function name(path: string, content: string): void {
  const aside = `${path}.${process.pid}.new`
  try {
    rmSync(aside, { force: true }) // a new file, never one found there (a link planted to it)
    writeFileSync(aside, content, { mode: 0o600, flag: 'wx' })
    linkSync(aside, path)
  } catch (err) {
    throw new TalkenError('io_failed', `cannot write ${path}: ${(err as Error).message}`, { cause: err })
  } finally {
    try {
      unlinkSync(aside)
    } catch {
      // not written
    }
  }
}
