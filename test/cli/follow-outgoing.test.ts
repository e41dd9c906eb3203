/**
 * Our own messages in every open view: the daemon's `follow` announces a message a client sent
 * (`{type: "outgoing", …}`, as `inbox` lists it) before its states, and `talken inbox --follow
 * --all` prints one sent from another terminal once, as `talken inbox --all` marks it, in text
 * and in JSON. A copy the node sends again (its recipient could not open the first) is not
 * announced as another message.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { controlMethods } from '../../src/daemon/daemon.ts'
import { resentAs } from '../../src/node/direct-messages.ts'
import { ensureBuilt, talken, tempDir } from '../helpers/cli.ts'
import { type DaemonProcess, startDaemon } from '../helpers/daemon.ts'
import { startResendTrio, until } from '../helpers/nodes.ts'

/** An outgoing line of `inbox --all`: `2026-11-25 09:49 +01:00  me → Bob (queued): text`. */
const outLine = (state: string, text: string) =>
  new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d [+-]\\d\\d:\\d\\d {2}me → Bob \\(${state}\\): ${text}$`)

const bin = join(new URL('../..', import.meta.url).pathname, 'bin', 'talken.js')

/** `talken ...args` left running: what it printed so far, and a way to end it. */
function running(home: string, args: readonly string[]): { stdout(): string; stop(): Promise<void> } {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, TALKEN_HOME: home, TALKEN_PASSPHRASE: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d
  })
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()))
  return {
    stdout: () => out,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT')
      return closed
    },
  }
}

describe('inbox --follow: what we send from another client', () => {
  const dir = tempDir('talken-follow-out-')
  const ada = join(dir.path, 'ada')
  const bob = join(dir.path, 'bob')
  let daemon: DaemonProcess | undefined

  before(async () => {
    ensureBuilt()
    const init = (home: string, name: string): string => {
      const r = talken(home, ['init', '--name', name, '--json'])
      assert.equal(r.status, 0, r.stderr)
      return (r.json as { link: string }).link
    }
    init(ada, 'Ada')
    const bobLink = init(bob, 'Bob')
    assert.equal(talken(ada, ['add', bobLink]).status, 0)
    // Bob stays away: what Ada sends waits, queued.
    daemon = await startDaemon(ada)
  })

  after(async () => {
    await daemon?.stop('SIGKILL')
    dir.remove()
  })

  it('shows a message sent with `talken send` elsewhere once, marked as ours, in text and JSON', async () => {
    const before = talken(ada, ['send', 'Bob', 'written before', '--wait', '0', '--json'])
    assert.equal(before.status, 0, before.stderr)
    const text = running(ada, ['inbox', '--follow', '--all'])
    const json = running(ada, ['inbox', '--follow', '--all', '--json'])
    try {
      await until(
        () => text.stdout().includes('written before') && json.stdout().includes('written before'),
        15_000,
        'the snapshots',
      )
      const sent = talken(ada, ['send', 'Bob', 'sent', 'elsewhere', '--wait', '0', '--json'])
      assert.equal(sent.status, 0, sent.stderr)
      const id = (sent.json as { id: string }).id
      // A second one after it: once it shows, whatever the follow had to say of the first has come.
      assert.equal(talken(ada, ['send', 'Bob', 'and then', '--wait', '0']).status, 0)
      await until(
        () => text.stdout().includes('and then') && json.stdout().includes('and then'),
        15_000,
        'the messages sent elsewhere',
      )

      const lines = text.stdout().trimEnd().split('\n')
      assert.equal(lines.filter((l) => l.includes('written before')).length, 1, text.stdout())
      const shown = lines.filter((l) => l.includes('sent elsewhere'))
      assert.equal(shown.length, 1, text.stdout())
      assert.match(shown[0]!, outLine('queued', 'sent elsewhere'))
      // As `inbox --all` prints it.
      const listed = talken(ada, ['inbox', '--all']).stdout.split('\n')
      assert.ok(listed.includes(shown[0]!), `${shown[0]} in:\n${listed.join('\n')}`)

      const objects = json
        .stdout()
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
      const ours = objects.filter((o) => o.id === id && o.type !== 'state')
      assert.equal(ours.length, 1, json.stdout())
      const snapshot = (
        talken(ada, ['inbox', '--all', '--json']).json as { messages: Array<Record<string, unknown>> }
      ).messages.find((m) => m.id === id)
      assert.ok(snapshot)
      assert.deepEqual(ours[0], snapshot, 'the same object as `inbox --all --json` gives')
      assert.equal(ours[0]?.direction, 'out')
      assert.equal(objects.filter((o) => o.text === 'written before').length, 1, json.stdout())
    } finally {
      await Promise.all([text.stop(), json.stop()])
    }
  })
})

describe("the daemon's follow: outgoing messages", () => {
  it('announces a message a client sends, before its states, and not the copy the node sends again', async (t) => {
    // Bob cannot open Cid's first message, and asks Cid to send it again.
    const { cid } = await startResendTrio(t)
    const abort = new AbortController()
    try {
      const methods = controlMethods(cid)
      const events: Array<Record<string, unknown>> = []
      const following = methods.follow!(
        {},
        { event: (e) => events.push(e as Record<string, unknown>), signal: abort.signal },
      )
      const result = (await methods.send!(
        { to: 'Bob', text: 'hello from Cid', waitMs: 30_000 },
        { event: () => {}, signal: new AbortController().signal },
      )) as { id: string; state: string; replaces?: string }
      assert.equal(result.state, 'delivered')
      const first = String(result.replaces)
      const again = result.id
      const given = events.find((e) => e.type === 'state' && e.id === first && e.state === 'failed')
      assert.equal(resentAs(given?.reason as string | undefined), again, JSON.stringify(events))

      // One announcement, of the message sent, as the conversation lists it, before its states.
      const outgoing = events.filter((e) => e.type === 'outgoing')
      assert.equal(outgoing.length, 1, JSON.stringify(events))
      const stored = cid.store.getMessage(first)!
      assert.deepEqual(outgoing[0], {
        type: 'outgoing',
        id: first,
        conversation: stored.conversation,
        contact: 'Bob',
        direction: 'out',
        text: 'hello from Cid',
        at: stored.createdAt,
        // Its first state: the state events after it say the rest (it was sent at once).
        state: 'queued',
      })
      const announcedAt = events.indexOf(outgoing[0]!)
      const firstState = events.findIndex((e) => e.type === 'state' && e.id === first)
      assert.ok(firstState === -1 || firstState > announcedAt, JSON.stringify(events))
      // The copy sent again only changes state: it takes the first one's place.
      assert.ok(events.some((e) => e.type === 'state' && e.id === again))
      assert.ok(!events.some((e) => e.type !== 'state' && e.id === again), JSON.stringify(events))
      abort.abort()
      assert.equal(await following, null)
    } finally {
      abort.abort()
    }
  })
})
