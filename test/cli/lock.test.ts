/**
 * The data directory's lock (src/daemon/lock.ts): a live holder is respected, a dead one, or a PID
 * now used by another process, is not.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir, uptime } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { acquireLock, LOCK_FILE, lockHolder } from '../../src/daemon/lock.ts'
import { throwsCode } from '../helpers/errors.ts'

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

  it('an unreadable lock is held while fresh (being written), and stale once old', () => {
    writeFileSync(lock, '')
    throwsCode(() => acquireLock(home, 'cli'), 'conflict')
    const old = (Date.now() - 60_000) / 1000
    utimesSync(lock, old, old)
    acquireLock(home, 'cli')()
  })
})
