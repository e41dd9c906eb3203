/**
 * A host on the LAN that multicasts thousands of forged mDNS answers, each with a fresh peer ID
 * and addresses of its choosing, gets a node to dial only a trickle of them, and only at its own
 * address: never at another host, a name or a Unix socket it names. Two namespaces, A running a
 * node, B the forger, which listens on two addresses of its interface (its own, the answers'
 * source, and a second one the answers name too) and counts the connections that arrive.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { PEER_BURST, PEERS_PER_SECOND } from '../../src/links/mdns.ts'
import { createTopology, type NsProcess, netnsSkipReason, type Topology } from '../helpers/netns.ts'
import { makeHome } from '../helpers/nodes.ts'

const skip = netnsSkipReason()
if (skip !== undefined) console.log(`skipping the mDNS spoofing test: ${skip}`)

const root = new URL('../..', import.meta.url).pathname
const runner = new URL('./fixtures/node-runner.ts', import.meta.url).pathname

/** Forged answers sent, 1 ms apart. */
const ANSWERS = 2_000
/** How long the forger counts connections, from its first answer. */
const LISTEN_MS = 6_000
/** B's second address: named in every answer, never their source. */
const OTHER = '10.77.1.3'
const OWN_PORT = 4001
const OTHER_PORT = 4002

/**
 * The forger, run with `node --input-type=module -e` in B: prints
 * `{"sent":n,"sendMs":ms,"own":connections at its own address,"other":connections at OTHER}`.
 */
const FORGER = `
import { createServer } from 'node:net'
import { randomBytes } from 'node:crypto'
import multicastDns from 'multicast-dns'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'

const { own, other, ownPort, otherPort, answers, listenMs } = JSON.parse(process.env.FORGER)
const counts = { own: 0, other: 0 }
const listen = (host, port, key) =>
  new Promise((resolve) => {
    const server = createServer((socket) => {
      counts[key]++
      socket.destroy()
    })
    server.listen(port, host, resolve)
  })
await listen(own, ownPort, 'own')
await listen(other, otherPort, 'other')
const mdns = multicastDns({ interface: own, bind: '0.0.0.0' })
mdns.on('ready', async () => {
  await new Promise((resolve) => setTimeout(resolve, 1_000))
  const start = Date.now()
  for (let i = 0; i < answers; i++) {
    const id = peerIdFromPublicKey(publicKeyFromRaw(randomBytes(32))).toString()
    const instance = randomBytes(8).toString('hex') + '._p2p._udp.local'
    const addresses = [
      '/ip4/' + other + '/tcp/' + otherPort,
      '/dns4/example.com/tcp/' + otherPort,
      '/unix/%2Ftmp%2Fforged.sock',
      '/ip4/' + own + '/udp/' + ownPort,
    ]
    // Every other answer also names the forger itself, the one address a node may take from it.
    if (i % 2 === 0) addresses.push('/ip4/' + own + '/tcp/' + ownPort)
    mdns.respond({
      answers: [{ name: '_p2p._udp.local', type: 'PTR', class: 'IN', ttl: 120, data: instance }],
      additionals: addresses.map((a) => ({
        name: instance, type: 'TXT', class: 'IN', ttl: 120, data: ['dnsaddr=' + a + '/p2p/' + id],
      })),
    })
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  const sendMs = Date.now() - start
  setTimeout(() => {
    process.stdout.write(JSON.stringify({ sent: answers, sendMs, ...counts }) + '\\n')
    process.exit(0)
  }, Math.max(0, listenMs - sendMs))
})
`

let topo: Topology | undefined
const home = makeHome('A')
let node: NsProcess | undefined

before(async () => {
  if (skip !== undefined) return
  topo = createTopology([['A', 'B']])
  topo.ip('B', ['addr', 'add', `${OTHER}/24`, 'dev', topo.interfaceName('B', 'A')])
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

test('forged mDNS answers lead to a trickle of dials, only to the forger itself', { skip }, async (t) => {
  const config = {
    own: topo!.address('B', 'A'),
    other: OTHER,
    ownPort: OWN_PORT,
    otherPort: OTHER_PORT,
    answers: ANSWERS,
    listenMs: LISTEN_MS,
  }
  const forger = topo!.spawn('B', process.execPath, ['--input-type=module', '-e', FORGER], {
    cwd: root,
    env: { FORGER: JSON.stringify(config) },
  })
  const line = await forger.waitFor((l) => (l.text.startsWith('{"sent"') ? l.text : undefined), 60_000)
  await forger.stop(5_000)
  t.diagnostic(line)
  const { sendMs, own, other } = JSON.parse(line) as { sendMs: number; own: number; other: number }
  assert.equal(other, 0, 'no dial to an address that is not the answer’s source')
  // Peers dispatched while the answers came: the burst, and the pace for every second they took
  // (rounded up, plus one for timing). A peer may be dialled more than once; allow two each.
  const peers = PEER_BURST + PEERS_PER_SECOND * (Math.ceil(sendMs / 1_000) + 1)
  assert.ok(own >= 1, 'the forger’s own address was dialled: the answers were heard')
  assert.ok(own <= 2 * peers, `${own} connections from ${ANSWERS} forged answers in ${sendMs} ms`)
})
