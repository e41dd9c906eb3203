/**
 * Rooms as a node runs them (src/node/rooms.ts), several in one process over memory stores, their
 * frames handed over directly: who may join by invitation, and what a join the room cannot take
 * does to the rest of the node's step.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateDhKey } from '../../src/e2e/primitives.ts'
import { toHex } from '../../src/groups/entry.ts'
import { MAX_ROOM_MEMBERS } from '../../src/groups/limits.ts'
import { parseRoomLink } from '../../src/groups/room-link.ts'
import {
  joinProof,
  openRoomMessage,
  roomTransportKey,
  sealRoomMessage,
} from '../../src/groups/room-transport.ts'
import { encodeContactCard } from '../../src/identity/contact-card.ts'
import { createIdentity, type Identity, makeContactCard } from '../../src/identity/identity.ts'
import { toTextId } from '../../src/identity/text-id.ts'
import { NodeRooms } from '../../src/node/rooms.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'
import type { Store } from '../../src/store/store.ts'

/** Nodes' rooms wired to each other: frames queue up and `pump` hands them over. */
class Rooms {
  readonly nodes = new Map<string, NodeRooms>()
  /** What each node logged: `name: message`. */
  readonly logged: string[] = []
  /** Every frame sent, in order: who sent it, to whom (account, hex). */
  readonly sent: Array<{ from: string; to: string; frame: Uint8Array }> = []
  /** Every entry each node announced: `name: kind`. */
  readonly announced: string[] = []
  readonly #queue: Array<[string, Uint8Array]> = []

  add(name: string): { identity: Identity; rooms: NodeRooms; store: Store } {
    const identity = createIdentity({ now: Date.now(), deviceName: name })
    return this.open(name, identity, createMemoryStore())
  }

  /** `node`'s rooms opened again on its store, as after a restart (nothing kept in memory). */
  restart(
    node: { identity: Identity; store: Store },
    name: string,
  ): { identity: Identity; rooms: NodeRooms; store: Store } {
    return this.open(name, node.identity, node.store)
  }

  open(
    name: string,
    identity: Identity,
    store: Store,
  ): { identity: Identity; rooms: NodeRooms; store: Store } {
    const card = encodeContactCard(makeContactCard(identity, { name, now: Date.now() }))
    const rooms = new NodeRooms({
      store,
      identity,
      log: (_level, message) => this.logged.push(`${name}: ${message}`),
      send: (account, frame) => {
        this.#queue.push([toHex(account), frame])
        this.sent.push({ from: name, to: toHex(account), frame })
      },
      distance: (account) => (this.nodes.has(toHex(account)) ? 1 : undefined),
      step: (fn) => store.transaction(fn),
      act: (fn) => store.transaction(fn),
      card: () => card,
      entry: (e) => this.announced.push(`${name}: ${e.item.kind}`),
    })
    this.nodes.set(toHex(identity.account.publicKey), rooms)
    return { identity, rooms, store }
  }

  pump(): void {
    for (let i = 0; i < 1_000 && this.#queue.length > 0; i++) {
      const [to, frame] = this.#queue.shift()!
      const node = this.nodes.get(to)
      if (node === undefined) continue
      node.receive(frame)
      node.drain()
    }
  }
}

/** Alice's room "club", which Bob joined with the link she made. */
function bobJoinsByLink() {
  const net = new Rooms()
  const alice = net.add('alice')
  const bob = net.add('bob')
  const room = alice.rooms.create('club')
  const { link } = alice.rooms.invite(room.id)
  bob.rooms.join(link)
  net.pump()
  assert.equal(alice.rooms.members(room.id).length, 2)
  return { net, alice, bob, room, link }
}

/** Bob syncs, and so learns that he is no longer a member. */
function learnsRemoval(net: Rooms, bob: ReturnType<Rooms['add']>, room: string): void {
  bob.rooms.sync(room)
  net.pump()
  assert.equal(bob.rooms.list()[0]?.member, false)
}

/** Bob runs `talken rooms join LINK` again with the old link: Alice refuses him. */
function joinsAgainRefused(
  net: Rooms,
  alice: ReturnType<Rooms['add']>,
  bob: ReturnType<Rooms['add']>,
  room: string,
  link: string,
): void {
  bob.rooms.join(link)
  net.pump()
  assert.ok(
    net.logged.includes(
      'alice: refused a join request from a member removed (or gone) after that invitation',
    ),
  )
  assert.equal(alice.rooms.members(room).length, 1)
}

