/**
 * The data directory's lock (src/daemon/lock.ts): a live holder is respected, a dead one, or a PID
 * now used by another process, is not; a CLI command holding it is waited for a while.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, watch, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import {
  acquireLock,
  acquireLockWhenFree,
  KERNEL_LOCK_FILE,
  LOCK_FILE,
  lockHolder,
} from '../../src/daemon/lock.ts'
import { isTalkenError } from '../../src/errors.ts'
import { ensureBuilt, talken, talkenAsync } from '../helpers/cli.ts'
import { startDaemon } from '../helpers/daemon.ts'
import { rejectsCode, throwsCode } from '../helpers/errors.ts'

const HOLDER = fileURLToPath(new URL('../helpers/lock-holder.ts', import.meta.url))

/**
 * Another process holding the lock of `home` (in a PID namespace of its own with `ownPids`),
 * once it says so; and a promise of its exit.
 */
async function holder(home: string, role: 'daemon' | 'cli', options: { ownPids?: boolean } = {}) {
  const args = ['--import', 'tsx', HOLDER, home, role]
  const child = options.ownPids
    ? spawn('unshare', ['-p', '-f', '--mount-proc', '--kill-child', process.execPath, ...args], {
        stdio: ['ignore', 'pipe', 'inherit'],
      })
    : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  await new Promise<void>((resolve, reject) => {
    let out = ''
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d
      if (out.includes('held')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`the lock holder exited (${code})`)))
    setTimeout(() => reject(new Error('the lock holder did not take the lock')), 30_000).unref()
  })
  return { child, exited }
}

/** What `promise` has come to so far (read it at any time); undefined while it is pending. */
function outcomeOf<T>(promise: Promise<T>): () => { value?: T; error?: unknown } | undefined {
  let outcome: { value?: T; error?: unknown } | undefined
  promise.then(
    (value) => {
      outcome = { value }
    },
    (error: unknown) => {
      outcome = { error }
    },
  )
  return () => outcome
}

/**
 * Counts the tries at `home`'s lock, by this process or any other: each try (acquireLock) sets
 * the mode of the kernel lock file before it tries to lock it, which the directory's watch sees.
 */
function lockTries(home: string): { count(): number; close(): void } {
  let count = 0
  const watcher = watch(home, (_event, file) => {
    if (file === KERNEL_LOCK_FILE) count++
  })
  return { count: () => count, close: () => watcher.close() }
}

