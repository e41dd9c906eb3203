/**
 * Room actions on a full disk: the action throws `storage_full` to its caller, and nothing of it
 * stays, in the store or in memory (no room listed that is not stored, no post in the history
 * that is not stored), whether a write fails on its way or the commit does.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isTalkenError } from '../../src/errors.ts'
import { loadIdentity, openHome } from '../../src/node/data-dir.ts'
import { createNode } from '../../src/node/node.ts'
import type { Store } from '../../src/store/store.ts'
import { fillable, fullAtCommit } from '../helpers/full-disk.ts'
import { makeHome } from '../helpers/nodes.ts'

const full = (err: unknown) => isTalkenError(err, 'storage_full')

describe('room actions on a full disk', () => {
  for (const [when, wrap] of [
    ['at commit', fullAtCommit],
    ['on a write', fillable],
  ] as const) {
    it(`${when}: create and post throw storage_full, and leave nothing behind`, async (t) => {
      const home = makeHome('Ada')
      const opened = openHome({ home: home.home })
      t.after(() => {
        opened.close()
        home.remove()
      })
      const disk = { full: false }
      const store: Store = wrap(opened.store, disk)
      const node = await createNode({ store, identity: loadIdentity({ home: home.home }), mdns: false })
      t.after(() => node.stop())
      const raised: Error[] = []
      node.on('error', (err) => raised.push(err))
      node.rooms.create('club')
      const stored = () => opened.store.kvList('groups/rooms').length

      disk.full = true
      assert.throws(() => node.rooms.post('club', 'while full'), full)
      assert.deepEqual(
        node.rooms.history('club').map((h) => h.kind),
        ['genesis'],
      )
      assert.throws(() => node.rooms.create('second'), full)
      assert.deepEqual(
        node.rooms.list().map((r) => r.name),
        ['club'],
      )
      assert.equal(stored(), 1)
      // The caller had the error: nothing is raised besides.
      assert.deepEqual(raised, [])

      disk.full = false
      node.rooms.post('club', 'with room')
      assert.deepEqual(
        node.rooms.history('club').map((h) => h.text ?? h.kind),
        ['genesis', 'with room'],
      )
    })
  }
})
