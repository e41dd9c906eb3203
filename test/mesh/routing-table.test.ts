import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { RoutingTable, tagKey } from '../../src/mesh/routing-table.ts'

const dest = (b: number) => new Uint8Array(16).fill(b)
const FOREVER = Number.MAX_SAFE_INTEGER

describe('mesh: the routing table', () => {
  it('a link going down changes the routes through it, in table order, and nothing else', () => {
    const t = new RoutingTable({ maxDestinations: 16 })
    for (const b of [3, 1, 2]) t.update(dest(b), 'n1', 1, 1, FOREVER)
    t.update(dest(4), 'n2', 1, 1, FOREVER)
    t.update(dest(2), 'n2', 1, 5, FOREVER) // a worse second way to 2
    const changed = t.dropNeighbour('n1').map((d) => d[0])
    assert.deepEqual(changed, [3, 1, 2], 'in the order the table learned them')
    assert.equal(t.nextHopByKey(tagKey(dest(2))), undefined, 'n2 is not feasible (metric above FD)')
    assert.equal(t.nextHopByKey(tagKey(dest(4))), 'n2', 'untouched')
    assert.deepEqual(t.dropNeighbour('n1'), [], 'nothing left through n1')
    assert.deepEqual(
      t.dropNeighbour('n2').map((d) => d[0]),
      [4],
      'only the selected route through n2 changed',
    )
  })

  it('lists changed destinations in table order until they are advertised', () => {
    const t = new RoutingTable({ maxDestinations: 16 })
    assert.equal(t.hasDirty(), false)
    for (const b of [9, 7, 8]) t.update(dest(b), 'n1', 1, 1, FOREVER)
    assert.deepEqual(
      t.peekDirty().map((a) => a.dest[0]),
      [9, 7, 8],
    )
    t.clearDirty()
    assert.equal(t.hasDirty(), false)
    assert.deepEqual(t.peekDirty(), [])
    t.dropNeighbour('n1')
    const retracted = t.peekDirty()
    assert.deepEqual(
      retracted.map((a) => [a.dest[0], a.metric]),
      [
        [9, 0xffff],
        [7, 0xffff],
        [8, 0xffff],
      ],
    )
  })

  it('a destination forgotten to make room leaves no trace behind', () => {
    const changes: string[] = []
    const t = new RoutingTable({ maxDestinations: 2, onChange: (k) => changes.push(k) })
    t.update(dest(1), 'n1', 1, 1, FOREVER)
    t.update(dest(2), 'n2', 1, 3, FOREVER)
    t.update(dest(2), 'n1', 1, 4, FOREVER) // a second, worse way to 2
    t.update(dest(3), 'n2', 1, 0, FOREVER) // full: the farthest (2, metric 4) goes
    assert.equal(t.size, 2)
    assert.equal(t.knows(tagKey(dest(2))), false)
    assert.ok(changes.includes(tagKey(dest(2))))
    assert.deepEqual(
      t.peekDirty().map((a) => a.dest[0]),
      [1, 3],
      'the forgotten one is not advertised',
    )
    assert.deepEqual(
      t.dropNeighbour('n1').map((d) => d[0]),
      [1],
    )
    assert.deepEqual(
      t.dropNeighbour('n2').map((d) => d[0]),
      [3],
    )
  })

  it('a destination forgotten to make room takes its feasibility distance back when learned again', () => {
    const t = new RoutingTable({ maxDestinations: 2 })
    t.update(dest(1), 'n1', 5, 9, FOREVER) // FD (5, 10): the farthest
    t.update(dest(2), 'n1', 1, 3, FOREVER)
    t.update(dest(3), 'n1', 1, 4, FOREVER) // full: 1 goes
    assert.equal(t.knows(tagKey(dest(1))), false, 'forgotten to make room')
    // A way to 1 longer than the one we advertised (a route through us, say) is no more feasible
    // than before.
    t.update(dest(1), 'n2', 5, 10, FOREVER)
    assert.equal(t.nextHopByKey(tagKey(dest(1))), undefined)
    assert.equal(t.feasibilitySeqno(dest(1)), 5)
    // A newer seqno is.
    t.update(dest(1), 'n2', 6, 3, FOREVER)
    assert.equal(t.nextHopByKey(tagKey(dest(1))), 'n2')
  })

  it('a neighbour offering more than half the table makes room from its own offers', () => {
    const t = new RoutingTable({ maxDestinations: 16 })
    for (let b = 1; b <= 3; b++) t.update(dest(b), 'honest', 1, 6, FOREVER)
    for (let b = 10; b < 100; b++) t.update(dest(b), 'flooder', 1, 0, FOREVER)
    assert.equal(t.size, 16)
    for (let b = 1; b <= 3; b++) assert.equal(t.nextHopByKey(tagKey(dest(b))), 'honest', `${b} kept`)
  })

  it('forgets a destination nobody offered for the hold time (and a pass), feasibility distance and all', () => {
    const HOLD = 600_000
    const PASS = 60_000
    const t = new RoutingTable({ maxDestinations: 16, forgetAfterMs: HOLD })
    const d = tagKey(dest(5))
    t.update(dest(5), 'n1', 7, 1, FOREVER) // selected at metric 2: FD (7, 2)
    t.dropNeighbour('n1')
    t.update(dest(5), 'n2', 7, 4, FOREVER)
    assert.equal(t.nextHopByKey(d), undefined, 'the same seqno over a longer path is not feasible')
    t.dropNeighbour('n2')
    t.clearDirty() // the retraction went out
    t.expire(0) // a pass: offers came since the last one
    t.expire(1) // not a pass: passes come a minute apart
    let now = PASS
    t.expire(now) // the pass that finds it without candidates marks it
    for (now += PASS; now < PASS + HOLD + PASS; now += PASS) {
      t.expire(now)
      assert.equal(t.knows(d), true, `kept at ${now} ms`)
    }
    t.expire(now)
    assert.equal(t.knows(d), false, 'forgotten a hold time and a pass after the mark')
    // Coming back with its old seqno over a longer path: feasible now, with no request for a newer one.
    t.update(dest(5), 'n2', 7, 4, FOREVER)
    assert.equal(t.nextHopByKey(d), 'n2')
  })

  it('keeps a destination that was offered again, or whose retraction is still to go out', () => {
    const HOLD = 120_000
    const PASS = 60_000
    const t = new RoutingTable({ maxDestinations: 16, forgetAfterMs: HOLD })
    const a = tagKey(dest(1))
    const b = tagKey(dest(2))
    t.update(dest(1), 'n1', 3, 1, FOREVER)
    t.update(dest(2), 'n2', 3, 1, FOREVER)
    t.expire(0)
    t.dropNeighbour('n1')
    t.dropNeighbour('n2')
    t.clearDirty()
    t.expire(PASS) // both marked
    // 1 is offered and lost again between two passes: its clock starts over.
    t.update(dest(1), 'n3', 3, 1, FOREVER)
    t.dropNeighbour('n3')
    t.clearDirty()
    t.expire(2 * PASS)
    // 2 is offered and dropped again, and the retraction has not been sent by the time it is due.
    t.update(dest(2), 'n4', 4, 1, FOREVER)
    t.dropNeighbour('n4')
    for (let now = 3 * PASS; now <= 10 * PASS; now += PASS) t.expire(now)
    assert.equal(t.knows(b), true, 'an unsent retraction keeps it')
    t.clearDirty()
    t.expire(11 * PASS)
    assert.equal(t.knows(b), false)
    assert.equal(t.knows(a), false)
    // Without a hold time (the default) nothing is ever forgotten this way.
    const keep = new RoutingTable({ maxDestinations: 16 })
    keep.update(dest(1), 'n1', 3, 1, FOREVER)
    keep.dropNeighbour('n1')
    keep.clearDirty()
    for (let now = 0; now <= 100 * PASS; now += PASS) keep.expire(now)
    assert.equal(keep.knows(a), true)
  })
})
