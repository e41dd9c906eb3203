/**
 * A host on the LAN asking for Talken peers many times a second gets at most one answer a second
 * from each node (RFC 6762 §6), not one per query: a node cannot be made to multicast at the pace
 * of anyone on its network. Two namespaces, A running a node, B sending a burst of queries.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTopology, type NsProcess, netnsSkipReason, type Topology } from '../helpers/netns.ts'
import { makeHome } from '../helpers/nodes.ts'

const skip = netnsSkipReason()
if (skip !== undefined) console.log(`skipping the mDNS answer rate test: ${skip}`)

const root = new URL('../..', import.meta.url).pathname
const runner = new URL('./fixtures/node-runner.ts', import.meta.url).pathname
const burst = new URL('./fixtures/mdns-burst.ts', import.meta.url).pathname

let topo: Topology | undefined
const home = makeHome('A')
let node: NsProcess | undefined

before(async () => {
  if (skip !== undefined) return
  topo = createTopology([['A', 'B']])
  node = topo.spawn('A', process.execPath, ['--import', 'tsx', runner, home.home], { cwd: root })
  await node.waitFor((l) => (l.text.includes('"event":"ready"') ? true : undefined), 30_000)
})

after(async () => {
  try {
    await node?.stop(5_000)
    await topo?.destroy()
  } finally {
    home.remove()
  }
})

test('a burst of mDNS queries gets one answer a second, not one each', { skip }, async () => {
  // 40 queries over 400 ms, listening 1.8 s from the first: answers go out at most once a second
  // (the node's own queries, every 5 s, are answered too, within the same pace).
  const querier = topo!.spawn('B', process.execPath, ['--import', 'tsx', burst, '40', '1800'], { cwd: root })
  const line = await querier.waitFor((l) => (l.text.startsWith('{"answers"') ? l.text : undefined), 30_000)
  await querier.stop(5_000)
  const { answers } = JSON.parse(line) as { answers: number }
  assert.ok(answers >= 1, 'answered')
  assert.ok(answers <= 2, `${answers} answers to 40 queries in 1.8 s`)
})
