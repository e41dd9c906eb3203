import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decode, encode } from 'cborg'
import { TalkenError } from '../../src/errors.ts'
import { decodeEntry, signEntry, toHex } from '../../src/groups/entry.ts'
import {
  MAX_ENTRY_BYTES,
  MAX_PARENTS,
  MAX_PENDING_ENTRIES,
  MAX_ROOM_MEMBERS,
} from '../../src/groups/limits.ts'
import {
  decodeGenesisBody,
  decodeRemoveBody,
  encodeAddBody,
  encodePostBody,
  encodeRemoveBody,
  encodeRotateBody,
} from '../../src/groups/room-bodies.ts'
import { openPostEntry } from '../../src/groups/room-keys.ts'
import { openRoomLog } from '../../src/groups/room-log.ts'
import { createIdentity } from '../../src/identity/identity.ts'
import type { Store } from '../../src/store/store.ts'
import { throwsCode } from '../helpers/errors.ts'
import { prng, testSeed } from '../helpers/prng.ts'
import {
  add,
  founder,
  joiner,
  postReadOnlyBy,
  reads,
  reopen,
  sealedForAll,
  sync,
  T0,
  type TestMember,
  transcript,
  utf8,
  writtenOn,
} from './helpers.ts'

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

/** A post body under no key anyone holds: what a removed member writes to make heads. */
const junk = () =>
  encodePostBody({ keyId: new Uint8Array(16), nonce: new Uint8Array(12), ciphertext: new Uint8Array(16) })

/** A room of three: Alice (admin) with Bob and Carol, everyone holding the same history. */
function roomOfThree(): TestMember[] {
  const alice = founder('alice')
  const bob = joiner('bob', alice.log.roomId)
  const carol = joiner('carol', alice.log.roomId)
  add(alice, bob)
  add(alice, carol)
  sync(alice.log, bob.log)
  sync(alice.log, carol.log)
  return [alice, bob, carol]
}

