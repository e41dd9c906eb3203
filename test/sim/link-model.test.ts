import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { defineRouter } from '../../src/sim/routers.ts'
import { simulate } from '../../src/sim/simulator.ts'
import { type ProbeLog, type ProbeScript, probeFactory, tinyInput } from './helpers.ts'

/** Runs two probes joined at t=0 (and cut at `downAt`); node 0 runs `send` when the link comes up. */
function twoNodes(
  link: Parameters<typeof tinyInput>[0]['link'],
  send: (log: ProbeLog, neighbour: string) => void,
  downAt?: number,
) {
  const logs: ProbeLog[] = []
  const script: ProbeScript = { onLinkUp: (log, n) => log.node === 0 && send(log, n) }
  const contacts: [number, 'up' | 'down', number, number][] = [[0, 'up', 0, 1]]
  if (downAt !== undefined) contacts.push([downAt, 'down', 0, 1])
  const input = tinyInput({ nodes: 2, durationMs: 60_000, contacts, link })
  const metrics = simulate(
    input,
    defineRouter({ factory: probeFactory(logs, script), makeStore: () => null }),
    {
      seed: 3,
    },
  )
  const at = (node: number) => logs.find((l) => l.node === node)!
  return { metrics, a: at(0), b: at(1) }
}

describe('link model', () => {
  it('delivers after serialisation plus latency, frames queued in order', () => {
    const { b, metrics } = twoNodes({ latencyMs: 10, bandwidth: 1000, loss: 0, mtu: 1000 }, (log, n) => {
      for (let i = 0; i < 3; i++) log.host.transmit(n, new Uint8Array(100).fill(i))
    })
    // 100 bytes at 1,000 B/s take 100 ms each; the last byte arrives 10 ms later.
    assert.deepEqual(
      b.received.map((r) => [r.time, r.frame[0]]),
      [
        [110, 0],
        [210, 1],
        [310, 2],
      ],
    )
    assert.equal(metrics.dataFrames, 3)
    assert.equal(metrics.bytesSent, 300)
  })

  it('serialises each direction separately', () => {
    const logs: ProbeLog[] = []
    const input = tinyInput({
      nodes: 2,
      durationMs: 10_000,
      contacts: [[0, 'up', 0, 1]],
      link: { latencyMs: 0, bandwidth: 1000, loss: 0, mtu: 1000 },
    })
    const factory = probeFactory(logs, { onLinkUp: (log, n) => log.host.transmit(n, new Uint8Array(500)) })
    simulate(input, defineRouter({ factory, makeStore: () => null }), { seed: 1 })
    for (const log of logs)
      assert.deepEqual(
        log.received.map((r) => r.time),
        [500],
      )
  })

  it('counts data and control frames apart', () => {
    const { metrics } = twoNodes({ latencyMs: 1 }, (log, n) => {
      log.host.transmit(n, new Uint8Array(10), 'control')
      log.host.transmit(n, new Uint8Array(20), 'control')
      log.host.transmit(n, new Uint8Array(30))
      log.host.transmit(n, new Uint8Array(40), 'data')
    })
    assert.equal(metrics.controlFrames, 2)
    assert.equal(metrics.dataFrames, 2)
    assert.equal(metrics.bytesSent, 100)
  })

  it('drops frames over the MTU and counts them as oversize', () => {
    const { b, metrics } = twoNodes({ mtu: 100 }, (log, n) => {
      log.host.transmit(n, new Uint8Array(100))
      log.host.transmit(n, new Uint8Array(101))
    })
    assert.deepEqual(
      b.received.map((r) => r.length),
      [100],
    )
    assert.equal(metrics.oversize, 1)
    assert.equal(metrics.dataFrames, 1, 'an oversize frame is not a transmission')
  })

  it('aborts a frame whose link goes down before its last byte arrives', () => {
    const { b, metrics } = twoNodes(
      { latencyMs: 0, bandwidth: 1000, loss: 0, mtu: 4000 },
      (log, n) => {
        log.host.transmit(n, new Uint8Array(100)) // arrives at 100 ms
        log.host.transmit(n, new Uint8Array(1000)) // would arrive at 1,100 ms
      },
      500,
    )
    assert.deepEqual(
      b.received.map((r) => r.time),
      [100],
    )
    assert.equal(metrics.framesAborted, 1)
    assert.ok(b.events.includes('500 down 0'))
  })

  it('does not carry frames to a neighbour without a link', () => {
    const { b, metrics } = twoNodes({}, (log) => {
      log.host.transmit('1', new Uint8Array(10)) // fine: the link is up
      log.host.transmit('7', new Uint8Array(10)) // no such neighbour
      log.host.transmit('not-a-node', new Uint8Array(10))
    })
    assert.equal(b.received.length, 1)
    assert.equal(metrics.noLink, 2)
  })

  it('loses frames with the link loss probability, reproducibly', () => {
    const run = () =>
      twoNodes({ loss: 0.3, bandwidth: Number.POSITIVE_INFINITY, latencyMs: 1 }, (log, n) => {
        for (let i = 0; i < 2000; i++) log.host.transmit(n, new Uint8Array(10))
      })
    const first = run()
    const second = run()
    assert.equal(first.metrics.framesLost + first.b.received.length, 2000)
    assert.ok(
      first.metrics.framesLost > 450 && first.metrics.framesLost < 750,
      `${first.metrics.framesLost} lost`,
    )
    assert.equal(second.metrics.framesLost, first.metrics.framesLost)
  })
})