/** Resolves once `check` holds, looking every 20 ms; rejects after `ms`. */
async function until(check: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
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
    assert.deepEqual(lockHolder(home), { pid: process.pid, role: 'daemon' })
    throwsCode(() => acquireLock(home, 'cli'), 'conflict')
    release()
    assert.equal(existsSync(lock), false)
    assert.equal(lockHolder(home), undefined)
    const again = acquireLock(home, 'cli')
    assert.equal(JSON.parse(readFileSync(lock, 'utf8')).pid, process.pid)
    assert.equal(statSync(join(home, KERNEL_LOCK_FILE)).mode & 0o777, 0o600)
    again()
  })

  it('a name left by a holder that is gone is replaced, whatever PID it names (this one, 1, or none)', () => {
    for (const text of [
      JSON.stringify({ pid: process.pid, role: 'daemon' }), // a daemon that is PID 1 in its container each time
      JSON.stringify({ pid: 1, role: 'daemon' }),
      JSON.stringify({ pid: 2 ** 22 + 12_345, role: 'daemon' }),
      '',
    ]) {
      writeFileSync(lock, text)
      assert.equal(lockHolder(home), undefined)
      acquireLock(home, 'daemon')()
    }
  })

  it('a holder in another process is respected while it lives; killed, its lock is free at once', async (t) => {
    const h = await holder(home, 'daemon')
    t.after(() => h.child.kill('SIGKILL'))
    assert.deepEqual(lockHolder(home), { pid: h.child.pid, role: 'daemon' })
    const err = throwsCode(() => acquireLock(home, 'cli'), 'conflict')
    assert.match(err.message, new RegExp(`a daemon \\(pid ${h.child.pid}\\)`))
    h.child.kill('SIGKILL')
    await h.exited
    assert.equal(lockHolder(home), undefined)
    acquireLock(home, 'daemon')()
  })

  it('a holder in a PID namespace of its own (a daemon in a container) is respected too', async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root, for a PID namespace')
      return
    }
    const h = await holder(home, 'daemon', { ownPids: true })
    t.after(() => h.child.kill('SIGKILL'))
    // It names itself PID 1 (in its namespace), a PID that is alive here too, but another process.
    assert.equal(lockHolder(home)?.pid, 1)
    throwsCode(() => acquireLock(home, 'daemon'), 'conflict')
    h.child.kill('SIGKILL') // and unshare kills the holder it forked
    await h.exited
    const deadline = Date.now() + 10_000
    while (lockHolder(home) !== undefined && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20))
    acquireLock(home, 'daemon')()
  })

  it('a CLI command holding the lock is waited for, and the lock taken once it lets go', async (t) => {
    const h = await holder(home, 'cli')
    t.after(() => h.child.kill('SIGKILL'))
    const tries = lockTries(home)
    t.after(() => tries.close())
    const taking = acquireLockWhenFree(home, 'daemon', { waitMs: 60_000 })
    const outcome = outcomeOf(taking)
    // It tried, found the lock held, and tried again: it waits, and has not given up.
    await until(() => tries.count() >= 2 || outcome() !== undefined, 'two tries at the lock')
    assert.equal(outcome(), undefined, 'still waiting')
    assert.equal(lockHolder(home)?.role, 'cli')
    h.child.kill('SIGKILL')
    await h.exited
    const release = await taking
    assert.equal(lockHolder(home)?.role, 'daemon')
    release()
  })

  it('a daemon holding the lock is a conflict, not waited for; a CLI command that keeps it, once the wait is over', async (t) => {
    const daemon = await holder(home, 'daemon')
    t.after(() => daemon.child.kill('SIGKILL'))
    await rejectsCode(() => acquireLockWhenFree(home, 'cli', { waitMs: 60_000 }), 'conflict')
    daemon.child.kill('SIGKILL')
    await daemon.exited
    const cli = await holder(home, 'cli')
    t.after(() => cli.child.kill('SIGKILL'))
    const err = await rejectsCode(() => acquireLockWhenFree(home, 'daemon', { waitMs: 100 }), 'conflict')
    assert.match(err.message, /another talken command .*waited/)
    cli.child.kill('SIGKILL')
    await cli.exited
    // This process's own lock is not waited for: it cannot be released while we wait.
    const own = acquireLock(home, 'cli')
    const again = outcomeOf(acquireLockWhenFree(home, 'cli', { waitMs: 60_000 }))
    // At once, not after the 60 s it would wait for another holder: the bound here is far below.
    await until(() => again() !== undefined, 'the refusal', 30_000)
    assert.ok(isTalkenError(again()?.error, 'conflict'))
    own()
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
    const tries = lockTries(home)
    let released = false
    let readyWhileHeld = false
    try {
      const starting = startDaemon(home, [], 60_000)
      starting.then(
        () => {
          readyWhileHeld = !released
        },
        () => {},
      ) // awaited below
      // The daemon met the held lock and tried it again: it is waiting for it.
      await until(() => tries.count() >= 2, 'the daemon to try the lock twice')
      released = true
      release()
      const daemon = await starting
      assert.equal(readyWhileHeld, false, 'the daemon was ready before the lock was free')
      assert.equal(lockHolder(home)?.role, 'daemon')
      assert.equal(await daemon.stop('SIGTERM'), 0)
    } finally {
      tries.close()
      release()
    }
  })
})
