/**
 * Two terminal clients in real terminals (tmux), each against its own daemon on loopback: a
 * message typed in one appears in the other and the sender sees it reach delivered (then read);
 * with the recipient's daemon down the sender sees queued, and delivered once it is back.
 */
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { ensureBuilt } from '../helpers/cli.ts'
import { type DaemonProcess, startDaemon } from '../helpers/daemon.ts'
import { introduce, makeHome } from '../helpers/nodes.ts'

const tmuxMissing = spawnSync('tmux', ['-V']).status !== 0
const skip = tmuxMissing ? 'tmux is not installed (apt-get install tmux)' : undefined
if (skip) console.log(`skipping terminal client tests: ${skip}`)

const root = new URL('../..', import.meta.url).pathname
const bin = join(root, 'bin', 'talken.js')
const socket = `talken-test-${process.pid}`
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' })

const ada = makeHome('Ada')
const bob = makeHome('Bob')
const daemons: Record<string, DaemonProcess> = {}

/**
 * Opens the client of `home` in a detached 80×24 tmux session named `name`. A shell runs it and,
 * once it has exited, writes its exit status on the terminal it gave back.
 */
function openClient(name: string, home: string): void {
  tmux(
    'new-session',
    '-d',
    '-s',
    name,
    '-x',
    '80',
    '-y',
    '24',
    '-e',
    `TALKEN_HOME=${home}`,
    '-e',
    'TALKEN_PASSPHRASE=',
    `sh -c '${process.execPath} ${bin} tui --no-mdns; echo "[client exited with status $?]"; exec sleep 600'`,
  )
}

const screen = (name: string) => tmux('capture-pane', '-p', '-t', name)

function type(name: string, text: string): void {
  tmux('send-keys', '-t', name, '-l', text)
  tmux('send-keys', '-t', name, 'Enter')
}

async function waitFor(
  name: string,
  check: (s: string) => boolean,
  what: string,
  ms = 30_000,
): Promise<string> {
  const deadline = Date.now() + ms
  let last = ''
  while (Date.now() < deadline) {
    last = screen(name)
    if (check(last)) return last
    await new Promise((r) => setTimeout(r, 200))
  }
  // What the daemons logged last: what the screens cannot say about why.
  const logs = Object.entries(daemons)
    .map(([who, d]) => `${who}'s daemon, last lines:\n${d.lines.slice(-25).join('\n')}`)
    .join('\n')
  throw new Error(`timed out waiting for ${what} on ${name}'s screen:\n${last}\n${logs}`)
}

/**
 * Types a command whose effect `check` sees, again if it has not shown within 10 s, three times
 * at most: keys sent to a client that has only just started can be lost (rarely: once in many
 * runs), and the commands typed this way (`/chat NAME`) do the same when typed twice.
 */
async function typeUntil(
  name: string,
  text: string,
  check: (s: string) => boolean,
  what: string,
): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    type(name, text)
    try {
      return await waitFor(name, check, what, 10_000)
    } catch (err) {
      if (attempt === 3) throw err
    }
  }
}

/** The line of `name`'s screen that holds `text`. */
const lineWith = (s: string, text: string) => s.split('\n').find((l) => l.includes(text)) ?? ''

before(async () => {
  if (skip) return
  ensureBuilt()
  introduce(ada, bob)
  daemons.bob = await startDaemon(bob.home)
  daemons.ada = await startDaemon(ada.home, ['--bootstrap', daemons.bob.ready.addresses[0]!])
  openClient('ada', ada.home)
  openClient('bob', bob.home)
})

after(async () => {
  try {
    spawnSync('tmux', ['-L', socket, 'kill-server'])
    await Promise.all(Object.values(daemons).map((d) => d.stop()))
  } finally {
    ada.remove()
    bob.remove()
  }
})

test('a message typed in one client appears in the other, and the sender sees delivered, then read', {
  skip,
}, async () => {
  await waitFor('ada', (s) => s.includes('node running'), 'the client to connect')
  await waitFor('bob', (s) => s.includes('node running'), 'the client to connect')
  await typeUntil('ada', '/chat Bob', (s) => s.includes('chat with Bob'), 'the chat with Bob')
  type('ada', 'hello from a terminal')
  const sent = await waitFor('ada', (s) => /hello from a terminal\s+delivered/.test(s), 'delivered')
  assert.match(lineWith(sent, 'hello from a terminal'), /\d\d:\d\d me: hello from a terminal\s+delivered/)
  // Bob has an unread message from Ada in the list; opening the chat shows it and reads it.
  await waitFor('bob', (s) => /Ada\s+1/.test(s), 'an unread count for Ada')
  await typeUntil('bob', '/chat Ada', (s) => s.includes('Ada: hello from a terminal'), 'the message at Bob')
  await waitFor('ada', (s) => /hello from a terminal\s+read/.test(s), 'read')
})

test("with the recipient's daemon down the sender sees queued, then delivered when it returns", {
  skip,
}, async () => {
  await daemons.bob!.stop()
  await waitFor('bob', (s) => s.includes('node not running'), "Bob's client to notice")
  type('ada', 'are you there?')
  await waitFor('ada', (s) => /are you there\?\s+queued/.test(s), 'queued')
  daemons.bob = await startDaemon(bob.home)
  await waitFor('ada', (s) => /are you there\?\s+(delivered|read)/.test(s), 'delivered', 60_000)
  await waitFor('bob', (s) => s.includes('Ada: are you there?'), 'the message at Bob')
  // A clean exit: the client quits, with status 0, and its terminal is given back (to the shell).
  assert.doesNotMatch(screen('ada'), /client exited/, 'the client is still running')
  type('ada', '/exit')
  const exited = await waitFor(
    'ada',
    (s) => /\[client exited with status \d+\]/.test(s),
    'the client to quit',
  )
  assert.match(exited, /\[client exited with status 0\]/)
})
