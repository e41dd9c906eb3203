/**
 * Room frames (src/groups/room-transport.ts): sealed per room, signed by the sending account and
 * bound to the room, so that whoever holds a room ID can neither speak in a member's name nor
 * move a frame into another room.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import {
  FreshFrames,
  openRoomMessage,
  REMEMBERED_OTHERS_FRAMES,
  ROOM_FRAME_CLOCK_SKEW_MS,
  ROOM_FRAME_TTL_MS,
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
  /** Whom the test frames are for, and when they were sealed. */
  const to = { recipient: eve.account.publicKey, sentAt: T0 }

  it('open in the room they were sealed for, with the sender checked', () => {
    const [one, two] = [channel(), channel()]
    const frame = new Uint8Array([1, 2, 3])
    const sealed = sealRoomMessage(two, { kind: 'gossip', sender: me, ...to, frame }, signAda)
    const opened = openRoomMessage([one, two], sealed)
    assert.equal(opened.index, 1)
    assert.deepEqual(opened.message, { kind: 'gossip', sender: me, ...to, frame })
    const join = {
      kind: 'join' as const,
      sender: me,
      ...to,
      proof: new Uint8Array(32).fill(7),
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
      { kind: 'join', sender: me, ...to, proof: new Uint8Array(32), sealingKey: new Uint8Array(32).fill(1) },
      signEve,
    )
    throwsCode(() => openRoomMessage([room], forged), 'bad_signature')
  })

  it("gossip in a member's name is refused, so it cannot get that member ignored", () => {
    const room = channel()
    const forged = sealRoomMessage(
      room,
      { kind: 'gossip', sender: me, ...to, frame: new Uint8Array([0xff]) },
      signEve,
    )
    throwsCode(() => openRoomMessage([room], forged), 'bad_signature')
  })

  it('a frame moved into another room does not verify there', () => {
    // Someone holding both room IDs opens a frame of one and seals its contents for the other.
    const [one, two] = [channel(), channel()]
    const signature: { value: Uint8Array } = { value: new Uint8Array(0) }
    sealRoomMessage(one, { kind: 'gossip', sender: me, ...to, frame: new Uint8Array([5]) }, (b) => {
      signature.value = ada.account.sign(b)
      return signature.value
    })
    const moved = sealRoomMessage(
      two,
      { kind: 'gossip', sender: me, ...to, frame: new Uint8Array([5]) },
      () => signature.value,
    )
    throwsCode(() => openRoomMessage([two], moved), 'bad_signature')
  })

  it('a frame of a room not held here, or altered, is a typed error', () => {
    const [one, two] = [channel(), channel()]
    const sealed = sealRoomMessage(
      one,
      { kind: 'gossip', sender: me, ...to, frame: new Uint8Array([1]) },
      signAda,
    )
    throwsCode(() => openRoomMessage([two], sealed), 'decrypt_failed')
    const altered = new Uint8Array(sealed)
    altered[40]! ^= 1
    throwsCode(() => openRoomMessage([one], altered), 'decrypt_failed')
    throwsCode(() => openRoomMessage([one], sealed.subarray(1)), 'malformed')
  })

  it('are taken once, by their recipient, while fresh: a replay, another reader or a stale frame is refused', () => {
    const room = channel()
    const fresh = new FreshFrames()
    const frameAt = (sentAt: number, recipient = eve.account.publicKey) =>
      openRoomMessage(
        [room],
        sealRoomMessage(
          room,
          { kind: 'gossip', sender: me, recipient, sentAt, frame: new Uint8Array([1]) },
          signAda,
        ),
      )
    const reader = eve.account.publicKey
    const take = (o: ReturnType<typeof frameAt>, now: number) =>
      fresh.refusal(o.message, o.signature, reader, now)
    const sync = frameAt(T0)
    assert.equal(take(sync, T0 + 1_000), undefined)
    assert.equal(take(sync, T0 + 2_000), 'it was taken before')
    // Sealed again (a fresh nonce, the same signature): the same frame.
    assert.equal(take(frameAt(T0), T0 + 3_000), 'it was taken before')
    assert.equal(take(frameAt(T0 + 1, me), T0), 'it is for someone else')
    const window = ROOM_FRAME_TTL_MS + ROOM_FRAME_CLOCK_SKEW_MS
    assert.equal(take(frameAt(T0 - window - 1), T0), 'it is too old')
    assert.equal(take(frameAt(T0 - window), T0), undefined)
    assert.equal(take(frameAt(T0 + ROOM_FRAME_CLOCK_SKEW_MS + 1), T0), 'it is from the future')
    // Taken in a step that is undone: it can be taken again.
    let undo: (() => void) | undefined
    const later = frameAt(T0 + 5)
    assert.equal(
      fresh.refusal(later.message, later.signature, reader, T0, (u) => (undo = u)),
      undefined,
    )
    undo!()
    assert.equal(take(later, T0), undefined)
  })

  it("cannot have members' frames forgotten early by frames under made-up accounts", () => {
    const fresh = new FreshFrames()
    const reader = eve.account.publicKey
    const message = (sentAt: number) =>
      ({ kind: 'gossip', sender: me, recipient: reader, sentAt, frame: new Uint8Array([1]) }) as const
    const signature = () => new Uint8Array(randomBytes(64))
    const sync = signature()
    assert.equal(fresh.refusal(message(T0), sync, reader, T0, undefined, true), undefined)
    // Frames that verify, each under a new account: more than both bounds together.
    let refused = 0
    for (let i = 0; i < 10_000; i++) {
      const why = fresh.refusal(message(T0 + i), signature(), reader, T0 + 1_000, undefined, false)
      if (why !== undefined) refused++
    }
    assert.equal(refused, 10_000 - REMEMBERED_OTHERS_FRAMES)
    assert.equal(fresh.refusal(message(T0), sync, reader, T0 + 2_000, undefined, true), 'it was taken before')
    // Once theirs are too old to be taken again, non-members' frames are taken again.
    const later = T0 + 10_000 + ROOM_FRAME_TTL_MS + ROOM_FRAME_CLOCK_SKEW_MS
    assert.equal(fresh.refusal(message(later), signature(), reader, later, undefined, false), undefined)
  })

  it('bind their recipient and time: changed, the signature no longer verifies', () => {
    const room = channel()
    let signature: Uint8Array = new Uint8Array(0)
    const message = { kind: 'gossip' as const, sender: me, ...to, frame: new Uint8Array([3]) }
    sealRoomMessage(room, message, (b) => {
      signature = ada.account.sign(b)
      return signature
    })
    for (const changed of [
      { ...message, recipient: me },
      { ...message, sentAt: T0 + 1 },
    ]) {
      throwsCode(
        () =>
          openRoomMessage(
            [room],
            sealRoomMessage(room, changed, () => signature),
          ),
        'bad_signature',
      )
    }
  })
})
