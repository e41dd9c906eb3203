/**
 * What relays keep: in the line A–B–D–C, A writes to C through B and D, which are not A's
 * contacts. While the message waits at a relay (the D–C link is cut) and after it was delivered,
 * every file in B's and D's data directories and every line they logged (at debug level) is
 * searched byte by byte for the plaintext and for A's account (text ID and raw key): neither
 * may appear.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { parseTextId } from '../../src/identity/text-id.ts'
import { ensureBuilt } from '../helpers/cli.ts'
import { createTopology, line, type NsProcess, netnsSkipReason, type Topology } from '../helpers/netns.ts'
import { introduce, makeHome } from '../helpers/nodes.ts'

const skip = netnsSkipReason()
if (skip !== undefined) console.log(`skipping namespace privacy test: ${skip}`)

const root = new URL('../..', import.meta.url).pathname
const bin = join(root, 'bin', 'talken.js')
const LINE = ['A', 'B', 'D', 'C'] as const
type Name = (typeof LINE)[number]
const TIMEOUT_MS = 60_000

let topo: Topology | undefined
const homes = new Map<Name, ReturnType<typeof makeHome>>()
const daemons = new Map<Name, NsProcess>()

function home(name: Name): string {
  return homes.get(name)!.home
}

function cli<T>(name: Name, args: readonly string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(
      'ip',
      ['netns', 'exec', topo!.ns(name), process.execPath, bin, '--json', ...args],
      { cwd: root, env: { ...process.env, TALKEN_HOME: home(name), TALKEN_PASSPHRASE: '' }, timeout: 20_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`talken ${args.join(' ')} (${name}): ${err.message}\n${stdout}\n${stderr}`))
        else resolve(JSON.parse(stdout) as T)
      },
    )
  })
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + TIMEOUT_MS
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

/** Every byte B or D holds: all files of its data directory, and its log. */
function relayBytes(name: Name): Array<[string, Buffer]> {
  const dir = home(name)
  const files: Array<[string, Buffer]> = readdirSync(dir)
    .filter((f) => !f.endsWith('.sock'))
    .map((f) => [`${name}/${f}`, readFileSync(join(dir, f))])
  const log = daemons
    .get(name)!
    .lines.map((l) => l.text)
    .join('\n')
  files.push([`${name} log`, Buffer.from(log, 'utf8')])
  return files
}

function assertClean(secrets: ReadonlyArray<[string, Buffer]>): void {
  for (const name of ['B', 'D'] as const) {
    for (const [where, bytes] of relayBytes(name)) {
      for (const [what, needle] of secrets) {
        assert.equal(bytes.indexOf(needle), -1, `${what} found in ${where}`)
      }
    }
  }
}

before(async () => {
  if (skip !== undefined) return
  ensureBuilt()
  for (const name of LINE) homes.set(name, makeHome(name))
  introduce(homes.get('A')!, homes.get('C')!) // B and D only relay: they are nobody's contacts
  topo = createTopology(line(LINE))
  await Promise.all(
    LINE.map(async (name) => {
      const proc = topo!.spawn(name, process.execPath, [bin, '--json', 'daemon', '--log-level', 'debug'], {
        cwd: root,
        env: { TALKEN_HOME: home(name), TALKEN_PASSPHRASE: '' },
      })
      daemons.set(name, proc)
      await proc.waitForLine(/"event":"ready"/, TIMEOUT_MS)
    }),
  )
})

after(async () => {
  try {
    await Promise.all([...daemons.values()].map((p) => p.stop(5_000)))
    await topo?.destroy()
  } finally {
    for (const h of homes.values()) h.remove()
  }
})

test('relays B and D hold neither the plaintext nor the sender’s account', { skip }, async () => {
  const ada = await cli<{ id: string }>('A', ['id'])
  const accountKey = Buffer.from(parseTextId(ada.id))
  const plaintext = `meet at the old mill ${randomBytes(8).toString('hex')}`
  const secrets: Array<[string, Buffer]> = [
    ['the plaintext', Buffer.from(plaintext, 'utf8')],
    ["A's text ID", Buffer.from(ada.id, 'utf8')],
    ["A's account key", accountKey],
    ["A's account key in hex", Buffer.from(accountKey.toString('hex'), 'utf8')],
    ["A's account key in base64", Buffer.from(accountKey.toString('base64').slice(0, 40), 'utf8')],
  ]
  // Wait for the mesh: A has a route to C.
  await eventually(async () => {
    const { routes } = await cli<{ routes: Array<{ contact?: string }> }>('A', ['routes'])
    return routes.some((r) => r.contact === 'C')
  }, "A's route to C")
  // Cut D–C: the message must wait at a relay, on its disk.
  topo!.linkDown('D', 'C')
  const sent = await cli<{ id: string }>('A', ['send', 'C', plaintext, '--wait', '0'])
  await eventually(async () => {
    const [b, d] = await Promise.all([
      cli<{ custody: { count: number } }>('B', ['status']),
      cli<{ custody: { count: number } }>('D', ['status']),
    ])
    return b.custody.count + d.custody.count > 0
  }, 'a relay to take custody')
  assertClean(secrets)
  topo!.linkUp('D', 'C')
  await eventually(async () => {
    const { messages } = await cli<{ messages: Array<{ id: string; text: string }> }>('C', ['inbox'])
    return messages.some((m) => m.id === sent.id && m.text === plaintext)
  }, 'the message at C')
  assertClean(secrets)
})
