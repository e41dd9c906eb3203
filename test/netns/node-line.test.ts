/**
 * Four nodes on the line A–B–D–C, each in its own network namespace, found by mDNS alone (no
 * bootstrap addresses): B and D sit on two networks each and must be found on both, and a
 * message from A reaches C only if B and D relay it.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTopology, line, type NsProcess, netnsSkipReason, type Topology } from '../helpers/netns.ts'
import { eventually } from '../helpers/netns-cli.ts'
import { introduce, makeHome } from '../helpers/nodes.ts'

const skip = netnsSkipReason()
if (skip !== undefined) console.log(`skipping namespace node tests: ${skip}`)

const root = new URL('../..', import.meta.url).pathname
const runner = new URL('./fixtures/node-runner.ts', import.meta.url).pathname
const NAMES = ['A', 'B', 'D', 'C'] as const
type Name = (typeof NAMES)[number]

interface Event {
  readonly event: string
  readonly req?: number
  readonly [key: string]: unknown
}

/** The runner's stdout events from line `from` on that satisfy `pick`. */
function waitEvent(
  proc: NsProcess,
  pick: (e: Event) => boolean,
  timeoutMs: number,
  from = 0,
): Promise<Event> {
  return proc.waitFor(
    (l) => {
      if (l.stream !== 'stdout' || !l.text.startsWith('{')) return undefined
      const event = JSON.parse(l.text) as Event
      return pick(event) ? event : undefined
    },
    timeoutMs,
    from,
    'the expected event',
  )
}

let requests = 0

/** Sends a command to a runner and resolves with its reply. */
async function ask(proc: NsProcess, command: Record<string, unknown>, timeoutMs = 5_000): Promise<Event> {
  const req = ++requests
  const from = proc.mark()
  proc.write(JSON.stringify({ req, ...command }))
  const reply = await waitEvent(proc, (e) => e.req === req, timeoutMs, from)
  if (reply.event === 'error') throw new Error(`${String(command.cmd)} failed: ${String(reply.message)}`)
  return reply
}

interface Peer {
  readonly peerId: string
  readonly mesh: boolean
  readonly contact: string | undefined
}

/** Mesh neighbours of a node, by contact name. */
async function meshNeighbours(proc: NsProcess): Promise<string[]> {
  const reply = await ask(proc, { cmd: 'peers' })
  return (reply.peers as Peer[])
    .filter((p) => p.mesh)
    .map((p) => p.contact ?? p.peerId)
    .sort()
}

let topo: Topology | undefined
const homes = new Map<Name, ReturnType<typeof makeHome>>()
const nodes = new Map<Name, NsProcess>()

function node(name: Name): NsProcess {
  const proc = nodes.get(name)
  if (proc === undefined) throw new Error(`node ${name} is not running`)
  return proc
}

before(async () => {
  if (skip !== undefined) return
  for (const name of NAMES) homes.set(name, makeHome(name))
  introduce(...homes.values())
  topo = createTopology(line(NAMES))
  for (const name of NAMES) {
    const home = homes.get(name)?.home as string
    nodes.set(name, topo.spawn(name, process.execPath, ['--import', 'tsx', runner, home], { cwd: root }))
  }
  await Promise.all([...nodes.values()].map((p) => waitEvent(p, (e) => e.event === 'ready', 30_000)))
})

after(async () => {
  try {
    await Promise.all([...nodes.values()].map((p) => p.stop(5_000)))
    await topo?.destroy()
  } finally {
    for (const home of homes.values()) home.remove()
  }
})

test('mDNS alone links each node to its neighbours, on both networks of B and D', { skip }, async () => {
  const want: Record<Name, string[]> = { A: ['B'], B: ['A', 'D'], D: ['B', 'C'], C: ['D'] }
  const seen = new Map<Name, string[]>()
  await eventually(
    async () => {
      for (const name of NAMES) seen.set(name, await meshNeighbours(node(name)))
      return NAMES.every((n) => want[n].every((p) => seen.get(n)?.includes(p)))
    },
    30_000,
    () => `mesh neighbours ${JSON.stringify(Object.fromEntries(seen))}, want ${JSON.stringify(want)}`,
  )
  // Only neighbours: with forwarding off, A and C cannot reach anyone beyond B and D.
  assert.deepEqual(seen.get('A'), ['B'])
  assert.deepEqual(seen.get('C'), ['D'])
})

test('a message from A reaches C through B and D', { skip }, async () => {
  const c = node('C')
  const a = node('A')
  const fromC = c.mark()
  const fromA = a.mark()
  const sent = await ask(a, { cmd: 'send', to: 'C', text: 'hello across the line' })
  const id = sent.id as string
  const message = await waitEvent(c, (e) => e.event === 'message' && e.id === id, 60_000, fromC)
  assert.equal(message.text, 'hello across the line')
  assert.equal(message.fromName, 'A')
  await waitEvent(a, (e) => e.event === 'state' && e.id === id && e.state === 'delivered', 60_000, fromA)
  // Three links lie between A and C; the message crossed each (hops counts them, when known).
  if (message.hops !== undefined && message.hops !== null)
    assert.ok((message.hops as number) >= 3, `hops ${message.hops}`)
  // A's route to C leads through B.
  const routes = (await ask(a, { cmd: 'routes' })).routes as Array<{
    contact?: string
    nextHop: string
    metric: number
  }>
  const toC = routes.find((r) => r.contact === 'C')
  const peersOfA = (await ask(a, { cmd: 'peers' })).peers as Peer[]
  const b = peersOfA.find((p) => p.contact === 'B')
  if (toC !== undefined) {
    assert.equal(toC.nextHop, b?.peerId, `A routes to C via ${toC.nextHop}`)
    assert.ok(toC.metric >= 3, `metric ${toC.metric}`)
  }
  assert.ok(message.hops !== undefined || toC !== undefined, 'hops or a route show the path')
  // Delivered once.
  const copies = c.stdout(fromC).filter((l) => l.includes('"event":"message"') && l.includes(id))
  assert.equal(copies.length, 1)
})
