/**
 * Two nodes on a point-to-point link (each end a /32 address naming its peer, as PPP, tun and some
 * cloud interfaces are set up), found by mDNS alone: their addresses share no subnet, and each
 * must still hear the other.
 */
import { after, before, test } from 'node:test'
import { createTopology, type NsProcess, netnsSkipReason, type Topology } from '../helpers/netns.ts'
import { eventually } from '../helpers/netns-cli.ts'
import { introduce, makeHome } from '../helpers/nodes.ts'

const skip = netnsSkipReason()
if (skip !== undefined) console.log(`skipping the point-to-point test: ${skip}`)

const root = new URL('../..', import.meta.url).pathname
const runner = new URL('./fixtures/node-runner.ts', import.meta.url).pathname

let topo: Topology | undefined
const homes = [makeHome('A'), makeHome('B')]
const procs: NsProcess[] = []

before(async () => {
  if (skip !== undefined) return
  introduce(...homes)
  topo = createTopology([['A', 'B']])
  for (const [node, peer, own, other] of [
    ['A', 'B', '10.9.0.1', '10.9.0.2'],
    ['B', 'A', '10.9.0.2', '10.9.0.1'],
  ] as const) {
    const dev = topo.interfaceName(node, peer)
    topo.ip(node, ['addr', 'flush', 'dev', dev])
    topo.ip(node, ['addr', 'add', own, 'peer', other, 'dev', dev])
  }
  for (const [i, node] of (['A', 'B'] as const).entries()) {
    procs.push(topo.spawn(node, process.execPath, ['--import', 'tsx', runner, homes[i]!.home], { cwd: root }))
  }
  await Promise.all(
    procs.map((p) => p.waitFor((l) => (l.text.includes('"event":"ready"') ? true : undefined), 30_000)),
  )
})

after(async () => {
  try {
    await Promise.all(procs.map((p) => p.stop(5_000)))
    await topo?.destroy()
  } finally {
    for (const h of homes) h.remove()
  }
})

test('mDNS finds the peer at the other end of a point-to-point link', { skip }, async () => {
  const [a] = procs as [NsProcess, NsProcess]
  let seen = ''
  await eventually(
    async () => {
      const from = a.mark()
      a.write(JSON.stringify({ req: 1, cmd: 'peers' }))
      seen = await a.waitFor(
        (l) => (l.text.includes('"event":"peers"') ? l.text : undefined),
        5_000,
        from,
        'the peers',
      )
      return seen.includes('"mesh":true')
    },
    30_000,
    () => `A's peers: ${seen}`,
  )
})
