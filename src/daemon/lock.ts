/**
 * One writer per data directory: the daemon holds `daemon.lock` while it runs, and a CLI command
 * that writes the store without a daemon (`talken send` while offline) holds it for that moment.
 *
 * The file names the holder's process: its PID and, on Linux, when it started and in which boot,
 * so that a PID used again by another process (after a crash and a reboot, or a daemon that is
 * PID 1 in its container every time) does not pass for the holder. A lock whose process is gone
 * is stale and taken over. The file appears with its content at once (written aside, then
 * linked), and a stale one is taken over by renaming it aside first, so two processes that both
 * find it stale cannot both end up holding the lock.
 */
import { linkSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { uptime } from 'node:os'
import { join } from 'node:path'
import { TalkenError } from '../errors.ts'

export const LOCK_FILE = 'daemon.lock'

/** A lock file that cannot be read is taken for one being written until it is this old. */
const UNREADABLE_GRACE_MS = 5_000

/** Who holds the lock. */
export interface LockHolder {
  readonly pid: number
  readonly role: 'daemon' | 'cli'
  /** When the process started, in clock ticks since boot (Linux `/proc/<pid>/stat`), if known. */
  readonly start?: number
  /** The boot it started in (Linux `/proc/sys/kernel/random/boot_id`), if known. */
  readonly boot?: string
}

/** Locks this process holds, by path: its own PID in a lock file means another life but these. */
const held = new Set<string>()

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
  for (;;) {
    try {
      return acquireLock(home, role)
    } catch (err) {
      const holder = err instanceof TalkenError && err.code === 'conflict' ? err.details : undefined
      const short = holder?.role === 'cli' && holder.pid !== process.pid
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

/** Takes the lock, or throws `conflict` naming the live holder. Returns the release function. */
export function acquireLock(home: string, role: LockHolder['role']): () => void {
  const path = join(home, LOCK_FILE)
  const content = JSON.stringify({ pid: process.pid, role, ...processIdentity(process.pid) })
  for (let attempt = 0; attempt < 3; attempt++) {
    if (create(path, content)) {
      held.add(path)
      let released = false
      return () => {
        if (released) return
        released = true
        held.delete(path)
        try {
          unlinkSync(path)
        } catch {
          // already gone
        }
      }
    }
    const seen = readLock(path)
    const holder = seen === undefined ? undefined : liveHolder(path, seen)
    if (holder !== undefined) {
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
    if (seen !== undefined) takeOver(path, seen.text)
  }
  throw new TalkenError('conflict', `cannot take ${path}`)
}

/** The live holder of the lock, if any. */
export function lockHolder(home: string): LockHolder | undefined {
  const path = join(home, LOCK_FILE)
  const seen = readLock(path)
  return seen === undefined ? undefined : liveHolder(path, seen)
}

/** Creates the lock file with `content`; false when one exists. */
function create(path: string, content: string): boolean {
  const aside = `${path}.${process.pid}.new`
  try {
    rmSync(aside, { force: true }) // a new file, never one found there (a link planted to it)
    writeFileSync(aside, content, { mode: 0o600, flag: 'wx' })
    linkSync(aside, path) // atomic, and fails when the lock exists
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw new TalkenError('io_failed', `cannot create ${path}: ${(err as Error).message}`, { cause: err })
  } finally {
    try {
      unlinkSync(aside)
    } catch {
      // not written
    }
  }
}

/** How far the boot time that uptime implies may be off, in milliseconds. */
const BOOT_SLACK_MS = 60_000

interface SeenLock {
  readonly text: string
  readonly holder: LockHolder | undefined
  readonly mtimeMs: number
}

/** The lock file as it is now; undefined when there is none. */
function readLock(path: string): SeenLock | undefined {
  let text: string
  let mtimeMs: number
  try {
    mtimeMs = statSync(path).mtimeMs
    text = readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
  return { text, holder: parseHolder(text), mtimeMs }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const h = JSON.parse(text) as LockHolder
    if (!Number.isSafeInteger(h.pid) || h.pid <= 0 || (h.role !== 'daemon' && h.role !== 'cli'))
      return undefined
    return h
  } catch {
    return undefined
  }
}

/** The holder a lock file names, if that process is still the one that took it. */
function liveHolder(path: string, seen: SeenLock): LockHolder | undefined {
  const h = seen.holder
  if (h === undefined) {
    // Unreadable: being written by an older Talken, or left half-written by a crash. Named as
    // pid 0: nobody in particular.
    return Date.now() - seen.mtimeMs < UNREADABLE_GRACE_MS ? { pid: 0, role: 'cli' } : undefined
  }
  if (h.pid === process.pid) return held.has(path) ? h : undefined
  try {
    process.kill(h.pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined
  }
  // Written before the machine last started: its writer died with it, whoever has the PID now.
  // Only for a lock that names no boot (written where there is no /proc): that is the only sign
  // of a PID reused after a restart there, and a boot ID is exact where there is one (a clock
  // set forward after boot, on a device without a real-time clock, could fool this test).
  if (h.boot === undefined && seen.mtimeMs < Date.now() - uptime() * 1000 - BOOT_SLACK_MS) return undefined
  const now = processIdentity(h.pid)
  if (h.boot !== undefined && now.boot !== undefined && h.boot !== now.boot) return undefined
  if (h.start !== undefined && now.start !== undefined && h.start !== now.start) return undefined
  return h
}

/** Removes a stale lock, unless someone replaced it since it was read as `text`. */
function takeOver(path: string, text: string): void {
  const aside = `${path}.${process.pid}.stale`
  try {
    renameSync(path, aside) // whoever renames first has it
  } catch {
    return // gone already: someone else took it over
  }
  let moved = ''
  try {
    moved = readFileSync(aside, 'utf8')
  } catch {
    // vanished: nothing to put back
  }
  if (moved !== text) {
    // A fresh lock, taken since we read the stale one: put it back.
    try {
      linkSync(aside, path)
    } catch {
      // another lock is there by now
    }
  }
  try {
    unlinkSync(aside)
  } catch {
    // already gone
  }
}

/** When process `pid` started and in which boot, where the system says (Linux); else nothing. */
function processIdentity(pid: number): { start?: number; boot?: string } {
  const out: { start?: number; boot?: string } = {}
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const start = Number(fields[19]) // field 22, starttime
    if (Number.isSafeInteger(start)) out.start = start
  } catch {
    // not Linux, or the process is gone
  }
  try {
    out.boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    // not Linux
  }
  return out
}
