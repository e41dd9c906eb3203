/**
 * A room across the namespace line A–B–D–C, with the real CLI and daemons found by mDNS alone.
 * A, D and C are members; B only relays (it is not in the room). The B–D link goes down, all
 * three members post at once, the link comes back, and all three end up with the same verified
 * history. B's data directory holds none of the posts' text.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { ensureBuilt } from '../helpers/cli.ts'
import { createTopology, line, netnsSkipReason } from '../helpers/netns.ts'
import { eventually, MESH_TIMEOUT_MS, NsCluster } from '../helpers/netns-cli.ts'
import { makeHome } from '../helpers/nodes.ts'

const skip = netnsSkipReason()
if (skip !== undefined) console.log(`skipping namespace room tests: ${skip}`)

const LINE = ['A', 'B', 'D', 'C'] as const
const MEMBERS = ['A', 'D', 'C'] as const
const cluster = new NsCluster()

interface Summary {
  readonly id: string
  readonly name: string
  readonly member: boolean
}
interface Item {
  readonly hash: string
  readonly kind: string
  readonly text?: string
}

const history = (name: string) => cluster.cli<Item[]>(name, ['rooms', 'history', 'Crag'])
const posts = (items: readonly Item[]) =>
  items
    .filter((i) => i.kind === 'post')
    .map((i) => i.text ?? '(locked)')
    .sort()

before(async () => {
  if (skip !== undefined) return
  ensureBuilt()
  for (const name of LINE) cluster.homes.set(name, makeHome(name))
  cluster.topology = createTopology(line(LINE))
  await Promise.all(LINE.map((name) => cluster.startDaemon(name)))
})

after(() => cluster.destroy())

test('three members post while B–D is down; after it heals all hold the same verified history', {
  skip,
}, async () => {
  const room = await cluster.cli<Summary>('A', ['rooms', 'create', 'Crag'])
  const { link } = await cluster.cli<{ link: string }>('A', ['rooms', 'invite', 'Crag'])
  assert.match(link, /^talken:room\//)
  for (const name of ['D', 'C'] as const) {
    const joined = await cluster.cli<Summary>(name, ['rooms', 'join', link])
    assert.equal(joined.id, room.id)
  }
  await eventually(
    async () => {
      const lists = await Promise.all(['D', 'C'].map((n) => cluster.cli<Summary[]>(n, ['rooms'])))
      return lists.every((l) => l[0]?.member === true)
    },
    MESH_TIMEOUT_MS * 2,
    () => 'D and C to be added by A',
  )

  cluster.topo().linkDown('B', 'D')
  await Promise.all([
    cluster.cli('A', ['rooms', 'post', 'Crag', 'a-one: west side is dry']),
    cluster.cli('D', ['rooms', 'post', 'Crag', 'd-one: bring a long rope']),
    cluster.cli('C', ['rooms', 'post', 'Crag', 'c-one: parking is full']),
  ])
  await cluster.cli('A', ['rooms', 'post', 'Crag', 'a-two: meet at nine'])
  // While the line is cut, A cannot have D's or C's posts.
  assert.deepEqual(posts(await history('A')), ['a-one: west side is dry', 'a-two: meet at nine'])

  cluster.topo().linkUp('B', 'D')
  const want = [
    'a-one: west side is dry',
    'a-two: meet at nine',
    'c-one: parking is full',
    'd-one: bring a long rope',
  ]
  let seen: Record<string, string[]> = {}
  await eventually(
    async () => {
      const all = await Promise.all(MEMBERS.map((n) => history(n)))
      seen = Object.fromEntries(MEMBERS.map((n, i) => [n, all[i]!.map((h) => h.hash)]))
      const same = all.every(
        (h) => JSON.stringify(h.map((x) => x.hash)) === JSON.stringify(all[0]!.map((x) => x.hash)),
      )
      return same && all.every((h) => JSON.stringify(posts(h)) === JSON.stringify(want))
    },
    MESH_TIMEOUT_MS * 2,
    () => `the same history everywhere: ${JSON.stringify(seen)}`,
  )
  const members = await cluster.cli<Array<{ role: string }>>('C', ['rooms', 'members', 'Crag'])
  assert.equal(members.length, 3)

  // B relayed the room's frames without being able to read them.
  const bHome = cluster.home('B')
  let searched = 0
  for (const file of readdirSync(bHome)) {
    if (!/\.(db|db-wal|log)$/.test(file)) continue
    searched++
    const bytes = readFileSync(join(bHome, file))
    for (const text of want)
      assert.equal(bytes.indexOf(Buffer.from(text.slice(0, 12))), -1, `${text} in B's ${file}`)
  }
  assert.ok(searched > 0, `B's store files were searched (${readdirSync(bHome).join(', ')})`)
  const bRooms = await cluster.cli<Summary[]>('B', ['rooms'])
  assert.deepEqual(bRooms, [], 'B holds no room')
})