describe('rooms on a node: joining by invitation', () => {
  it('a member removed after an invitation was made cannot use it to come back; a new invitation lets them', () => {
    const { net, alice, bob, room, link } = bobJoinsByLink()
    alice.rooms.remove(room.id, toTextId(bob.identity.account.publicKey))
    net.pump()
    assert.equal(alice.rooms.members(room.id).length, 1)
    // Bob learns he was removed, and tries the old link again: refused.
    learnsRemoval(net, bob, room.id)
    joinsAgainRefused(net, alice, bob, room.id, link)
    alice.rooms.post(room.id, 'posted after removing bob')
    net.pump()
    assert.deepEqual(
      bob.rooms
        .history(room.id)
        .filter((h) => h.kind === 'post')
        .map((h) => h.text),
      [],
    )
    // Alice asks him back with a new invitation.
    const again = alice.rooms.invite(room.id)
    bob.rooms.join(again.link)
    net.pump()
    assert.equal(alice.rooms.members(room.id).length, 2)
  })

  it('a join request replayed after its sender left does not take them back in', () => {
    const { net, alice, bob, room } = bobJoinsByLink()
    const request = net.sent.find((s) => s.from === 'bob')!.frame
    bob.rooms.leave(room.id)
    net.pump()
    assert.equal(alice.rooms.members(room.id).length, 1)
    // The same frame again: taken once already.
    alice.rooms.receive(request)
    alice.rooms.drain()
    assert.equal(alice.rooms.members(room.id).length, 1)
    assert.ok(net.logged.includes('alice: dropped a room frame'))
    // Alice's node restarted meanwhile (it remembers no frames): the invitation's history refuses it.
    const restarted = net.restart(alice, 'alice')
    restarted.rooms.receive(request)
    restarted.rooms.drain()
    assert.equal(restarted.rooms.members(room.id).length, 1)
    assert.ok(
      net.logged.includes(
        'alice: refused a join request from a member removed (or gone) after that invitation',
      ),
    )
  })

  it('a member’s frame sent again (by a relay, or anyone holding the room ID) is not answered again', () => {
    const { net, alice, bob, room } = bobJoinsByLink()
    const before = net.sent.length
    bob.rooms.sync(room.id)
    const sync = net.sent.slice(before).find((s) => s.from === 'bob')!.frame
    net.pump()
    // Entries since: Bob's old sync, taken again, would have them all sent to him each time.
    for (let i = 0; i < 20; i++) alice.rooms.post(room.id, `post ${i}`)
    net.pump()
    const toBob = () =>
      net.sent.filter((s) => s.from === 'alice' && s.to === toHex(bob.identity.account.publicKey)).length
    const answered = toBob()
    for (let i = 0; i < 100; i++) alice.rooms.receive(sync)
    alice.rooms.drain()
    assert.equal(toBob(), answered, 'no answer to the copies')
    // Nor does the frame work for another member.
    const carol = net.add('carol')
    carol.rooms.receive(sync)
    carol.rooms.drain()
    assert.equal(net.sent.filter((s) => s.from === 'carol').length, 0)
  })

  it('whether a removal came after an invitation is causal: a remover whose clock is behind changes nothing', () => {
    const { net, alice, bob, room, link } = bobJoinsByLink()
    // Alice's clock steps back two minutes before she removes Bob: the removal's time is before
    // the invitation's.
    const now = Date.now
    Date.now = () => now() - 120_000
    try {
      alice.rooms.remove(room.id, toTextId(bob.identity.account.publicKey))
    } finally {
      Date.now = now
    }
    net.pump()
    learnsRemoval(net, bob, room.id)
    joinsAgainRefused(net, alice, bob, room.id, link)
  })

  it('join requests that arrive together (they waited in the mesh) get the history once', () => {
    const net = new Rooms()
    const alice = net.add('alice')
    const bob = net.add('bob')
    const room = alice.rooms.create('club')
    for (let i = 0; i < 5; i++) alice.rooms.post(room.id, `post ${i}`)
    bob.rooms.join(alice.rooms.invite(room.id).link)
    const request = net.sent.find((s) => s.from === 'bob')!.frame
    const toBob = () => net.sent.filter((s) => s.to === toHex(bob.identity.account.publicKey)).length
    alice.rooms.receive(request)
    alice.rooms.drain()
    const once = toBob()
    assert.ok(once > 0, 'the history went to Bob')
    for (let i = 0; i < 20; i++) alice.rooms.receive(request)
    alice.rooms.drain()
    assert.equal(toBob(), once)
    assert.equal(alice.rooms.members(room.id).length, 2)
  })

  it('joining, undone with its step, is still joining: the next history that lets us in finishes it', () => {
    const net = new Rooms()
    const alice = net.add('alice')
    const bob = net.add('bob')
    const room = alice.rooms.create('club')
    bob.rooms.join(alice.rooms.invite(room.id).link)
    // Alice takes Bob in; what she sends him waits.
    const bobKey = toHex(bob.identity.account.publicKey)
    net.nodes.delete(bobKey)
    net.pump()
    net.nodes.set(bobKey, bob.rooms)
    const toBob = net.sent.filter((s) => s.to === bobKey).map((s) => s.frame)
    const receiveAll = () => {
      for (const frame of toBob) bob.rooms.receive(frame)
      bob.rooms.drain()
    }
    assert.throws(
      () =>
        bob.store.transaction(() => {
          receiveAll()
          throw new Error('the commit failed')
        }),
      /the commit failed/,
    )
    assert.ok(bob.store.kvGet('rooms/joining', room.id), 'still joining, as stored')
    receiveAll()
    assert.equal(bob.rooms.list()[0]?.member, true)
    assert.equal(bob.store.kvGet('rooms/joining', room.id), undefined)
  })

  it('a key rotation an add needs (someone left since the last) is announced with it, and the joiner reads on', () => {
    const { net, alice, bob, room } = bobJoinsByLink()
    bob.rooms.leave(room.id)
    net.pump()
    net.announced.length = 0
    const carol = net.add('carol')
    carol.rooms.join(alice.rooms.invite(room.id).link)
    net.pump()
    assert.deepEqual(
      net.announced.filter((a) => a.startsWith('alice:')),
      ['alice: rotate', 'alice: add'],
    )
    alice.rooms.post(room.id, 'welcome')
    net.pump()
    assert.equal(carol.rooms.history(room.id).at(-1)?.text, 'welcome')
  })

  it('a key rotation a post needs is announced and pushed with it', () => {
    const { net, alice, bob, room } = bobJoinsByLink()
    bob.rooms.leave(room.id)
    net.pump()
    net.announced.length = 0
    net.sent.length = 0
    alice.rooms.post(room.id, 'after bob left')
    assert.deepEqual(net.announced, ['alice: rotate', 'alice: post'])
  })

  it('a join never answered is asked again less and less often, and given up once no invitation can last', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_750_000_000_000 })
    const net = new Rooms()
    const alice = net.add('alice')
    const bob = net.add('bob')
    const room = alice.rooms.create('club')
    // Alice never answers: her node is gone (nothing is pumped).
    bob.rooms.join(alice.rooms.invite(room.id).link)
    const asked = () => net.sent.filter((s) => s.from === 'bob').length
    const minute = 60_000
    // In steps shorter than the waits, so that each wake-up reschedules before the next is due.
    const advance = (ms: number, step = minute) => {
      for (let left = ms; left > 0; left -= step) t.mock.timers.tick(Math.min(step, left))
    }
    advance(100_000, 1_000)
    assert.equal(asked(), 11, 'every 10 s at first (the first at once)')
    // Then a tenth of the time since the join: about 19 more by 10 minutes, 24 more by 100, then
    // every 10 minutes (about 134 more in the rest of the day).
    advance(24 * 60 * minute - 100_000, 1_000)
    const firstDay = asked()
    assert.ok(firstDay > 160 && firstDay < 210, `less often after: ${firstDay} in the first day`)
    advance(6 * 24 * 60 * minute + 11 * minute)
    assert.equal(
      bob.rooms.list().find((r) => r.id === room.id),
      undefined,
      'given up (and unlisted: it holds nothing)',
    )
    const total = asked()
    advance(24 * 60 * minute)
    assert.equal(asked(), total, 'no more requests')
    assert.ok(total < 1_200, `${total} requests in a week (every 10 s would be 60,480)`)
    assert.ok(net.logged.includes('bob: gave up joining a room: the invitation was never answered'))
  })

  it('a join the room cannot take (it is full) is refused on its own and undoes nothing else', () => {
    const net = new Rooms()
    const alice = net.add('alice')
    const room = alice.rooms.create('club')
    const invite = parseRoomLink(alice.rooms.invite(room.id).link)
    const channel = { id: invite.roomId, key: roomTransportKey(invite.roomId) }
    const join = (): Uint8Array => {
      const j = createIdentity({ now: Date.now(), deviceName: 'j' })
      const request = {
        sender: j.account.publicKey,
        recipient: invite.inviter.accountKey,
        sentAt: Date.now(),
        sealingKey: generateDhKey().publicKey,
      }
      const proof = joinProof(invite.token, { roomId: invite.roomId, ...request })
      return sealRoomMessage(channel, { kind: 'join', ...request, proof }, (b) => j.account.sign(b))
    }
    for (let i = 1; i < MAX_ROOM_MEMBERS; i++) alice.rooms.receive(join())
    alice.rooms.drain()
    assert.equal(alice.rooms.members(room.id).length, MAX_ROOM_MEMBERS)
    // One more, in a step with other work: the step still lands.
    alice.store.transaction(() => {
      alice.store.kvSet('test', 'other work', new Uint8Array([1]))
      alice.rooms.receive(join())
      alice.rooms.drain()
    })
    assert.equal(alice.rooms.members(room.id).length, MAX_ROOM_MEMBERS)
    assert.deepEqual(alice.store.kvGet('test', 'other work'), new Uint8Array([1]))
  })
})

