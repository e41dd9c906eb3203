/**
 * The terminal client in a real terminal (tmux) against a real daemon, with a conversation open:
 * a message sent from another terminal (`talken send`) appears in it, once, as ours; one typed
 * in the client shows once too, though the daemon now announces it to every client.
 */
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { ensureBuilt, talken } from '../helpers/cli.ts'
import { type DaemonProcess, startDaemon } from '../helpers/daemon.ts'
import { introduce, makeHome } from '../helpers/nodes.ts'

const tmuxMissing = spawnSync('tmux', ['-V']).status !== 0
const skip = tmuxMissing ? 'tmux is not installed (apt-get install tmux)' : undefined
if (skip) console.log(`skipping terminal client tests: ${skip}`)

const root = new URL('../..', import.meta.url).pathname
const bin = join(root, 'bin', 'talken.js')
const socket = `talken-test-out-${process.pid}`
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' })

// Bob is a contact who is away: what Ada sends waits, queued.
const ada = makeHome('Ada')
const bob = makeHome('Bob')
let daemon: DaemonProcess | undefined

const screen = () => tmux('capture-pane', '-p', '-t', 'ada')

function type(text: string): void {
  tmux('send-keys', '-t', 'ada', '-l', text)
  tmux('send-keys', '-t', 'ada', 'Enter')
}

async function waitFor(check: (s: string) => boolean, what: string, ms = 30_000): Promise<string> {
  const deadline = Date.now() + ms
  let last = ''
  while (Date.now() < deadline) {
    last = screen()
    if (check(last)) return last
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`timed out waiting for ${what}:\n${last}\n${daemon?.lines.slice(-25).join('\n')}`)
}

/** Types a command again if it has not shown within 10 s (keys sent right after start can be lost). */
async function typeUntil(text: string, check: (s: string) => boolean, what: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    type(text)
    try {
      return await waitFor(check, what, 10_000)
    } catch (err) {
      if (attempt === 3) throw err
    }
  }
}

/** `talken send Bob <text>` from another terminal, not waiting for delivery. */
function sendElsewhere(text: string): void {
  const r = talken(ada.home, ['send', 'Bob', text, '--wait', '0'])
  assert.equal(r.status, 0, r.stderr)
}

const count = (s: string, text: string) => s.split(text).length - 1

before(async () => {
  if (skip) return
  ensureBuilt()
  introduce(ada, bob)
  daemon = await startDaemon(ada.home)
  tmux(
    'new-session',
    '-d',
    '-s',
    'ada',
    '-x',
    '80',
    '-y',
    '24',
    '-e',
    `TALKEN_HOME=${ada.home}`,
    '-e',
    'TALKEN_PASSPHRASE=',
    `sh -c '${process.execPath} ${bin} tui --no-mdns; echo "[client exited with status $?]"; exec sleep 600'`,
  )
})

after(async () => {
  try {
    spawnSync('tmux', ['-L', socket, 'kill-server'])
    await daemon?.stop()
  } finally {
    ada.remove()
    bob.remove()
  }
})

test('a message sent from another terminal shows in the open conversation once', { skip }, async () => {
  await waitFor((s) => s.includes('node running'), 'the client to connect')
  await typeUntil('/chat Bob', (s) => s.includes('chat with Bob'), 'the chat with Bob')
  sendElsewhere('sent from the shell')
  const shown = await waitFor((s) => /me: sent from the shell\s+queued/.test(s), 'the message sent elsewhere')
  assert.equal(count(shown, 'sent from the shell'), 1, shown)

  // Typed here: the reply to the send and the daemon's announcement both name it; one line.
  type('typed in the client')
  await waitFor((s) => /me: typed in the client\s+queued/.test(s), 'the message typed')
  // Once the next one shows, whatever the daemon said of those before has come.
  sendElsewhere('and one more')
  const after = await waitFor((s) => /me: and one more\s+queued/.test(s), 'the last message')
  assert.equal(count(after, 'sent from the shell'), 1, after)
  assert.equal(count(after, 'typed in the client'), 1, after)
  assert.equal(count(after, 'and one more'), 1, after)
  // In the order they were sent.
  const rows = after
    .split('\n')
    .filter((l) => /me: (sent from the shell|typed in the client|and one more)/.test(l))
  assert.deepEqual(
    rows.map((l) => /me: ([a-z ]+?)\s+queued/.exec(l)?.[1]),
    ['sent from the shell', 'typed in the client', 'and one more'],
    after,
  )
})
