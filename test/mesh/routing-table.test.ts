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
})
