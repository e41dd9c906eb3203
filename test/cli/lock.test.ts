/**
 * The data directory's lock (src/daemon/lock.ts): a live holder is respected, a dead one, or a PID
 * now used by another process, is not; a CLI command holding it is waited for a while.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir, uptime } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { acquireLock, acquireLockWhenFree, LOCK_FILE, lockHolder } from '../../src/daemon/lock.ts'
import { isTalkenError } from '../../src/errors.ts'
import { ensureBuilt, talken, talkenAsync } from '../helpers/cli.ts'
import { startDaemon } from '../helpers/daemon.ts'
import { rejectsCode, throwsCode } from '../helpers/errors.ts'

/** A lock file naming the live process `pid`, as that process would write it. */
function lockOf(pid: number, role: 'daemon' | 'cli'): string {
  const identity: { start?: number; boot?: string } = {}
  if (existsSync(`/proc/${pid}/stat`)) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    identity.start = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
    identity.boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  }
  return JSON.stringify({ pid, role, ...identity })
}

/** A process that lives until killed (at most 60 s), and a promise of its exit. */
function sleeper() {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return { child, pid: child.pid!, exited }
}

/** What `promise` has come to once pending I/O callbacks ran (before any timer of 1 ms or more). */
async function outcomeSoon<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown } | undefined> {
  let outcome: { value?: T; error?: unknown } | undefined
  promise.then(
    (value) => {
      outcome = { value }
    },
    (error: unknown) => {
      outcome = { error }
    },
  )
  await new Promise((resolve) => setImmediate(resolve))
  return outcome
}

describe('data directory lock', () => {
  let home: string
  let lock: string
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'talken-lock-'))
    lock = join(home, LOCK_FILE)
  })
  afterEach(() => rmSync(home, { recursive: true, force: true }))

  it('is taken once, names its holder, and is gone when released', () => {
    const release = acquireLock(home, 'daemon')
    assert.deepEqual(
      { pid: lockHolder(home)?.pid, role: lockHolder(home)?.role },
      { pid: process.pid, role: 'daemon' },
    )
    throwsCode(() => acquireLock(home, 'cli'), 'conflict')
    release()
    assert.equal(existsSync(lock), false)
    const again = acquireLock(home, 'cli')
    const written = JSON.parse(readFileSync(lock, 'utf8'))
    assert.equal(written.pid, process.pid)
    if (existsSync('/proc/self/stat'))
      assert.ok(Number.isSafeInteger(written.start) && typeof written.boot === 'string')
    again()
  })

  it("a lock naming this process's PID from an earlier life is stale (a daemon that is PID 1 in its container)", () => {
    writeFileSync(lock, JSON.stringify({ pid: process.pid, role: 'daemon' }))
    assert.equal(lockHolder(home), undefined)
    acquireLock(home, 'daemon')()
  })

  it('a lock written before the machine last started is stale, whoever has its PID now', () => {
    // PID 1 is always alive; without /proc this lock would name no start time to compare.
    writeFileSync(lock, JSON.stringify({ pid: 1, role: 'daemon' }))
    const longAgo = new Date(Date.now() - uptime() * 1000 - 3_600_000)
    utimesSync(lock, longAgo, longAgo)
    assert.equal(lockHolder(home), undefined)
    acquireLock(home, 'daemon')()
  })

  it('a lock naming a dead process is taken over', () => {
    writeFileSync(lock, JSON.stringify({ pid: 2 ** 22 + 12_345, role: 'daemon' }))
    acquireLock(home, 'daemon')()
  })

  it('a live PID started at another time is another process: stale; at the same time, the holder', async (t) => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30_000)'], { stdio: 'ignore' })
    t.after(() => child.kill('SIGKILL'))
    const pid = child.pid!
    if (!existsSync(`/proc/${pid}/stat`)) {
      t.skip('no /proc here: only the PID is checked')
      return
    }
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const start = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    writeFileSync(lock, JSON.stringify({ pid, role: 'daemon', start: start + 1, boot }))
    assert.equal(lockHolder(home), undefined, 'a reused PID')
    writeFileSync(lock, JSON.stringify({ pid, role: 'daemon', start, boot: 'another-boot' }))
    assert.equal(lockHolder(home), undefined, 'the PID in an earlier boot')
    writeFileSync(lock, JSON.stringify({ pid, role: 'daemon', start, boot }))
    assert.equal(lockHolder(home)?.pid, pid)
    throwsCode(() => acquireLock(home, 'cli'), 'conflict')
  })

  it('a CLI command holding the lock is waited for, and the lock taken once it lets go', async (t) => {
    const holder = sleeper()
    t.after(() => holder.child.kill('SIGKILL'))
    writeFileSync(lock, lockOf(holder.pid, 'cli'))
    const taking = acquireLockWhenFree(home, 'daemon', { waitMs: 60_000 })
    assert.equal(await outcomeSoon(taking), undefined, 'still waiting')
    holder.child.kill('SIGKILL')
    await holder.exited
    const release = await taking
    assert.equal(lockHolder(home)?.role, 'daemon')
    release()
  })

  it('a daemon holding the lock is a conflict at once; a CLI command that keeps it, once the wait is over', async (t) => {
    const holder = sleeper()
    t.after(() => holder.child.kill('SIGKILL'))
    writeFileSync(lock, lockOf(holder.pid, 'daemon'))
    const outcome = await outcomeSoon(acquireLockWhenFree(home, 'cli', { waitMs: 60_000 }))
    assert.ok(isTalkenError(outcome?.error, 'conflict'), `at once: ${String(outcome?.error)}`)
    writeFileSync(lock, lockOf(holder.pid, 'cli'))
    const err = await rejectsCode(() => acquireLockWhenFree(home, 'daemon', { waitMs: 100 }), 'conflict')
    assert.match(err.message, /another talken command .*waited/)
    // This process's own lock is not waited for: it cannot be released while we wait.
    rmSync(lock)
    const own = acquireLock(home, 'cli')
    const again = await outcomeSoon(acquireLockWhenFree(home, 'cli', { waitMs: 60_000 }))
    assert.ok(isTalkenError(again?.error, 'conflict'))
    own()
  })

  it('an unreadable lock is held while fresh (being written), and stale once old', () => {
    writeFileSync(lock, '')
    throwsCode(() => acquireLock(home, 'cli'), 'conflict')
    const old = (Date.now() - 60_000) / 1000
    utimesSync(lock, old, old)
    acquireLock(home, 'cli')()
  })
})

