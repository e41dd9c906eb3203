/**
 * The namespace harness itself: the line it builds, multicast on its veths (and why no
 * multicast route is needed), link down/up, and that it leaves nothing behind.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { after, before, test } from 'node:test'
import { createTopology, line, netnsSkipReason, type Topology } from '../helpers/netns.ts'

const skip = netnsSkipReason()
if (skip !== undefined) console.log(`skipping namespace harness tests: ${skip}`)

const root = new URL('../..', import.meta.url).pathname
const probe = new URL('./fixtures/multicast-probe.ts', import.meta.url).pathname
const PORT = '5353'

function machineLinks(): string {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(':')[1]?.trim() ?? '')
    .sort()
    .join(',')
}

let topo: Topology
let linksBefore = ''

before(() => {
  if (skip !== undefined) return
  linksBefore = machineLinks()
  topo = createTopology(line(['A', 'B', 'C']))
})
after(async () => {
  await topo?.destroy()
})

/** Sends one multicast datagram from `from` (through its interface towards `via`, or `default`). */
function send(from: string, iface: string, text: string): string {
  return topo
    .exec(from, process.execPath, ['--import', 'tsx', probe, 'send', iface, PORT, text], 20_000)
    .trim()
}

test('a line: one subnet per link, lo up, forwarding off, nothing in the machine namespace', { skip }, () => {
  assert.deepEqual([...topo.nodes], ['A', 'B', 'C'])
  assert.equal(topo.address('A', 'B'), '10.77.1.1')
  assert.equal(topo.address('B', 'A'), '10.77.1.2')
  assert.equal(topo.address('B', 'C'), '10.77.2.1')
  assert.equal(topo.address('C', 'B'), '10.77.2.2')
  for (const node of topo.nodes) {
    assert.match(topo.ip(node, ['-o', 'link', 'show', 'dev', 'lo']), /[<,]UP[,>]/)
    assert.equal(topo.exec(node, 'cat', ['/proc/sys/net/ipv4/ip_forward']).trim(), '0')
    assert.doesNotMatch(topo.ip(node, ['route', 'show']), /default/)
  }
  assert.match(topo.ip('B', ['-o', 'addr', 'show', 'dev', 'to-A']), /10\.77\.1\.2\/24/)
  assert.match(topo.ip('B', ['-o', 'addr', 'show', 'dev', 'to-C']), /10\.77\.2\.1\/24/)
  assert.match(topo.ip('B', ['-o', 'link', 'show', 'dev', 'to-C']), /MULTICAST/)
  assert.equal(machineLinks(), linksBefore, 'no interface appeared in the machine namespace')
})

/** A script that tries a TCP connection to `address` and prints the outcome. */
function connectScript(address: string): string {
  return (
    `require('node:net').connect({ host: '${address}', port: 9, timeout: 5000 })` +
    `.on('error', (e) => console.log(e.code)).on('connect', () => { console.log('connected'); process.exit(0) })` +
    `.on('timeout', () => { console.log('timeout'); process.exit(0) })`
  )
}

test('no forwarding: A cannot reach C', { skip }, () => {
  // No route from A to C's subnet: the kernel refuses at once, with no timeout involved.
  const out = topo.exec('A', process.execPath, ['-e', connectScript(topo.address('C', 'B'))])
  assert.match(out, /ENETUNREACH|EHOSTUNREACH/)
})

test('multicast on a veth works without a route when the socket names its interface', { skip }, async () => {
  const listener = topo.spawn(
    'B',
    process.execPath,
    ['--import', 'tsx', probe, 'listen', topo.address('B', 'A'), PORT],
    {
      cwd: root,
    },
  )
  await listener.waitForLine(/^ready$/, 15_000)
  assert.equal(send('A', topo.address('A', 'B'), 'one'), 'sent')
  await listener.waitForLine(
    new RegExp(`^got one from ${topo.address('A', 'B').replaceAll('.', '\\.')}$`),
    10_000,
  )
  // Without IP_MULTICAST_IF the kernel looks 224.0.0.251 up in the routing table, finds nothing.
  assert.equal(send('A', 'default', 'two'), 'error ENETUNREACH')
  await listener.stop()
})

test('link down and up, on both ends', { skip }, async () => {
  topo.linkDown('A', 'B')
  assert.doesNotMatch(topo.ip('A', ['-o', 'link', 'show', 'dev', 'to-B']), /[<,]UP[,>]/)
  assert.doesNotMatch(topo.ip('B', ['-o', 'link', 'show', 'dev', 'to-A']), /[<,]UP[,>]/)
  topo.linkUp('A', 'B')
  assert.match(topo.ip('A', ['-o', 'link', 'show', 'dev', 'to-B']), /[<,]UP[,>]/)
  assert.match(topo.ip('B', ['-o', 'link', 'show', 'dev', 'to-A']), /[<,]UP[,>]/)
  // Multicast passes again once both ends are up (the carrier may take a moment: retry, bounded).
  const listener = topo.spawn(
    'B',
    process.execPath,
    ['--import', 'tsx', probe, 'listen', topo.address('B', 'A'), PORT],
    {
      cwd: root,
    },
  )
  await listener.waitForLine(/^ready$/, 15_000)
  const deadline = Date.now() + 10_000
  let heard = false
  while (!heard && Date.now() < deadline) {
    const from = listener.mark()
    send('A', topo.address('A', 'B'), 'again')
    heard = await listener.waitForLine(/^got again/, 1_000, from).then(
      () => true,
      () => false,
    )
  }
  assert.ok(heard, 'multicast passes after the link came back')
  await listener.stop()
})

test('destroy kills processes and removes the namespaces', { skip }, async () => {
  const extra = createTopology(line(['X', 'Y']))
  const names = [extra.ns('X'), extra.ns('Y')]
  const sleeper = extra.spawn('X', 'sleep', ['600'])
  assert.ok(sleeper.running)
  await extra.destroy()
  assert.equal(sleeper.running, false)
  const listing = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
  for (const name of names) assert.ok(!listing.split(/\s/).includes(name), `${name} is gone`)
  assert.equal(machineLinks(), linksBefore)
})
