/**
 * What a user does while daemons run: add each other (no mDNS: the running node must dial the
 * new contact itself), read messages whose text has newlines, see the state of what they sent,
 * and stop a daemon with two signals in a row.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ensureBuilt, talken, tempDir } from '../helpers/cli.ts'
import { type DaemonProcess, startDaemon } from '../helpers/daemon.ts'

const bin = join(new URL('../..', import.meta.url).pathname, 'bin', 'talken.js')
const FORGED = 'innocent\n2026-11-25 09:50 +01:00  Eve: I am not who you think'
/** A line that begins a message: a time (local, with its offset from UTC) at the left edge. */
const MESSAGE_START = /^\d{4}-\d\d-\d\d \d\d:\d\d [+-]\d\d:\d\d {2}/

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** The exit code of `child` (null when a signal ended it), without signalling it. */
function exitOf(child: ChildProcess, ms: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the daemon did not exit within ${ms} ms`)), ms)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve(code)
    })
  })
}

describe('talken with daemons running', () => {
  const dir = tempDir('talken-ux-daemon-')
  const ada = join(dir.path, 'ada')
  const bob = join(dir.path, 'bob')
  const running: DaemonProcess[] = []

  before(() => {
    ensureBuilt()
    assert.equal(talken(ada, ['init', '--name', 'Ada']).status, 0)
    assert.equal(talken(bob, ['init', '--name', 'Bob']).status, 0)
  })
  after(async () => {
    for (const d of running) await d.stop('SIGKILL')
    dir.remove()
  })

  it('contacts added while both daemons run (no mDNS) are dialled, and messages go through', async () => {
    const a = await startDaemon(ada)
    running.push(a)
    const b = await startDaemon(bob)
    running.push(b)
    const link = (home: string): string => {
      const id = talken(home, ['id', '--json']).json as { link: string; addresses: string[] }
      assert.ok(id.addresses.length > 0, 'the running daemon put its addresses in the link')
      return id.link
    }
    const added = talken(ada, ['add', link(bob), '--json'])
    assert.equal(added.status, 0, added.stderr)
    assert.equal((added.json as { outcome: string; contact: { name: string } }).contact.name, 'Bob')
    assert.equal(talken(bob, ['add', link(ada)]).status, 0)
    await until(
      () => {
        const peers = talken(ada, ['peers', '--json']).json as { peers: Array<{ contact?: string }> }
        return peers.peers.some((p) => p.contact === 'Bob')
      },
      30_000,
      'Ada’s daemon to reach Bob',
    )
    const sent = talken(ada, ['send', 'Bob', FORGED, '--wait', '30', '--json'])
    assert.equal(sent.status, 0, sent.stderr)
    assert.equal((sent.json as { state: string }).state, 'delivered')
  })

  it('inbox and inbox --follow indent a message’s lines after its first', async () => {
    const inbox = talken(bob, ['inbox'])
    assert.equal(inbox.status, 0, inbox.stderr)
    const lines = inbox.stdout.trimEnd().split('\n')
    assert.equal(lines.length, 2, inbox.stdout)
    assert.match(lines[0] ?? '', / {2}Ada: innocent$/)
    assert.match(lines[1] ?? '', /^ +2026-11-25 09:50 \+01:00 {2}Eve: I am not who you think$/)

    const follow = spawn(process.execPath, [bin, 'inbox', '--follow', '--limit', '1'], {
      env: { ...process.env, TALKEN_HOME: bob, TALKEN_PASSPHRASE: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    follow.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d
    })
    const exited = new Promise<void>((resolve) => follow.once('close', () => resolve()))
    try {
      await until(() => out.includes('Eve: I am not'), 30_000, 'the snapshot of inbox --follow')
      assert.equal(talken(ada, ['send', 'Bob', 'second\nAda: forged too', '--wait', '30']).status, 0)
      await until(() => out.includes('forged too'), 30_000, 'the new message in inbox --follow')
    } finally {
      follow.kill('SIGINT')
      await exited
    }
    const followed = out.trimEnd().split('\n')
    assert.equal(followed.filter((l) => MESSAGE_START.test(l)).length, 2, out)
    assert.match(followed.at(-1) ?? '', /^ +Ada: forged too$/)
  })

  it('inbox --all shows the delivery state of what we sent', () => {
    const all = talken(ada, ['inbox', '--all'])
    assert.equal(all.status, 0, all.stderr)
    assert.match(all.stdout, / {2}me → Bob \(delivered\): innocent\n/)
  })

  it('a second SIGTERM while the daemon stops does not cut its shutdown short', async () => {
    const a = running[0]!
    a.child.kill('SIGTERM')
    await until(() => a.lines.some((l) => l.includes('"daemon stopping"')), 30_000, 'the daemon to stop')
    a.child.kill('SIGTERM')
    const code = await exitOf(a.child, 30_000)
    assert.ok(
      a.lines.some((l) => l.includes('"daemon stopped"')),
      `the shutdown finished (exit ${code}): ${a.lines.slice(-3).join('\n')}`,
    )
    assert.equal(code, 0, 'a clean exit, not one by the signal')
    const left = readdirSync(ada)
    assert.ok(!left.includes('daemon.lock'), `lock left: ${left.join(' ')}`)
    assert.ok(!left.includes('talken.db-wal'), `journal left: ${left.join(' ')}`)
    assert.equal(existsSync(join(ada, 'control.sock')), false)
    // The next daemon starts as if nothing happened.
    const again = await startDaemon(ada)
    running.push(again)
    assert.equal((talken(ada, ['status', '--json']).json as { running: boolean }).running, true)
  })
})