describe('commands that meet at the lock', () => {
  let home: string
  beforeEach(() => {
    ensureBuilt()
    home = mkdtempSync(join(tmpdir(), 'talken-lock-cli-'))
    assert.equal(talken(home, ['init', '--name', 'Ada']).status, 0)
    const bob = mkdtempSync(join(tmpdir(), 'talken-lock-cli-bob-'))
    const link = (talken(bob, ['init', '--name', 'Bob', '--json']).json as { link: string }).link
    rmSync(bob, { recursive: true, force: true })
    assert.equal(talken(home, ['add', link]).status, 0)
  })
  afterEach(() => rmSync(home, { recursive: true, force: true }))

  it('offline sends run together all succeed', async () => {
    const sends = Array.from({ length: 6 }, (_, i) =>
      talkenAsync(home, ['send', 'Bob', `message ${i}`, '--json']),
    )
    const results = await Promise.all(sends)
    for (const r of results) assert.equal(r.status, 0, r.stdout + r.stderr)
    const inbox = talken(home, ['inbox', '--all', '--json']).json as { messages: unknown[] }
    assert.equal(inbox.messages.length, 6)
  })

  it('a daemon started while a CLI command holds the lock starts once it is free', async () => {
    const release = acquireLock(home, 'cli') // as an offline send holds it, from this process
    const starting = startDaemon(home)
    starting.catch(() => {}) // awaited below
    // Long enough for the daemon to reach the lock on most machines; on a slower one it finds
    // the lock free, and the test shows nothing (it cannot fail for it).
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    release()
    const daemon = await starting
    assert.equal(await daemon.stop('SIGTERM'), 0)
  })
})