describe('room log', () => {
  it('three partitioned members post concurrently, then reconcile to one verified history', () => {
    const seed = testSeed()
    console.log(`# room seed ${seed} (replay with TALKEN_SEED=${seed})`)
    const rand = prng(seed)
    const [alice, bob, carol] = roomOfThree() as [TestMember, TestMember, TestMember]
    const members = [alice, bob, carol]
    // A line alice — bob — carol, every link down: each posts on its own.
    for (let i = 0; i < 30; i++) {
      const m = members[Math.floor(rand() * 3)]!
      m.log.post(utf8(`${m.name} ${i}`), T0 + i)
    }
    assert.notDeepEqual(transcript(alice.log), transcript(carol.log))
    // The links heal; alice and carol never meet directly: bob carries between them.
    for (let round = 0; round < 3; round++) {
      sync(alice.log, bob.log)
      sync(bob.log, carol.log)
    }
    const reference = transcript(alice.log)
    assert.equal(reference.filter((l) => l.includes(' post ')).length, 30)
    assert.ok(!reference.some((l) => l.includes(' post ') && l.endsWith(' -')), 'every post decrypts')
    for (const m of members) {
      assert.deepEqual(transcript(m.log), reference, `${m.name} holds the same history`)
      assert.deepEqual(m.log.heads().map(hex), alice.log.heads().map(hex))
      assert.equal(sync(m.log, alice.log), 0, 'nothing left to exchange')
    }
    // Causal order: every entry comes after its parents.
    const at = new Map(alice.log.entries().map((e, i) => [hex(e.hash), i]))
    for (const e of alice.log.entries())
      for (const p of e.parents) assert.ok(at.get(hex(p))! < at.get(hex(e.hash))!)
    // A post after the merge links every head: the DAG closes again.
    bob.log.post(utf8('merged'), T0 + 100)
    sync(bob.log, alice.log)
    sync(bob.log, carol.log)
    for (const m of members) assert.equal(m.log.heads().length, 1)
  })

  it('rejects a forged entry, a replay and a missing parent (or holds them), history unaffected', () => {
    const [alice, bob, carol] = roomOfThree() as [TestMember, TestMember, TestMember]
    alice.log.post(utf8('one'), T0 + 1)
    sync(alice.log, bob.log)
    const before = transcript(bob.log)

    // Forged: a post re-signed by someone else's key, and a post with a changed body.
    const honest = decode(alice.log.entries().at(-1)!.bytes) as unknown[]
    const altered = [...honest]
    altered[7] = new Uint8Array((honest[7] as Uint8Array).length)
    throwsCode(() => bob.log.receive(encode(altered)), 'bad_signature')
    const outsider = createIdentity({ now: T0, deviceName: 'mallory' })
    const foreign = signEntry(outsider, {
      roomId: alice.log.roomId,
      parents: bob.log.heads(),
      depth: bob.log.entries().at(-1)!.depth + 1,
      kind: 'post',
      body: decodeEntry(alice.log.entries().at(-1)!.bytes).body,
      time: T0 + 2,
    })
    const err = throwsCode(() => bob.log.receive(foreign.bytes), 'not_permitted')
    assert.equal(err.details?.reason, 'not_member')
    // A member cannot add: only admins.
    throwsCode(() => add(bob, outsiderMember()), 'not_permitted')

    // A wrong depth is a broken link.
    const deep = signEntry(carol.identity, {
      roomId: alice.log.roomId,
      parents: bob.log.heads(),
      depth: 99,
      kind: 'leave',
      body: new Uint8Array(0),
      time: T0 + 3,
    })
    assert.equal(throwsCode(() => bob.log.receive(deep.bytes), 'malformed').details?.reason, 'bad_depth')

    // Replayed: the same entry again, and everything again, changes nothing; asked to, it is an error.
    for (const bytes of alice.log.entriesSince([])) {
      assert.equal(bob.log.receive(bytes).status, 'duplicate')
      assert.equal(
        throwsCode(() => bob.log.receive(bytes, { rejectDuplicate: true }), 'replayed').details?.reason,
        'duplicate',
      )
    }

    // Missing parent: carol's post that builds on one bob has not seen yet.
    carol.log.post(utf8('carol first'), T0 + 4)
    const child = carol.log.post(utf8('carol second'), T0 + 5)
    throwsCode(() => bob.log.receive(child.bytes, { rejectMissing: true }), 'not_found')
    const held = bob.log.receive(child.bytes)
    assert.equal(held.status, 'pending')
    assert.equal(bob.log.has(child.hash), false)
    assert.deepEqual(transcript(bob.log), before, 'the honest history is unaffected')

    // A flood of entries claiming made-up parents stays bounded.
    for (let i = 0; i < MAX_PENDING_ENTRIES + 40; i++) {
      const fake = signEntry(carol.identity, {
        roomId: alice.log.roomId,
        parents: [new Uint8Array(32).fill(i % 256).map((b, j) => (j === 0 ? i >> 8 : b))],
        depth: 5,
        kind: 'leave',
        body: new Uint8Array(0),
        time: T0,
      })
      bob.log.receive(fake.bytes)
    }
    assert.ok(bob.log.size.pending <= MAX_PENDING_ENTRIES)

    // The missing parent arrives: the held child comes in with it (if not evicted), or on sync.
    sync(carol.log, bob.log)
    assert.ok(bob.log.has(child.hash))
    assert.deepEqual(transcript(bob.log), transcript(carol.log))
  })

  it('a held entry is taken in, or dropped, once its parents arrive', () => {
    const [alice, bob] = roomOfThree() as [TestMember, TestMember, TestMember]
    const parent = alice.log.post(utf8('parent'), T0 + 1)
    const child = alice.log.post(utf8('child'), T0 + 2)
    const outsider = createIdentity({ now: T0, deviceName: 'mallory' })
    const forged = signEntry(outsider, {
      roomId: alice.log.roomId,
      parents: [parent.hash],
      depth: parent.depth + 1,
      kind: 'leave',
      body: new Uint8Array(0),
      time: T0 + 3,
    })
    assert.equal(bob.log.receive(child.bytes).status, 'pending')
    assert.equal(bob.log.receive(forged.bytes).status, 'pending')
    assert.equal(bob.log.size.pending, 2)
    const result = bob.log.receive(parent.bytes)
    assert.equal(result.status, 'accepted')
    if (result.status !== 'accepted') return
    assert.deepEqual(result.released.map(hex), [hex(child.hash)])
    assert.deepEqual(result.dropped.map(hex), [hex(forged.hash)])
    assert.equal(bob.log.size.pending, 0)
    assert.deepEqual(transcript(bob.log), transcript(alice.log))
  })

  it('a removed member decrypts nothing posted after the removal and cannot post', () => {
    const [alice, bob, carol] = roomOfThree() as [TestMember, TestMember, TestMember]
    alice.log.post(utf8('before'), T0 + 1)
    sync(alice.log, bob.log)
    sync(alice.log, carol.log)
    alice.log.removeMember(bob.identity.account.publicKey, T0 + 2)
    alice.log.post(utf8('after, alice'), T0 + 3)
    sync(alice.log, carol.log)
    carol.log.post(utf8('after, carol'), T0 + 4)
    sync(carol.log, alice.log)
    // Bob still gets the entries (they are signed and public in shape); the contents stay shut.
    sync(alice.log, bob.log)
    const seen = bob.log.history().filter((h) => h.kind === 'post')
    assert.equal(seen.length, 3)
    assert.equal(new TextDecoder().decode(seen[0]!.content), 'before')
    assert.equal(seen[1]!.content, undefined)
    assert.equal(seen[2]!.content, undefined)
    assert.deepEqual(
      carol.log
        .history()
        .filter((h) => h.kind === 'post')
        .map((h) => new TextDecoder().decode(h.content)),
      ['before', 'after, alice', 'after, carol'],
    )
    assert.equal(
      throwsCode(() => bob.log.post(utf8('still here?'), T0 + 5), 'not_permitted').details?.reason,
      'not_member',
    )
    assert.deepEqual(
      alice.log.members().map((m) => hex(m.account)),
      [alice, carol].map((m) => hex(m.identity.account.publicKey)).sort(),
    )
  })

  it('a removal concurrent with an add: everyone agrees, and the next key skips the removed', () => {
    const alice = founder('alice')
    const [bob, carol, dave] = ['bob', 'carol', 'dave'].map((n) => joiner(n, alice.log.roomId)) as [
      TestMember,
      TestMember,
      TestMember,
    ]
    add(alice, bob)
    add(alice, carol, 'admin')
    sync(alice.log, bob.log)
    sync(alice.log, carol.log)
    // Partitioned: alice removes bob while carol adds dave.
    alice.log.removeMember(bob.identity.account.publicKey, T0 + 1)
    add(carol, dave, 'member', T0 + 1)
    sync(carol.log, dave.log)
    for (let round = 0; round < 2; round++)
      for (const [x, y] of pairs([alice, bob, carol, dave])) sync(x.log, y.log)
    const expected = [alice, carol, dave].map((m) => hex(m.identity.account.publicKey)).sort()
    for (const m of [alice, bob, carol, dave]) {
      assert.deepEqual(
        m.log.members().map((x) => hex(x.account)),
        expected,
        `${m.name}'s view of the members`,
      )
    }
    // The removal's key was sealed without dave: the next post rotates to one for all three.
    dave.log.post(utf8('hi all'), T0 + 2)
    for (const [x, y] of pairs([alice, bob, carol, dave])) sync(x.log, y.log)
    for (const m of [alice, carol, dave])
      assert.equal(new TextDecoder().decode(m.log.history().at(-1)!.content), 'hi all')
    assert.equal(bob.log.history().at(-1)!.content, undefined)
  })

  it('two admins removing each other concurrently: one deterministic outcome everywhere', () => {
    const alice = founder('alice')
    const [bob, carol] = ['bob', 'carol'].map((n) => joiner(n, alice.log.roomId)) as [TestMember, TestMember]
    add(alice, bob)
    add(alice, carol, 'admin')
    sync(alice.log, bob.log)
    sync(alice.log, carol.log)
    alice.log.removeMember(carol.identity.account.publicKey, T0 + 1)
    carol.log.removeMember(alice.identity.account.publicKey, T0 + 1)
    for (let round = 0; round < 2; round++)
      for (const [x, y] of pairs([alice, bob, carol])) sync(x.log, y.log)
    const views = [alice, bob, carol].map((m) =>
      m.log
        .members()
        .map((x) => hex(x.account))
        .join(','),
    )
    assert.equal(new Set(views).size, 1)
    assert.equal(alice.log.members().length, 2)
  })

  it('after a leave, the next post rotates the key away from the leaver', () => {
    const [alice, bob, carol] = roomOfThree() as [TestMember, TestMember, TestMember]
    bob.log.leave(T0 + 1)
    sync(bob.log, alice.log)
    alice.log.post(utf8('bob has gone'), T0 + 2)
    assert.deepEqual(
      alice.log
        .history()
        .map((h) => h.kind)
        .slice(-3),
      ['leave', 'rotate', 'post'],
    )
    sync(alice.log, bob.log)
    sync(alice.log, carol.log)
    assert.equal(bob.log.history().at(-1)!.content, undefined)
    assert.equal(new TextDecoder().decode(carol.log.history().at(-1)!.content), 'bob has gone')
  })

  it('a late joiner catches up from any member, verifying all and reading what its keys allow', () => {
    const [alice, bob, carol] = roomOfThree() as [TestMember, TestMember, TestMember]
    bob.log.post(utf8('old epoch'), T0 + 1)
    sync(bob.log, alice.log)
    alice.log.rotateKey(T0 + 2)
    alice.log.post(utf8('new epoch'), T0 + 3)
    const dave = joiner('dave', alice.log.roomId)
    add(alice, dave)
    sync(alice.log, carol.log)
    // Dave meets only Carol.
    assert.equal(dave.log.size.entries, 0)
    sync(carol.log, dave.log)
    assert.deepEqual(
      dave.log.entries().map((e) => hex(e.hash)),
      carol.log.entries().map((e) => hex(e.hash)),
    )
    const posts = dave.log.history().filter((h) => h.kind === 'post')
    assert.deepEqual(
      posts.map((h) => (h.content ? new TextDecoder().decode(h.content) : undefined)),
      [undefined, 'new epoch'],
    )
    dave.log.post(utf8('hello from dave'), T0 + 4)
    sync(dave.log, bob.log)
    assert.equal(new TextDecoder().decode(bob.log.history().at(-1)!.content), 'hello from dave')
  })

  it('an add left out because concurrent adds filled the room still handed over its key: the next post rotates it away', () => {
    const alice = founder('alice')
    const bob = joiner('bob', alice.log.roomId)
    add(alice, bob, 'admin')
    for (let i = 2; i < MAX_ROOM_MEMBERS - 1; i++) {
      const account = new Uint8Array(32)
      account[0] = i
      alice.log.addMember({ account, sealingKey: alice.sealer.sealingKey }, T0 + i)
    }
    sync(alice.log, bob.log)
    // One place left; Alice and Bob each fill it at once.
    const x = joiner('x', alice.log.roomId)
    const y = joiner('y', alice.log.roomId)
    add(alice, x)
    add(bob, y)
    sync(alice.log, bob.log)
    const inRoom = new Set(alice.log.members().map((m) => toHex(m.account)))
    assert.equal(inRoom.size, MAX_ROOM_MEMBERS)
    const outsider = [x, y].find((m) => !inRoom.has(toHex(m.identity.account.publicKey)))!
    postReadOnlyBy(alice, 'members only', T0 + 500, { cannot: [outsider], can: [bob] })
  })

  it('refuses entries of another room, and holds a full room within the entry limit', () => {
    const alice = founder('alice')
    const other = founder('other', 'elsewhere')
    other.log.post(utf8('elsewhere'), T0 + 1)
    for (const bytes of other.log.entriesSince([])) {
      assert.equal(throwsCode(() => alice.log.receive(bytes), 'malformed').details?.reason, 'wrong_room')
    }
    // Fill the room to its limit; a rotation then seals for every member and still fits.
    for (let i = 1; i < MAX_ROOM_MEMBERS; i++) {
      const account = new Uint8Array(32)
      account[0] = i
      alice.log.addMember({ account, sealingKey: alice.sealer.sealingKey }, T0 + i)
    }
    assert.equal(alice.log.members().length, MAX_ROOM_MEMBERS)
    const full = new Uint8Array(32).fill(0xff)
    const err = throwsCode(
      () => alice.log.addMember({ account: full, sealingKey: alice.sealer.sealingKey }, T0),
      'malformed',
    )
    assert.equal(err.details?.reason, 'room_full')
    const rotation = alice.log.rotateKey(T0 + 200)
    assert.ok(rotation.bytes.length <= MAX_ENTRY_BYTES)
    const copy = joiner('copy', alice.log.roomId)
    sync(alice.log, copy.log)
    assert.equal(copy.log.members().length, MAX_ROOM_MEMBERS)
  })

  it('with more heads than one entry may link, writers judge from the heads they link', () => {
    const alice = founder('alice')
    const crowd = Array.from({ length: MAX_PARENTS + 4 }, (_, i) => joiner(`m${i}`, alice.log.roomId))
    for (const m of crowd) add(alice, m)
    for (const m of crowd) sync(alice.log, m.log)
    // Everyone posts on the same history: alice ends with one head per member.
    for (const m of crowd) m.log.post(utf8(m.name), T0 + 1)
    for (const m of crowd) sync(m.log, alice.log)
    assert.equal(alice.log.heads().length, crowd.length)
    // A removal links 16 heads and seals for the members of exactly that past.
    const removal = alice.log.removeMember(crowd[0]!.identity.account.publicKey, T0 + 2)
    assert.equal(removal.parents.length, MAX_PARENTS)
    alice.log.post(utf8('after'), T0 + 3)
    assert.equal(alice.log.heads().length, 1)
    for (const m of crowd) sync(alice.log, m.log)
    assert.equal(crowd[0]!.log.history().at(-1)!.content, undefined)
    assert.equal(new TextDecoder().decode(crowd[1]!.log.history().at(-1)!.content), 'after')
  })

  it('keeps its history across a restart, and a replay after it is still a duplicate', () => {
    const [alice, bob] = roomOfThree() as [TestMember, TestMember, TestMember]
    bob.log.post(utf8('persisted'), T0 + 1)
    const before = transcript(bob.log)
    bob.log = reopen(bob)
    assert.deepEqual(transcript(bob.log), before)
    for (const bytes of alice.log.entriesSince([])) assert.equal(bob.log.receive(bytes).status, 'duplicate')
    bob.log.post(utf8('after restart'), T0 + 2)
    sync(bob.log, alice.log)
    assert.deepEqual(transcript(alice.log), transcript(bob.log))
  })
})

