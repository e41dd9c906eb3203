/**
 * Room frames (src/groups/room-transport.ts): sealed per room, signed by the sending account and
 * bound to the room, so that whoever holds a room ID can neither speak in a member's name nor
 * move a frame into another room.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import {
  openRoomMessage,
  type RoomChannel,
  roomTransportKey,
  sealRoomMessage,
} from '../../src/groups/room-transport.ts'
import { createIdentity } from '../../src/identity/identity.ts'
import { throwsCode } from '../helpers/errors.ts'

const T0 = 1_750_000_000_000

function channel(): RoomChannel {
  const id = new Uint8Array(randomBytes(32))
  return { id, key: roomTransportKey(id) }
}

describe('room frames', () => {
  const ada = createIdentity({ now: T0 })
  const eve = createIdentity({ now: T0 })
  const signAda = (b: Uint8Array) => ada.account.sign(b)
  const signEve = (b: Uint8Array) => eve.account.sign(b)
  const me = ada.account.publicKey

  it('open in the room they were sealed for, with the sender checked', () => {
    const [one, two] = [channel(), channel()]
    const frame = new Uint8Array([1, 2, 3])
    const sealed = sealRoomMessage(two, { kind: 'gossip', sender: me, frame }, signAda)
    const opened = openRoomMessage([one, two], sealed)
    assert.equal(opened.index, 1)
    assert.deepEqual(opened.message, { kind: 'gossip', sender: me, frame })
    const join = {
      kind: 'join' as const,
      sender: me,
      token: new Uint8Array(16).fill(7),
      sealingKey: new Uint8Array(32).fill(9),
    }
    assert.deepEqual(openRoomMessage([one], sealRoomMessage(one, join, signAda)).message, join)
  })

  it("a join request in someone else's name is refused", () => {
    // Eve holds the invitation (token and room ID) and asks to add Ada's account with Eve's
    // sealing key, so that room keys would be sealed to Eve under Ada's name.
    const room = channel()
    const forged = sealRoomMessage(
      room,
      { kind: 'join', sender: me, token: new Uint8Array(16), sealingKey: new Uint8Array(32).fill(1) },
      signEve,
    )
    throwsCode(() => openRoomMessage([room], forged), 'bad_signature')
  })

  it("gossip in a member's name is refused, so it cannot get that member ignored", () => {
    const room = channel()
    const forged = sealRoomMessage(
      room,
      { kind: 'gossip', sender: me, frame: new Uint8Array([0xff]) },
      signEve,
    )
    throwsCode(() => openRoomMessage([room], forged), 'bad_signature')
  })

  it('a frame moved into another room does not verify there', () => {
    // Someone holding both room IDs opens a frame of one and seals its contents for the other.
    const [one, two] = [channel(), channel()]
    const signature: { value: Uint8Array } = { value: new Uint8Array(0) }
    sealRoomMessage(one, { kind: 'gossip', sender: me, frame: new Uint8Array([5]) }, (b) => {
      signature.value = ada.account.sign(b)
      return signature.value
    })
    const moved = sealRoomMessage(
      two,
      { kind: 'gossip', sender: me, frame: new Uint8Array([5]) },
      () => signature.value,
    )
    throwsCode(() => openRoomMessage([two], moved), 'bad_signature')
  })

  it('a frame of a room not held here, or altered, is a typed error', () => {
    const [one, two] = [channel(), channel()]
    const sealed = sealRoomMessage(one, { kind: 'gossip', sender: me, frame: new Uint8Array([1]) }, signAda)
    throwsCode(() => openRoomMessage([two], sealed), 'decrypt_failed')
    const altered = new Uint8Array(sealed)
    altered[40]! ^= 1
    throwsCode(() => openRoomMessage([one], altered), 'decrypt_failed')
    throwsCode(() => openRoomMessage([one], sealed.subarray(1)), 'malformed')
  })
})
