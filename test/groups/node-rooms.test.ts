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
import { roomTransportKey, sealRoomMessage } from '../../src/groups/room-transport.ts'
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
  readonly #queue: Array<[string, Uint8Array]> = []

  add(name: string): { identity: Identity; rooms: NodeRooms; store: Store } {
    const identity = createIdentity({ now: Date.now(), deviceName: name })
    const store = createMemoryStore()
    const card = encodeContactCard(makeContactCard(identity, { name, now: Date.now() }))
    const rooms = new NodeRooms({
      store,
      identity,
      log: (_level, message) => this.logged.push(`${name}: ${message}`),
      send: (account, frame) => this.#queue.push([toHex(account), frame]),
      distance: (account) => (this.nodes.has(toHex(account)) ? 1 : undefined),
      step: (fn) => store.transaction(fn),
      act: (fn) => store.transaction(fn),
      card: () => card,
      entry: () => {},
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
  assert.ok(net.logged.includes('alice: refused a join request from a member removed after that invitation'))
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

  it('a join the room cannot take (it is full) is refused on its own and undoes nothing else', () => {
    const net = new Rooms()
    const alice = net.add('alice')
    const room = alice.rooms.create('club')
    const invite = parseRoomLink(alice.rooms.invite(room.id).link)
    const channel = { id: invite.roomId, key: roomTransportKey(invite.roomId) }
    const join = (): Uint8Array => {
      const j = createIdentity({ now: Date.now(), deviceName: 'j' })
      return sealRoomMessage(
        channel,
        {
          kind: 'join',
          sender: j.account.publicKey,
          token: invite.token,
          sealingKey: generateDhKey().publicKey,
        },
        (b) => j.account.sign(b),
      )
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
