import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateDhKey } from '../../src/e2e/primitives.ts'
import { toHex } from '../../src/groups/entry.ts'
import { decodeAddBody, decodeGenesisBody, decodeRotateBody } from '../../src/groups/room-bodies.ts'
import { throwsCode } from '../helpers/errors.ts'
import { add, founder, joiner, postReadOnlyBy, reads, sync, T0, type TestMember, utf8 } from './helpers.ts'

/** What a member's log and store hold: entries, heads, and stored entries and keys. */
function held(m: TestMember) {
  const room = toHex(m.log.roomId)
  return {
    size: m.log.size,
    heads: m.log.heads().map(toHex),
    stored: m.store.kvList(`groups/entries/${room}`).length,
    keys: m.store.kvList(`groups/keys/${room}`).length,
  }
}

const sealTarget = (m: TestMember) => ({
  account: m.identity.account.publicKey,
  sealingKey: m.sealer.sealingKey,
})

/**
 * Alice adds Bob as admin while Carol, who has not seen it, rotates the key twice (so hers is the
 * current key once the histories merge): everyone then holds one history in which Bob does not
 * hold the current key.
 */
function bobLeftOutOfTheKey(): { alice: TestMember; bob: TestMember; carol: TestMember } {
  const alice = founder('alice')
  const carol = joiner('carol', alice.log.roomId)
  add(alice, carol)
  sync(alice.log, carol.log)
  const bob = joiner('bob', alice.log.roomId)
  add(alice, bob, 'admin')
  carol.log.rotateKey(T0 + 1)
  carol.log.rotateKey(T0 + 2)
  sync(alice.log, carol.log)
  sync(alice.log, bob.log)
  return { alice, bob, carol }
}

describe('room log: the key an add hands over', () => {
  it('an admin who does not hold the current key (a rotation concurrent with its add) rotates first, then adds', () => {
    const { alice, bob, carol } = bobLeftOutOfTheKey()
    const dave = joiner('dave', alice.log.roomId)
    const added = bob.log.addMember(sealTarget(dave), T0 + 3)
    // The rotation is the add's one parent, so a caller publishes it as it does a post's.
    assert.equal(added.parents.length, 1)
    const rotation = bob.log.entry(added.parents[0]!)!
    assert.equal(rotation.kind, 'rotate')
    assert.deepEqual(rotation.author, bob.identity.account.publicKey)
    assert.deepEqual(decodeAddBody(added.body).keyId, decodeRotateBody(rotation.body).keyId)
    sync(bob.log, dave.log)
    sync(bob.log, alice.log)
    sync(alice.log, carol.log)
    assert.equal(alice.log.members().length, 4)
    postReadOnlyBy(dave, 'hello from dave', T0 + 10, { cannot: [], can: [alice, bob, carol] })
    postReadOnlyBy(carol, 'hello dave', T0 + 11, { cannot: [], can: [alice, bob, dave] })
  })

  it('an add refused after the rotation it needed (its writer is no admin) takes the rotation with it', () => {
    const { alice, carol } = bobLeftOutOfTheKey()
    const dave = joiner('dave', alice.log.roomId)
    const before = held(carol)
    const err = throwsCode(() => carol.log.addMember(sealTarget(dave), T0 + 3), 'not_permitted')
    assert.equal(err.details?.reason, 'not_admin')
    assert.deepEqual(held(carol), before)
    // Nothing stuck: Carol still posts (rotating then), and Alice adds Dave.
    carol.log.post(utf8('still here'), T0 + 4)
    sync(carol.log, alice.log)
    alice.log.addMember(sealTarget(dave), T0 + 5)
    sync(alice.log, dave.log)
    assert.ok(reads(dave.log, 'still here'), 'the key current at its add')
    postReadOnlyBy(alice, 'welcome', T0 + 6, { cannot: [], can: [carol, dave] })
  })

  it('an add after a member left hands the newcomer a new key, not one the leaver holds', () => {
    const alice = founder('alice')
    const bob = joiner('bob', alice.log.roomId)
    add(alice, bob)
    sync(alice.log, bob.log)
    const first = decodeGenesisBody(alice.log.entry(alice.log.roomId)!.body).keyId
    bob.log.leave(T0 + 1)
    sync(alice.log, bob.log)
    const dave = joiner('dave', alice.log.roomId)
    const added = alice.log.addMember(sealTarget(dave), T0 + 2)
    const keyId = decodeAddBody(added.body).keyId
    assert.notDeepEqual(keyId, first, 'not the key Bob holds')
    assert.equal(alice.log.entry(added.parents[0]!)!.kind, 'rotate')
    sync(alice.log, dave.log)
    postReadOnlyBy(dave, 'after bob left', T0 + 3, { cannot: [bob], can: [alice] })
  })

  it('an account added with a sealing key not its own cannot post or add: not_found, and nothing is written', () => {
    const alice = founder('alice')
    const bob = joiner('bob', alice.log.roomId)
    // Alice adds Bob's account (as admin) with a sealing key that is not Bob's.
    alice.log.addMember(
      { account: bob.identity.account.publicKey, sealingKey: generateDhKey().publicKey, role: 'admin' },
      T0,
    )
    sync(alice.log, bob.log)
    assert.equal(bob.log.members().length, 2)
    const before = held(bob)
    const dave = joiner('dave', alice.log.roomId)
    for (let attempt = 0; attempt < 3; attempt++) {
      const post = throwsCode(() => bob.log.post(utf8('hello?'), T0 + 1 + attempt), 'not_found')
      assert.equal(post.details?.reason, 'no_room_key')
      const added = throwsCode(() => bob.log.addMember(sealTarget(dave), T0 + 1 + attempt), 'not_found')
      assert.equal(added.details?.reason, 'no_room_key')
      assert.deepEqual(held(bob), before, 'no rotation written')
    }
    // Rotating on its own is allowed (a member may), and seals a key Bob still cannot open.
    bob.log.rotateKey(T0 + 10)
    throwsCode(() => bob.log.post(utf8('hello?'), T0 + 11), 'not_found')
  })
})