function pairs<T>(items: readonly T[]): Array<[T, T]> {
  const out: Array<[T, T]> = []
  for (let i = 0; i < items.length; i++)
    for (let j = i + 1; j < items.length; j++) out.push([items[i]!, items[j]!])
  return out
}

/** Alice's room, and Bob in it as `role`, both logs in step. */
function aliceAndBob(role: 'member' | 'admin') {
  const alice = founder('alice')
  const bob = joiner('bob', alice.log.roomId)
  sync(alice.log, bob.log)
  add(alice, bob, role, T0 + 1)
  return { alice, bob }
}

function outsiderMember(): TestMember {
  return joiner('outsider', new Uint8Array(32))
}

describe('room log: a transaction undone', () => {
  it('takes the entry it stored out of memory too: a copy that comes again is accepted, and the log reopens', () => {
    const { alice, bob } = aliceAndBob('member')
    sync(alice.log, bob.log)
    const e = bob.log.post(utf8('from bob'), T0 + 2)
    const heads = alice.log.heads().map(toHex)
    // The node's step that took the entry in is undone (a full disk at commit, say).
    assert.throws(() =>
      alice.store.transaction(() => {
        alice.log.receive(e.bytes)
        throw new Error('the step is undone')
      }),
    )
    assert.equal(alice.log.has(e.hash), false)
    assert.deepEqual(alice.log.heads().map(toHex), heads)
    assert.equal(alice.log.receive(e.bytes).status, 'accepted')
    alice.log.post(utf8('on top of it'), T0 + 3)
    assert.equal(reopen(alice).entries().length, alice.log.entries().length)
  })

  it('puts back what the undone entry released from the held entries, to be released again', () => {
    const { alice, bob } = aliceAndBob('member')
    sync(alice.log, bob.log)
    const first = bob.log.post(utf8('first'), T0 + 2)
    const second = bob.log.post(utf8('second'), T0 + 3)
    assert.equal(alice.log.receive(second.bytes).status, 'pending')
    assert.throws(() =>
      alice.store.transaction(() => {
        const r = alice.log.receive(first.bytes)
        assert.equal(r.status === 'accepted' && r.released.length, 1)
        throw new Error('the step is undone')
      }),
    )
    assert.deepEqual(alice.log.size, { entries: alice.log.entries().length, pending: 1 })
    const again = alice.log.receive(first.bytes)
    assert.equal(again.status === 'accepted' && again.released.length, 1)
    assert.ok(alice.log.has(second.hash))
  })

  it('a held entry that does not fit on the disk fails the step rather than being dropped', () => {
    const { alice, bob } = aliceAndBob('member')
    sync(alice.log, bob.log)
    const first = bob.log.post(utf8('first'), T0 + 2)
    const second = bob.log.post(utf8('second'), T0 + 3)
    // Alice's disk fills up just as the held entry is written.
    const disk = { full: '' }
    const store = new Proxy(alice.store, {
      get(target, prop) {
        const value = Reflect.get(target, prop)
        if (typeof value !== 'function') return value
        if (prop !== 'kvSet') return value.bind(target)
        return (ns: string, key: string, bytes: Uint8Array) => {
          if (key === disk.full) throw new TalkenError('storage_full', 'the disk is full')
          return target.kvSet(ns, key, bytes)
        }
      },
    }) as Store
    const log = openRoomLog({ store, identity: alice.identity, sealer: alice.sealer }, alice.log.roomId)
    assert.equal(log.receive(second.bytes).status, 'pending')
    disk.full = toHex(second.hash)
    throwsCode(() => store.transaction(() => log.receive(first.bytes)), 'storage_full')
    assert.deepEqual(log.size, { entries: log.entries().length, pending: 1 })
    disk.full = ''
    const again = log.receive(first.bytes)
    assert.equal(again.status === 'accepted' && again.released.length, 1)
    assert.ok(log.has(second.hash))
  })
})

