/**
 * The real CLI on the line A–B–D–C (plus E, hanging off C), each `talken daemon` in its own
 * network namespace with its own `TALKEN_HOME`, found by mDNS alone; E has mDNS off and joins
 * by a bootstrap address. The cases of the multi-host acceptance: relaying through B and D, a
 * relay that dies and comes back, a sender killed right after `send` returned, and a node that
 * knows one address and no LAN discovery.
 *
 * The tests run in order and share the daemons: each leaves every daemon running.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { ensureBuilt } from '../helpers/cli.ts'
import { createTopology, line, netnsSkipReason } from '../helpers/netns.ts'
import { eventually, MESH_TIMEOUT_MS, NsCluster } from '../helpers/netns-cli.ts'
import { introduce, makeHome } from '../helpers/nodes.ts'

const skip = netnsSkipReason()
if (skip !== undefined) console.log(`skipping namespace daemon tests: ${skip}`)

const NAMES = ['A', 'B', 'D', 'C', 'E'] as const
type Name = (typeof NAMES)[number]
/** E is the node with a bootstrap address and mDNS off; the others discover each other. */
const LINE: readonly Name[] = ['A', 'B', 'D', 'C']

const cluster = new NsCluster()
const topology = () => cluster.topo()
const daemon = (name: Name) => cluster.daemon(name)
const startDaemon = (name: Name, extra: readonly string[] = []) => cluster.startDaemon(name, extra)
const cli = <T>(name: Name, args: readonly string[], timeoutMs?: number) =>
  cluster.cli<T>(name, args, timeoutMs)

interface Peer {
  readonly peerId: string
  readonly mesh: boolean
  readonly contact?: string
}
interface Sent {
  readonly id: string
  readonly state: string
  readonly daemon: boolean
}
interface InboxMessage {
  readonly id: string
  readonly direction: string
  readonly text: string
  readonly state: string
}

async function meshNeighbours(name: Name): Promise<string[]> {
  const { peers } = await cli<{ peers: Peer[] }>(name, ['peers'])
  return peers
    .filter((p) => p.mesh)
    .map((p) => p.contact ?? p.peerId)
    .sort()
}

/**
 * How many messages with `text` came into `name`'s inbox, under any ID: a copy sent again under a
 * new ID counts as much as a repeat of the first.
 */
async function inboxCount(name: Name, text: string): Promise<number> {
  const { messages } = await cli<{ messages: InboxMessage[] }>(name, ['inbox', '--limit', '1000'])
  return messages.filter((m) => m.text === text && m.direction === 'in').length
}

/** The state of sent message `id` in `name`'s store. */
async function sentState(name: Name, id: string): Promise<string | undefined> {
  const { messages } = await cli<{ messages: InboxMessage[] }>(name, ['inbox', '--all', '--limit', '1000'])
  return messages.find((m) => m.id === id && m.direction === 'out')?.state
}

/** Waits until `text` (sent as `id`) is in `to`'s inbox and `from` has heard it was delivered. */
async function arrives(to: Name, from: Name, id: string, text: string): Promise<void> {
  let count = 0
  let state: string | undefined
  await eventually(
    async () => {
      ;[count, state] = await Promise.all([inboxCount(to, text), sentState(from, id)])
      return count > 0 && state === 'delivered'
    },
    MESH_TIMEOUT_MS,
    () => `"${text}" in ${to}'s inbox (seen ${count}) and ${id} delivered at ${from} (state ${state})`,
  )
}

/**
 * Waits until `text` (sent as `id`) has reached `to`'s inbox and `from` has heard it was
 * delivered; then sends another message behind it, waits for that one too, and checks that `text`
 * came in once, under any ID: a repeat, or a copy sent again, has had the time to show by then.
 */
async function arrivesOnce(to: Name, from: Name, id: string, text: string): Promise<void> {
  await arrives(to, from, id, text)
  const behind = `${text} (and after it)`
  const next = await cli<Sent>(from, ['send', to, behind, '--wait', '0'])
  await arrives(to, from, next.id, behind)
  assert.equal(await inboxCount(to, text), 1, `"${text}" is in ${to}'s inbox once`)
  assert.equal(await inboxCount(to, behind), 1, `"${behind}" is in ${to}'s inbox once`)
}

