import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { toHex } from '../../src/groups/entry.ts'
import { MAX_PARENTS } from '../../src/groups/limits.ts'
import { decodeRotateBody } from '../../src/groups/room-bodies.ts'
import {
  add,
  founder,
  joiner,
  postReadOnlyBy,
  sync,
  T0,
  type TestMember,
  utf8,
  writtenOn,
} from './helpers.ts'

/**
 * Alice adds Mallory, then Dave; Mallory, who has not seen Dave's add, writes a chain deeper than
 * it on the head before it, then more heads side by side than an entry links. Alice and Dave hold
 * all of it: the 16 deepest heads are Mallory's, and their past lacks Dave's add.
 */
function daveOutsideTheDeepest(): { alice: TestMember; mallory: TestMember; dave: TestMember } {
  const alice = founder('alice')
  const mallory = joiner('mallory', alice.log.roomId)
  add(alice, mallory)
  sync(alice.log, mallory.log)
  const dave = joiner('dave', alice.log.roomId)
  add(alice, dave)
  let tip = mallory.log.post(utf8('m0'), T0 + 1)
  for (let i = 1; i < 3; i++) tip = mallory.log.post(utf8(`m${i}`), T0 + 1 + i)
  for (let i = 0; i <= MAX_PARENTS; i++) {
    assert.equal(
      mallory.log.receive(writtenOn(mallory, tip, 'post', tip.body, T0 + 10 + i).bytes).status,
      'accepted',
    )
  }
  sync(alice.log, mallory.log)
  sync(alice.log, dave.log)
  assert.equal(alice.log.heads().length, MAX_PARENTS + 2, "Mallory's heads and Dave's add")
  assert.equal(alice.log.members().length, 3)
  return { alice, mallory, dave }
}

const account = (m: TestMember) => toHex(m.identity.account.publicKey)

describe('room log: the heads an entry links, when there are more than it can', () => {
  it('a member whose add lies outside the deepest heads still posts: its own add is linked', () => {
    const { alice, mallory, dave } = daveOutsideTheDeepest()
    const post = dave.log.post(utf8('dave here'), T0 + 100)
    assert.equal(post.parents.length, MAX_PARENTS)
    sync(dave.log, alice.log)
    sync(alice.log, mallory.log)
    assert.ok(alice.log.has(post.hash))
    postReadOnlyBy(dave, 'dave again', T0 + 101, { cannot: [], can: [alice, mallory] })
  })

  it('a member whose add lies outside the deepest heads still leaves', () => {
    const { alice, dave } = daveOutsideTheDeepest()
    const leave = dave.log.leave(T0 + 100)
    sync(dave.log, alice.log)
    assert.ok(alice.log.has(leave.hash))
    assert.ok(!alice.log.members().some((m) => toHex(m.account) === account(dave)))
    assert.equal(alice.log.members().length, 2)
  })

  it("another member's rotation links that add, so the new key is sealed for every member", () => {
    const { alice, mallory, dave } = daveOutsideTheDeepest()
    const rotation = alice.log.rotateKey(T0 + 100)
    const sealed = decodeRotateBody(rotation.body).sealed.map((s) => toHex(s.account))
    assert.deepEqual(sealed.sort(), [alice, mallory, dave].map(account).sort())
    postReadOnlyBy(alice, 'under the new key', T0 + 101, { cannot: [], can: [mallory, dave] })
  })
})