describe('room log: a removal wins over what its subject writes concurrently', () => {
  it("a removed admin's add with parents from before the removal counts for nothing, and the next key is not theirs to hand out", () => {
    const { alice, bob } = aliceAndBob('admin')
    const addBob = alice.log.heads()[0]!
    sync(alice.log, bob.log)
    alice.log.post(utf8('before'), T0 + 2)
    alice.log.removeMember(bob.identity.account.publicKey, T0 + 3)
    sync(alice.log, bob.log) // Bob has seen his removal
    // Bob adds an accomplice as an admin, on a parent from before his removal.
    const mallory = joiner('mallory', alice.log.roomId)
    const genesis = bob.log.entry(alice.log.roomId)!
    const keyId = decodeGenesisBody(genesis.body).keyId
    const key = bob.store.kvGet(`groups/keys/${toHex(alice.log.roomId)}`, toHex(keyId))!
    const parent = bob.log.entry(addBob)!
    const backdated = writtenOn(
      bob,
      parent,
      'add',
      encodeAddBody({
        member: mallory.identity.account.publicKey,
        sealingKey: mallory.sealer.sealingKey,
        role: 'admin',
        keyId,
        sealedKey: bob.sealer.seal(
          { account: mallory.identity.account.publicKey, sealingKey: mallory.sealer.sealingKey },
          keyId,
          key,
        ),
      }),
      T0 + 100,
    )
    // Valid in the past it names, so it is kept (every replica must hold the same entries)…
    assert.equal(alice.log.receive(backdated.bytes).status, 'accepted')
    // …but it changes nothing: Mallory is no member, and what Alice writes next she cannot read.
    const members = alice.log.members().map((m) => toHex(m.account))
    assert.deepEqual(members, [toHex(alice.identity.account.publicKey)])
    alice.log.post(utf8('after removing bob'), T0 + 200)
    sync(alice.log, mallory.log)
    assert.ok(!reads(mallory.log, 'after removing bob'))
    // The same verdict after a restart, and on Bob's replica.
    assert.deepEqual(
      reopen(alice)
        .members()
        .map((m) => toHex(m.account)),
      members,
    )
    sync(alice.log, bob.log)
    assert.deepEqual(
      bob.log.members().map((m) => toHex(m.account)),
      members,
    )
  })

  it('an add announcing a sealing key nothing can be sealed to is refused: it would jam every later rotation', () => {
    const { alice, bob } = aliceAndBob('admin')
    sync(alice.log, bob.log)
    const mallory = joiner('mallory', alice.log.roomId)
    const genesis = alice.log.entry(alice.log.roomId)!
    const keyId = decodeGenesisBody(genesis.body).keyId
    const head = alice.log.entry(alice.log.heads()[0]!)!
    for (const sealingKey of [
      new Uint8Array(32),
      new Uint8Array(32).fill(0xff),
      Uint8Array.of(1, ...new Uint8Array(31)),
    ]) {
      const add = writtenOn(
        alice,
        head,
        'add',
        encodeAddBody({
          member: mallory.identity.account.publicKey,
          sealingKey,
          role: 'member',
          keyId,
          sealedKey: new Uint8Array(80),
        }),
        T0 + 10,
      )
      assert.equal(
        throwsCode(() => bob.log.receive(add.bytes), 'malformed').details?.reason,
        'bad_sealing_key',
      )
    }
    const bad = { account: mallory.identity.account.publicKey, sealingKey: new Uint8Array(32) }
    throwsCode(() => alice.log.addMember(bad, T0 + 11), 'malformed')
    // Nothing stuck: a removal still rotates the key to everyone who stays.
    alice.log.removeMember(bob.identity.account.publicKey, T0 + 12)
    alice.log.post(utf8('still works'), T0 + 13)
    assert.equal(alice.log.members().length, 1)
  })

  it('a removed member who makes more heads than an entry links cannot keep the key: writers link the removal', () => {
    const [alice, bob, carol] = roomOfThree() as [TestMember, TestMember, TestMember]
    const before = alice.log.entry(alice.log.heads()[0]!)!
    alice.log.removeMember(bob.identity.account.publicKey, T0 + 5)
    sync(alice.log, carol.log)
    // Bob writes on a head from before his removal: a chain deeper than the removal, then
    // MAX_PARENTS siblings on it. Valid in the past they name, so every replica keeps them.
    let tip = before
    for (let i = 0; i < 5; i++) {
      tip = writtenOn(bob, tip, 'post', junk(), T0 + 10 + i)
      assert.equal(carol.log.receive(tip.bytes).status, 'accepted')
    }
    for (let i = 0; i < MAX_PARENTS; i++) {
      const sibling = writtenOn(bob, tip, 'post', junk(), T0 + 100 + i)
      assert.equal(carol.log.receive(sibling.bytes).status, 'accepted')
    }
    assert.equal(carol.log.heads().length, MAX_PARENTS + 1)
    // Carol's post links the removal, so it goes under a key Bob was never given.
    const post = carol.log.post(utf8('after bob left'), T0 + 1000)
    assert.ok(
      post.parents.some((p) => hex(p) === hex(alice.log.heads()[0]!)),
      'the removal is a parent',
    )
    sync(carol.log, bob.log)
    sync(carol.log, alice.log)
    assert.ok(!reads(bob.log, 'after bob left'))
    assert.ok(reads(alice.log, 'after bob left'))
  })

  it("a removed admin's backdated add, under more heads than an entry links, gives the accomplice no key", () => {
    const alice = founder('alice')
    const bob = joiner('bob', alice.log.roomId)
    const carol = joiner('carol', alice.log.roomId)
    add(alice, bob, 'admin')
    add(alice, carol)
    sync(alice.log, bob.log)
    sync(alice.log, carol.log)
    const before = bob.log.entry(bob.log.heads()[0]!)!
    alice.log.removeMember(bob.identity.account.publicKey, T0 + 5)
    sync(alice.log, carol.log)
    // Bob adds Mallory on a head from before his removal, then writes many heads on that.
    const mallory = joiner('mallory', alice.log.roomId)
    const keyId = decodeGenesisBody(bob.log.entry(alice.log.roomId)!.body).keyId
    const key = bob.store.kvGet(`groups/keys/${toHex(alice.log.roomId)}`, toHex(keyId))!
    const target = { account: mallory.identity.account.publicKey, sealingKey: mallory.sealer.sealingKey }
    let tip = writtenOn(
      bob,
      before,
      'add',
      encodeAddBody({
        ...target,
        member: target.account,
        role: 'admin',
        keyId: keyId,
        sealedKey: bob.sealer.seal(target, keyId, key),
      }),
      T0 + 10,
    )
    assert.equal(carol.log.receive(tip.bytes).status, 'accepted')
    for (let i = 0; i < 3; i++) {
      tip = writtenOn(bob, tip, 'post', junk(), T0 + 20 + i)
      assert.equal(carol.log.receive(tip.bytes).status, 'accepted')
    }
    for (let i = 0; i < MAX_PARENTS; i++) {
      assert.equal(
        carol.log.receive(writtenOn(bob, tip, 'post', junk(), T0 + 100 + i).bytes).status,
        'accepted',
      )
    }
    carol.log.post(utf8('after the removal'), T0 + 1000)
    sync(carol.log, mallory.log)
    sync(carol.log, bob.log)
    assert.ok(!reads(mallory.log, 'after the removal'))
    assert.ok(!reads(bob.log, 'after the removal'))
  })

  it('two admins who remove each other at once: every replica reaches the same single verdict', () => {
    const { alice, bob } = aliceAndBob('admin')
    sync(alice.log, bob.log)
    alice.log.removeMember(bob.identity.account.publicKey, T0 + 2)
    bob.log.removeMember(alice.identity.account.publicKey, T0 + 2)
    sync(alice.log, bob.log)
    const a = alice.log.members().map((m) => toHex(m.account))
    const b = bob.log.members().map((m) => toHex(m.account))
    assert.deepEqual(a, b)
    assert.deepEqual(a, [toHex(alice.identity.account.publicKey)], 'the senior admin (the founder) stays')
  })

  it("a removed admin's removal of the admin who removed them, backdated to before, changes nothing", () => {
    const alice = founder('alice')
    const bob = joiner('bob', alice.log.roomId)
    const carol = joiner('carol', alice.log.roomId)
    add(alice, bob, 'admin')
    add(alice, carol)
    const addCarol = alice.log.entry(alice.log.heads()[0]!)!
    for (let i = 0; i < 3; i++) alice.log.post(utf8(`post ${i}`), T0 + 10 + i)
    alice.log.removeMember(bob.identity.account.publicKey, T0 + 20)
    sync(alice.log, bob.log)
    sync(alice.log, carol.log)
    // Bob writes a removal of Alice whose parent predates his own removal: a lower depth than it,
    // so first in causal order; and its key is one he chose, sealed for himself and Carol.
    const keyId = new Uint8Array(16).fill(7)
    const key = new Uint8Array(32).fill(9)
    const backdated = writtenOn(
      bob,
      addCarol,
      'remove',
      encodeRemoveBody({
        member: alice.identity.account.publicKey,
        keyId,
        sealed: sealedForAll(bob, [bob, carol], keyId, key),
      }),
      T0 + 30,
    )
    assert.equal(alice.log.receive(backdated.bytes).status, 'accepted')
    sync(alice.log, carol.log)
    const expected = [alice, carol].map((m) => toHex(m.identity.account.publicKey)).sort()
    for (const log of [alice.log, carol.log, reopen(carol)]) {
      assert.deepEqual(
        log
          .members()
          .map((m) => toHex(m.account))
          .sort(),
        expected,
      )
    }
    const aliceHex = toHex(alice.identity.account.publicKey)
    assert.equal(alice.log.members().find((m) => toHex(m.account) === aliceHex)?.role, 'admin')
    // What Carol writes next is not under Bob's key: he cannot read it.
    postReadOnlyBy(carol, 'carol: after bob', T0 + 40, { cannot: [bob], can: [alice] })
  })

  it("a removed member's rotate that copies the removal's key ID cannot make anyone post under a key of theirs", () => {
    const [alice, bob, carol] = roomOfThree() as [TestMember, TestMember, TestMember]
    const before = carol.log.entry(carol.log.heads()[0]!)!
    // Alice removes Bob; Bob sees the removal before Carol does.
    const removal = alice.log.removeMember(bob.identity.account.publicKey, T0 + 2)
    const keyId = decodeRemoveBody(removal.body).keyId
    // Bob's rotate, on a parent from before, names the removal's key ID with a key he chose.
    const bobsKey = new Uint8Array(32).fill(5)
    const rotate = writtenOn(
      bob,
      before,
      'rotate',
      encodeRotateBody({
        keyId,
        sealed: sealedForAll(bob, [alice, bob, carol], keyId, bobsKey),
      }),
      T0 + 3,
    )
    assert.equal(carol.log.receive(rotate.bytes).status, 'accepted')
    assert.equal(carol.log.receive(removal.bytes).status, 'accepted')
    const post = carol.log.post(utf8('carol: after bob'), T0 + 4)
    assert.equal(
      openPostEntry(post, () => bobsKey),
      undefined,
      "not under Bob's key",
    )
    sync(carol.log, alice.log)
    assert.ok(reads(alice.log, 'carol: after bob'), 'Alice reads it')
  })
  it('re-admitting an admin moves no seniority: a removal decided before stays decided after any merge', () => {
    const founderF = founder('F')
    const [a, b, c] = ['A', 'B', 'C'].map((n) => joiner(n, founderF.log.roomId)) as [
      TestMember,
      TestMember,
      TestMember,
    ]
    add(founderF, a, 'admin')
    add(founderF, b, 'admin')
    add(founderF, c)
    for (const m of [a, b, c]) sync(founderF.log, m.log)
    // A (senior) and B remove each other at once: A wins.
    a.log.removeMember(b.identity.account.publicKey, T0 + 1)
    b.log.removeMember(a.identity.account.publicKey, T0 + 1)
    for (const m of [a, b, c]) sync(m.log, founderF.log)
    const bHex = toHex(b.identity.account.publicKey)
    assert.ok(!founderF.log.members().some((m) => toHex(m.account) === bHex))
    // A leaves and is asked back, while C rotates concurrently; then everything merges.
    a.log.leave(T0 + 2)
    sync(a.log, founderF.log)
    sync(c.log, founderF.log)
    c.log.rotateKey(T0 + 3)
    add(founderF, a, 'admin', T0 + 3)
    sync(c.log, founderF.log)
    assert.ok(!founderF.log.members().some((m) => toHex(m.account) === bHex), 'B stays out')
    founderF.log.post(utf8('after B was removed'), T0 + 4)
    sync(founderF.log, b.log)
    assert.ok(!reads(b.log, 'after B was removed'))
  })
})