describe('rooms on a node: names and states', () => {
  it('a room needs a name of its own: empty, too long, control characters and names held already are refused', () => {
    const net = new Rooms()
    const alice = net.add('alice')
    alice.rooms.create('Climbing')
    for (const name of ['', '   ', 'x'.repeat(65), 'a\u0007b']) {
      assert.throws(
        () => alice.rooms.create(name),
        (e: unknown) => e instanceof Error && 'code' in e && e.code === 'invalid_argument',
        JSON.stringify(name),
      )
    }
    assert.throws(
      () => alice.rooms.create(' climbing '),
      (e: unknown) => e instanceof Error && 'code' in e && e.code === 'conflict',
    )
    assert.deepEqual(
      alice.rooms.list().map((r) => r.name),
      ['Climbing'],
    )
    assert.equal(alice.rooms.create('  Bouldering ').name, 'Bouldering')
  })

  it('says whether we are a member, joining, or left; and a join not answered yet can be given up', () => {
    const net = new Rooms()
    const alice = net.add('alice')
    const bob = net.add('bob')
    const room = alice.rooms.create('club')
    const { link } = alice.rooms.invite(room.id)
    assert.equal(alice.rooms.list()[0]?.status, 'member')
    // Alice is away: Bob's request waits.
    const aliceKey = toHex(alice.identity.account.publicKey)
    net.nodes.delete(aliceKey)
    bob.rooms.join(link)
    net.pump()
    assert.equal(bob.rooms.list()[0]?.status, 'joining')
    assert.equal(bob.rooms.leave(room.id).status, 'left')
    assert.deepEqual(bob.rooms.list(), [], 'a room that held nothing yet is gone')
    assert.equal(bob.store.kvGet('rooms/joining', room.id), undefined, 'no more requests')
    // Joined, then left: the history stays, as left.
    net.nodes.set(aliceKey, alice.rooms)
    bob.rooms.join(link)
    net.pump()
    assert.equal(bob.rooms.list()[0]?.status, 'member')
    bob.rooms.leave(room.id)
    assert.equal(bob.rooms.list()[0]?.status, 'left')
  })
})