before(async () => {
  if (skip !== undefined) return
  ensureBuilt()
  for (const name of NAMES) cluster.homes.set(name, makeHome(name))
  introduce(...cluster.homes.values())
  cluster.topology = createTopology([...line(LINE), ['C', 'E']])
  await Promise.all(LINE.map((name) => startDaemon(name)))
})

after(() => cluster.destroy())

test('daemons find their neighbours by mDNS, and A → C arrives through B and D', { skip }, async () => {
  const want: Record<string, string[]> = { A: ['B'], B: ['A', 'D'], D: ['B', 'C'], C: ['D'] }
  const seen: Record<string, string[]> = {}
  await eventually(
    async () => {
      const lists = await Promise.all(LINE.map((name) => meshNeighbours(name)))
      LINE.forEach((name, i) => {
        seen[name] = lists[i] ?? []
      })
      return LINE.every((n) => want[n]?.every((p) => seen[n]?.includes(p)))
    },
    MESH_TIMEOUT_MS,
    () => `mesh neighbours ${JSON.stringify(seen)}, want ${JSON.stringify(want)}`,
  )
  const text = 'hello through B and D'
  const sent = await cli<Sent>('A', ['send', 'C', text, '--wait', '20'], 30_000)
  assert.equal(sent.daemon, true)
  await arrivesOnce('C', 'A', sent.id, text)
  const { routes } = await cli<{ routes: Array<{ contact?: string; nextHop: string; metric: number }> }>(
    'A',
    ['routes'],
  )
  const { peers } = await cli<{ peers: Peer[] }>('A', ['peers'])
  const toC = routes.find((r) => r.contact === 'C')
  assert.ok(toC !== undefined, `A has a route to C: ${JSON.stringify(routes)}`)
  assert.equal(toC.nextHop, peers.find((p) => p.contact === 'B')?.peerId, 'through B')
  assert.equal(toC.metric, 3)
})

test('D dies, A sends to C, D comes back: the message arrives once', { skip }, async () => {
  await daemon('D').stop()
  // D's neighbours notice: B loses its link to D, so A's message has nowhere to go but wait.
  await eventually(
    async () => !(await meshNeighbours('B')).includes('D'),
    MESH_TIMEOUT_MS,
    () => 'B to lose its link to D',
  )
  const text = 'waiting for D'
  const sent = await cli<Sent>('A', ['send', 'C', text, '--wait', '0'])
  assert.equal(sent.daemon, true)
  assert.notEqual(sent.state, 'delivered')
  assert.equal(await inboxCount('C', text), 0, 'C cannot have it while D is down')
  await startDaemon('D')
  await arrivesOnce('C', 'A', sent.id, text)
})

test('A is killed with SIGKILL right after send returned, restarts, and the message arrives', {
  skip,
}, async () => {
  // Cut A off first, so the message is still only on A's disk when A dies.
  topology().linkDown('A', 'B')
  const text = 'survives a crash'
  const sent = await cli<Sent>('A', ['send', 'C', text, '--wait', '0'])
  assert.equal(sent.daemon, true)
  const a = daemon('A')
  a.kill('SIGKILL')
  const exit = await a.exited
  assert.equal(exit.signal, 'SIGKILL')
  topology().linkUp('A', 'B')
  await startDaemon('A')
  await arrivesOnce('C', 'A', sent.id, text)
})

test('E, with mDNS off and only a bootstrap address, joins and reaches A', { skip }, async () => {
  const c = await cli<{ peerId: string; addresses: string[] }>('C', ['status'])
  const bootstrap = `/ip4/${topology().address('C', 'E')}/tcp/${portOf(c, topology().address('C', 'E'))}/p2p/${c.peerId}`
  await startDaemon('E', ['--no-mdns', '--bootstrap', bootstrap])
  await eventually(
    async () => (await meshNeighbours('E')).includes('C'),
    MESH_TIMEOUT_MS,
    () => 'E to link to C',
  )
  const text = 'from the far end'
  const sent = await cli<Sent>('E', ['send', 'A', text, '--wait', '0'])
  await arrivesOnce('A', 'E', sent.id, text)
})

/** The TCP port C listens on at `address`, from its status. */
function portOf(status: { addresses?: string[] }, address: string): string {
  const listen = (status.addresses ?? []).find((a) => a.startsWith(`/ip4/${address}/tcp/`))
  const port = listen?.split('/')[4]
  if (port === undefined)
    throw new Error(`no listen address on ${address}: ${JSON.stringify(status.addresses)}`)
  return port
}
