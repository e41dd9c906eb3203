import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { encodeFrame, FrameKind } from '../../src/mesh/frames.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'
import { MeshNet } from '../helpers/mesh-net.ts'
import { prng } from '../helpers/prng.ts'

/** Follows next hops from every node to every destination; fails on a loop. */
function assertLoopFree(net: MeshNet, when: string): number {
  let paths = 0
  for (const dest of net.nodes.values()) {
    for (const start of net.nodes.values()) {
      if (start === dest) continue
      const seen = new Set<string>()
      let at = start.name
      while (at !== dest.name) {
        if (seen.has(at))
          assert.fail(`routing loop towards ${dest.name} through ${[...seen, at].join(' → ')} (${when})`)
        seen.add(at)
        const next = net.nodes.get(at)?.core?.nextHop(dest.tag)
        if (next === undefined) break
        at = next
      }
      if (at === dest.name) paths++
    }
  }
  return paths
}

describe('mesh routing', () => {
  it('routes stay loop-free under random link flaps (40 seeds)', () => {
    let checks = 0
    let routed = 0
    for (let seed = 1; seed <= 40; seed++) {
      const r = prng(seed)
      const names = Array.from({ length: 10 }, (_, i) => `n${i}`)
      const net = new MeshNet({
        seed,
        latencyMs: 1 + Math.floor(r() * 20),
        config: { updateIntervalMs: 2_000, routeHoldMs: 7_000 },
      })
      for (const n of names) net.add(n)
      const pairs: Array<[string, string]> = []
      for (let i = 0; i < names.length; i++) {
        for (let j = i + 1; j < names.length; j++) if (r() < 0.3) pairs.push([names[i]!, names[j]!])
      }
      for (const [a, b] of pairs) net.link(a, b)
      for (let step = 0; step < 60; step++) {
        const [a, b] = pairs[Math.floor(r() * pairs.length)]!
        if (net.isLinked(a, b)) net.unlink(a, b)
        else net.link(a, b)
        // Check while updates are still in flight, not only once converged.
        for (let t = 0; t < 4; t++) {
          net.run(net.now + 1 + Math.floor(r() * 15))
          routed += assertLoopFree(net, `seed ${seed}, step ${step}`)
          checks++
        }
      }
      net.run(net.now + 30_000)
      routed += assertLoopFree(net, `seed ${seed}, settled`)
    }
    assert.ok(checks >= 9_000)
    assert.ok(routed > 10_000, 'the checks saw real routes')
  })

  it('routes converge to shortest paths on a grid', () => {
    const net = new MeshNet({ seed: 3 })
    const w = 4
    const name = (x: number, y: number) => `g${x}${y}`
    for (let y = 0; y < w; y++) for (let x = 0; x < w; x++) net.add(name(x, y))
    for (let y = 0; y < w; y++) {
      for (let x = 0; x < w; x++) {
        if (x + 1 < w) net.link(name(x, y), name(x + 1, y))
        if (y + 1 < w) net.link(name(x, y), name(x, y + 1))
      }
    }
    net.run(5_000)
    const routes = net.nodes.get(name(0, 0))!.core!.routes()
    const far = routes.find((r) => r.dest === Buffer.from(net.nodes.get(name(3, 3))!.tag).toString('hex'))
    assert.equal(far?.metric, 6)
    assert.equal(routes.length, w * w - 1)
  })

  it('a route request finds a destination beyond the advertising radius', () => {
    // Routes are advertised only one hop far: A learns D (2 hops, so the mesh reaches beyond
    // the radius) but never C, which only the request can find.
    const net = new MeshNet({ seed: 5, config: { advertiseRadius: 1 } })
    for (const n of ['A', 'B', 'D', 'C']) net.add(n)
    net.link('A', 'B')
    net.link('B', 'D')
    net.link('D', 'C')
    net.run(100)
    assert.equal(net.nodes.get('A')!.core!.nextHop(net.nodes.get('C')!.tag), undefined)
    net.send('A', 'C', 'find me')
    net.run(10_000)
    assert.equal(net.nodes.get('A')!.core!.nextHop(net.nodes.get('C')!.tag), 'B')
    assert.equal(net.nodes.get('C')!.delivered.length, 1)
  })

  it('no route request floods for an unknown destination when every route fits in the radius', () => {
    const net = new MeshNet({ seed: 5 })
    for (const n of ['A', 'B', 'D', 'C']) net.add(n)
    net.link('A', 'B')
    net.link('B', 'D')
    net.link('D', 'C')
    net.run(100)
    net.nodes.get('A')!.core!.send(new Uint8Array(16).fill(0xee), new TextEncoder().encode('nobody here'))
    net.run(10_000)
    assert.equal(net.nodes.get('A')!.core!.stats.routeRequestsSent, 0)
  })

  /** The line A–B–C–D–V, settled. */
  const lineToV = () => {
    const net = new MeshNet()
    const names = ['A', 'B', 'C', 'D', 'V']
    for (const n of names) net.add(n)
    const link = () => {
      for (let i = 1; i < names.length; i++) {
        if (!net.isLinked(names[i - 1]!, names[i]!)) net.link(names[i - 1]!, names[i]!)
      }
    }
    link()
    net.run(2_000)
    return { net, link, v: net.nodes.get('V')! }
  }

  it('a seqno forged far ahead for a destination does not cut it off for good', () => {
    const { net, v } = lineToV()
    // One Routes frame from a passing neighbour of B's, with V's seqno half the seqno space ahead.
    const b = net.nodes.get('B')!.core!
    b.linkUp('M', 65_600)
    b.receive(
      'M',
      encodeFrame({ kind: FrameKind.routes, routes: [{ dest: v.tag, seqno: 0x7fff0000, metric: 0 }] }),
    )
    net.run(net.now + 1_000)
    b.linkDown('M')
    net.run(net.now + 60 * 60_000)
    // A's request asks V for a seqno above the forged one, and V answers with it.
    const id = net.send('A', 'V', 'still there')
    net.run(net.now + 60_000)
    assert.equal(v.delivered.length, 1)
    assert.ok(net.nodes.get('A')!.states.some((s) => s.id === id && s.state === 'delivered'))
  })

  it('a node whose store was lost (its seqno begins again) is routed to again', () => {
    const { net, link, v } = lineToV()
    // Ordinary restarts take V's seqno up; then its data directory is lost, not its key.
    for (let k = 0; k < 5; k++) {
      net.stop('V')
      net.start('V')
      link()
      net.run(net.now + 2_000)
    }
    net.stop('V')
    v.store = createMemoryStore()
    net.start('V')
    link()
    net.run(net.now + 60 * 60_000)
    assert.equal(net.nodes.get('A')!.core!.nextHop(v.tag), 'B', 'A routes to V again')
    net.send('A', 'V', 'welcome back')
    net.run(net.now + 60_000)
    assert.equal(v.delivered.length, 1)
  })
})