describe('rooms on a node: frames of one step', () => {
  it('beyond 1,024 are dropped, and the drop is logged', () => {
    const net = new Rooms()
    const alice = net.add('alice')
    for (let i = 0; i < 1_030; i++) alice.rooms.receive(new Uint8Array([i & 0xff]))
    alice.rooms.drain()
    assert.ok(net.logged.includes('alice: dropped room frames: more came in one step than are handled'))
  })
})

describe('rooms on a node: history', () => {
  it('names the member an add is about, as the contact list (or "you") does', () => {
    const { bob, room } = bobJoinsByLink()
    const add = bob.rooms.history(room.id).find((h) => h.kind === 'add')
    assert.equal(add?.subjectName, 'you')
  })
})

describe('rooms on a node: a join given up', () => {
  it('whose add comes after all is left at once: no member who reads nothing stays behind', () => {
    const net = new Rooms()
    const alice = net.add('alice')
    const bob = net.add('bob')
    const room = alice.rooms.create('club')
    bob.rooms.join(alice.rooms.invite(room.id).link)
    // Alice takes the request; what she sends Bob waits.
    const bobKey = toHex(bob.identity.account.publicKey)
    net.nodes.delete(bobKey)
    net.pump()
    assert.equal(alice.rooms.members(room.id).length, 2)
    const toBob = net.sent.filter((s) => s.to === bobKey).map((s) => s.frame)
    // Bob gives up meanwhile.
    assert.equal(bob.rooms.leave(room.id).status, 'left')
    assert.deepEqual(bob.rooms.list(), [])
    // Alice's answer arrives after all: Bob is let in, and leaves.
    net.nodes.set(bobKey, bob.rooms)
    for (const frame of toBob) bob.rooms.receive(frame)
    bob.rooms.drain()
    net.pump()
    assert.ok(net.logged.includes('bob: left a room whose join was given up, once its answer came'))
    assert.equal(bob.rooms.list()[0]?.status, 'left')
    bob.rooms.sync(room.id)
    net.pump()
    assert.deepEqual(
      alice.rooms.members(room.id).map((m) => m.self),
      [true],
    )
  })
})

