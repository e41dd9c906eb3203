/**
 * The daemon and the commands that talk to it, run as a user would: real processes, real
 * sockets on loopback, real SQLite. mDNS is off (tests never multicast outside namespaces they
 * made); the second daemon finds the first through --bootstrap.
 */
import assert from 'node:assert/strict'
import { statSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ensureBuilt, talken, talkenAsync, tempDir } from '../helpers/cli.ts'
import { type DaemonProcess, startDaemon } from '../helpers/daemon.ts'

function init(home: string, name: string): string {
  const r = talken(home, ['init', '--name', name, '--json'])
  assert.equal(r.status, 0, r.stderr)
  return (r.json as { link: string }).link
}

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** One request line on the control socket, and the first reply line. */
function rawControl(home: string, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(join(home, 'control.sock'))
    let data = ''
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => {
      data += d
      const at = data.indexOf('\n')
      if (at !== -1) {
        socket.destroy()
        resolve(data.slice(0, at))
      }
    })
    socket.on('error', reject)
    socket.on('close', () => resolve(data))
    socket.write(payload)
  })
}

describe('talken daemon', () => {
  const dir = tempDir('talken-daemon-')
  const ada = join(dir.path, 'ada')
  const bob = join(dir.path, 'bob')
  const running: DaemonProcess[] = []

  before(() => {
    ensureBuilt()
    const adaLink = init(ada, 'Ada')
    const bobLink = init(bob, 'Bob')
    assert.equal(talken(ada, ['add', bobLink]).status, 0)
    assert.equal(talken(bob, ['add', adaLink]).status, 0)
  })

  after(async () => {
    for (const d of running) await d.stop('SIGKILL')
    dir.remove()
  })

  it('without a daemon: send queues to the outbox, peers says nothing runs', () => {
    const sent = talken(ada, ['send', 'Bob', 'written', 'while', 'offline', '--json'])
    assert.equal(sent.status, 0, sent.stderr)
    const result = sent.json as { id: string; state: string; daemon: boolean }
    assert.match(result.id, /^[0-9a-f]{32}$/)
    assert.equal(result.state, 'queued')
    assert.equal(result.daemon, false)
    const status = talken(ada, ['status', '--json'])
    assert.equal((status.json as { running: boolean; outbox: number }).running, false)
    assert.equal((status.json as { outbox: number }).outbox, 1)
    const peers = talken(ada, ['peers', '--json'])
    assert.equal(peers.status, 1)
    assert.equal((peers.json as { error: { code: string } }).error.code, 'not_running')
  })

  it('two daemons link up, the queued message and a new one are delivered, each once', async () => {
    const a = await startDaemon(ada)
    running.push(a)
    const b = await startDaemon(bob, ['--bootstrap', a.ready.addresses[0]!])
    running.push(b)
    assert.equal(statSync(join(ada, 'control.sock')).mode & 0o777, 0o600)
    await until(
      () => {
        const peers = talken(ada, ['peers', '--json']).json as {
          peers: Array<{ mesh: boolean; contact?: string }>
        }
        return peers.peers.some((p) => p.mesh && p.contact === 'Bob')
      },
      10_000,
      'Ada sees Bob',
    )
    const sent = talken(ada, ['send', 'Bob', 'hello', 'Bob', '--wait', '10', '--json'])
    assert.equal(sent.status, 0, sent.stderr)
    assert.equal((sent.json as { state: string }).state, 'delivered')
    await until(
      () => (talken(bob, ['inbox', '--json']).json as { messages: unknown[] }).messages.length === 2,
      10_000,
      'both messages in Bob’s inbox',
    )
    const inbox = talken(bob, ['inbox', '--json']).json as {
      messages: Array<{ text: string; contact: string }>
    }
    assert.deepEqual(
      inbox.messages.map((m) => [m.contact, m.text]),
      [
        ['Ada', 'written while offline'],
        ['Ada', 'hello Bob'],
      ],
    )
    const routes = talken(bob, ['routes', '--json']).json as { routes: Array<{ contact?: string }> }
    assert.ok(routes.routes.some((r) => r.contact === 'Ada'))
    const status = talken(ada, ['status', '--json']).json as { running: boolean; outbox: number }
    assert.equal(status.running, true)
    assert.equal(status.outbox, 0)
  })

  it('a second daemon on the same data directory is refused', async () => {
    await assert.rejects(startDaemon(ada, [], 15_000), /already running|is running/)
  })

  it('the control socket answers bad requests with typed errors and keeps serving', async () => {
    const garbage = JSON.parse(await rawControl(ada, 'this is not json\n'))
    assert.equal(garbage.error.code, 'malformed')
    const unknown = JSON.parse(await rawControl(ada, '{"id":7,"method":"format-disk"}\n'))
    assert.deepEqual([unknown.id, unknown.error.code], [7, 'invalid_argument'])
    const unknownContact = JSON.parse(
      await rawControl(ada, '{"id":8,"method":"send","params":{"to":"Nobody","text":"x"}}\n'),
    )
    assert.equal(unknownContact.error.code, 'unknown_contact')
    const huge = JSON.parse(
      await rawControl(ada, `{"id":9,"method":"status","params":{"pad":"${'x'.repeat(1_100_000)}"}}\n`),
    )
    assert.equal(huge.error.code, 'too_large')
    const status = talken(ada, ['status', '--json'])
    assert.equal((status.json as { running: boolean }).running, true)
  })

  it('inbox --follow prints a message as it arrives', async () => {
    const { spawn } = await import('node:child_process')
    const follow = spawn(
      process.execPath,
      [join(new URL('../..', import.meta.url).pathname, 'bin', 'talken.js'), 'inbox', '--follow', '--json'],
      {
        env: { ...process.env, TALKEN_HOME: bob },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    const lines: string[] = []
    follow.stdout.setEncoding('utf8').on('data', (d: string) => lines.push(...d.split('\n').filter(Boolean)))
    try {
      await until(() => lines.length >= 2, 10_000, 'the existing messages')
      const sent = talken(ada, ['send', 'Bob', 'live', '--wait', '0', '--json'])
      assert.equal(sent.status, 0, sent.stderr)
      await until(() => lines.some((l) => l.includes('"live"')), 10_000, 'the live message')
    } finally {
      follow.kill('SIGTERM')
    }
  })

  it('SIGTERM stops the daemon cleanly: socket and lock gone; a follower and a waiting send are told', async () => {
    const [a, b] = running as [DaemonProcess, DaemonProcess]
    assert.equal(await b.stop('SIGTERM'), 0) // Bob away: what Ada sends now waits
    // With --all the follower prints Ada's own messages too: once it has, it follows the daemon.
    const follow = talkenAsync(ada, ['inbox', '--follow', '--all'])
    await until(() => follow.stdout().length > 0, 10_000, 'the follower to show the inbox')
    const waiting = talkenAsync(ada, ['send', 'Bob', 'never', 'delivered', '--wait', '60', '--json'])
    await until(
      () => talken(ada, ['inbox', '--all', '--json']).stdout.includes('never delivered'),
      10_000,
      'the send',
    )
    assert.equal(await a.stop('SIGTERM'), 0)
    const status = talken(ada, ['status', '--json'])
    assert.equal((status.json as { running: boolean; outbox: number }).running, false)
    assert.equal((status.json as { outbox: number }).outbox, 1)
    // The follower ends with an error, not as if all were well.
    const followed = await follow
    assert.equal(followed.status, 1)
    assert.match(followed.stderr, /daemon stopped/)
    // The waiting send says its message is stored, so nobody sends it again.
    const sent = await waiting
    assert.equal(sent.status, 0, sent.stderr)
    const result = JSON.parse(sent.stdout) as { state: string; interrupted?: boolean }
    assert.equal(result.interrupted, true)
    assert.equal(result.state, 'queued')
  })
})
