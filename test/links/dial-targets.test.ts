/**
 * The redial list's bookkeeping, without sockets: the bound that never pushes out pinned
 * addresses, the backoff, the slow pace for strangers' addresses that keep failing, and the peer
 * an address learns on its first successful dial. (test/net/dial-targets.test.ts checks the
 * same through real dials.)
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isTalkenError } from '../../src/errors.ts'
import {
  DialTargets,
  GIVEN_UP_DELAY_MS,
  HANG_UP_DELAY_MS,
  HANG_UPS_FORGOTTEN_MS,
  MAX_DIAL_TARGETS,
  MAX_TARGET_FAILURES,
} from '../../src/links/dial-targets.ts'
import { checkMultiaddrs } from '../../src/links/multiaddrs.ts'

const PEER = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'
const pace = { minMs: 1_000, maxMs: 60_000 }
const none = () => false

describe('DialTargets', () => {
  it('keeps pinned addresses when strangers fill the list, and pushes out the oldest stranger', () => {
    const targets = new DialTargets(pace)
    targets.add('/ip4/10.0.0.1/tcp/1', true)
    for (let i = 0; i < MAX_DIAL_TARGETS; i++) targets.add(`/ip4/10.1.${i >> 8}.${i & 255}/tcp/2`)
    const addresses = targets.due(0, none).map((t) => t.address)
    assert.equal(addresses.length, MAX_DIAL_TARGETS)
    assert.ok(addresses.includes('/ip4/10.0.0.1/tcp/1'))
    assert.ok(!addresses.includes('/ip4/10.1.0.0/tcp/2'), 'the oldest stranger went')
    assert.ok(addresses.includes('/ip4/10.1.0.1/tcp/2'))
  })

  it('backs off on failures, and tries a failing stranger only every half hour after 8 in a row', () => {
    const targets = new DialTargets(pace)
    const mine = targets.add('/ip4/10.0.0.1/tcp/1', true)
    const theirs = targets.add('/ip4/10.0.0.2/tcp/1')
    targets.failed(mine, 0)
    assert.equal(mine.nextAt, 1_000)
    targets.failed(mine, 0)
    assert.equal(mine.nextAt, 2_000)
    for (let i = 0; i < MAX_TARGET_FAILURES; i++) targets.failed(mine, 0)
    assert.equal(mine.nextAt, 60_000, 'pinned addresses keep the capped backoff')
    for (let i = 0; i < MAX_TARGET_FAILURES; i++) targets.failed(theirs, 0)
    assert.equal(theirs.nextAt, GIVEN_UP_DELAY_MS)
    assert.deepEqual(
      targets.due(60_000, none).map((t) => t.address),
      ['/ip4/10.0.0.1/tcp/1'],
    )
  })

  it('learns the peer behind an address on success, and skips it while connected', () => {
    const targets = new DialTargets(pace)
    const target = targets.add('/ip4/10.0.0.1/tcp/1', true)
    targets.failed(target, 0)
    targets.succeeded(target, PEER)
    const [learned] = targets.due(0, none)
    assert.equal(learned?.address, `/ip4/10.0.0.1/tcp/1/p2p/${PEER}`)
    assert.equal(learned?.peer, PEER)
    assert.equal(learned?.pinned, true)
    assert.equal(learned?.failures, 0)
    assert.deepEqual(
      targets.due(0, (peer) => peer === PEER),
      [],
    )
  })

  it('a peer we hung up on waits, longer each time, however its dials go; hang-ups are forgotten after a while', () => {
    const targets = new DialTargets(pace)
    const target = targets.add(`/ip4/10.0.0.1/tcp/1/p2p/${PEER}`)
    const other = targets.add('/ip4/10.0.0.2/tcp/1')
    const waits: number[] = []
    let now = 0
    for (let i = 0; i < 8; i++) {
      targets.hungUp(PEER, now)
      const until = targets.waitUntil(PEER)
      waits.push(until - now)
      assert.deepEqual(targets.due(until - 1, none), [other], 'only the other peer is due meanwhile')
      now = until
      assert.deepEqual(targets.due(now, none), [target, other])
      // Its dial succeeds (the peer answers, then closes our streams again): no reset of the wait.
      targets.succeeded(target, PEER)
    }
    assert.deepEqual(
      waits,
      [30_000, 60_000, 120_000, 240_000, 480_000, 960_000, 1_800_000, 1_800_000],
      'doubling up to half an hour',
    )
    targets.hungUp(PEER, now + HANG_UPS_FORGOTTEN_MS)
    assert.equal(targets.waitUntil(PEER) - (now + HANG_UPS_FORGOTTEN_MS), HANG_UP_DELAY_MS, 'forgotten')
  })

  it('refuses what is not a multiaddr with invalid_argument', () => {
    assert.throws(
      () => new DialTargets(pace).add('not an address'),
      (e: unknown) => isTalkenError(e, 'invalid_argument'),
    )
  })
})

describe('checkMultiaddrs', () => {
  it('refuses what is not a multiaddr, and a /p2p/ part that is not a peer ID', () => {
    checkMultiaddrs([`/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`, '/ip4/127.0.0.1/tcp/4001'], 'a bootstrap address')
    for (const bad of ['nonsense', '/ip4/127.0.0.1/tcp/4001/p2p/not-a-peer']) {
      assert.throws(
        () => checkMultiaddrs([bad], 'a bootstrap address'),
        (e: unknown) => isTalkenError(e, 'invalid_argument'),
        bad,
      )
    }
  })
})