describe('rooms: invitations against those who should not get in', () => {
  it('an invitation made before a removal lets nobody in after it, under a new account either', () => {
    const { net, alice, bob, room, link } = bobJoinsByLink()
    alice.rooms.remove(room.id, toTextId(bob.identity.account.publicKey))
    net.pump()
    // Bob comes back under an account of his own making, with the link he joined with.
    const bob2 = net.add('bob2')
    bob2.rooms.join(link)
    net.pump()
    assert.equal(alice.rooms.members(room.id).length, 1)
    assert.ok(net.logged.includes('alice: refused a join request: someone was removed after that invitation'))
    // A link made after the removal works: that is an admin asking someone in.
    const carol = net.add('carol')
    carol.rooms.join(alice.rooms.invite(room.id).link)
    net.pump()
    assert.equal(alice.rooms.members(room.id).length, 2)
  })

  it("a join request shows no token: whoever holds the room ID cannot join with another's", () => {
    const net = new Rooms()
    const alice = net.add('alice')
    const room = alice.rooms.create('club')
    const { link } = alice.rooms.invite(room.id)
    const invite = parseRoomLink(link)
    const carol = net.add('carol')
    carol.rooms.join(link)
    const request = net.sent.find((s) => s.from === 'carol')!.frame
    // Eve holds the room ID (an old link, say) and opens Carol's request on its way.
    const channel = { id: invite.roomId, key: roomTransportKey(invite.roomId) }
    const opened = openRoomMessage([channel], request).message
    assert.equal(opened.kind, 'join')
    const inner = Buffer.from(request).toString('hex')
    assert.ok(!Buffer.from(JSON.stringify(opened)).includes(Buffer.from(invite.token)))
    assert.ok(!inner.includes(Buffer.from(invite.token).toString('hex')))
    // What it carries proves the token for Carol alone: under Eve's account it proves nothing.
    const eve = createIdentity({ now: Date.now(), deviceName: 'eve' })
    const { proof } = opened as Extract<typeof opened, { kind: 'join' }>
    const forged = sealRoomMessage(
      channel,
      {
        kind: 'join',
        sender: eve.account.publicKey,
        recipient: invite.inviter.accountKey,
        sentAt: Date.now(),
        sealingKey: generateDhKey().publicKey,
        proof,
      },
      (b) => eve.account.sign(b),
    )
    alice.rooms.receive(forged)
    alice.rooms.drain()
    assert.equal(alice.rooms.members(room.id).length, 1)
    assert.ok(net.logged.includes('alice: refused a join request with an unknown or expired invitation'))
    net.pump()
    assert.equal(alice.rooms.members(room.id).length, 2, 'Carol herself gets in')
  })
})
