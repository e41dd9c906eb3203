/**
 * `talken:room/` invite links: what a new member needs to join a room.
 *
 * ```
 * talken:room/<payload>
 *   payload = base64url, no padding, of ( CBOR([1, roomId: bytes(32), name: text(≤64 B),
 *             token: bytes(16), inviter: bytes (the inviter's signed contact card)]) ‖ check )
 *   check   = first 4 bytes of SHA-256("talken/room-link/v1" 0x00 ‖ CBOR bytes)
 * ```
 * The room ID is the room's shared secret: whoever holds the link can read the room's membership
 * entries and ask the inviter to join. The token names this invitation, so the inviter can tell
 * its invitations apart, let them expire, and refuse the rest. The inviter's card lets the joiner
 * reach the inviter (its addresses) and verify who invited it.
 */
import { createHash } from 'node:crypto'
import { base64urlnopad } from '@scure/base'
import { TalkenError } from '../errors.ts'
import { type ContactCard, decodeContactCard, encodeContactCard } from '../identity/contact-card.ts'
import { bytesEqual, decodeCbor, encodeCbor, FieldReader } from '../wire/cbor.ts'
import { MAX_CARD_BYTES } from '../wire/limits.ts'
import { HASH_LENGTH, MAX_ROOM_NAME_BYTES } from './limits.ts'
import { JOIN_TOKEN_LENGTH } from './room-transport.ts'

/** The prefix of room links. */
export const ROOM_LINK_PREFIX = 'talken:room/'
const CHECK_LENGTH = 4
const CHECK_DOMAIN = Buffer.from('talken/room-link/v1\u0000', 'utf8')
const MAX_PAYLOAD = 1 + 34 + 2 + MAX_ROOM_NAME_BYTES + 17 + 3 + MAX_CARD_BYTES + 8
/** Longest room link accepted. */
export const MAX_ROOM_LINK_LENGTH =
  ROOM_LINK_PREFIX.length + Math.ceil(((MAX_PAYLOAD + CHECK_LENGTH) * 4) / 3)

/** What a room link carries. */
export interface RoomInvite {
  readonly roomId: Uint8Array
  readonly name: string
  readonly token: Uint8Array
  readonly inviter: ContactCard
}

function check(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(CHECK_DOMAIN).update(bytes).digest().subarray(0, CHECK_LENGTH)
}

/** Formats an invitation as a `talken:room/` link. */
export function toRoomLink(invite: RoomInvite): string {
  const bytes = encodeCbor([1, invite.roomId, invite.name, invite.token, encodeContactCard(invite.inviter)])
  const payload = new Uint8Array(bytes.length + CHECK_LENGTH)
  payload.set(bytes, 0)
  payload.set(check(bytes), bytes.length)
  return `${ROOM_LINK_PREFIX}${base64urlnopad.encode(payload)}`
}

/** Whether `text` is meant as a room link (it may still be broken). */
export function isRoomLink(text: string): boolean {
  return text.trim().toLowerCase().startsWith(ROOM_LINK_PREFIX)
}

/**
 * Parses and verifies a room link. Throws `malformed` (not a room link, cut short, garbage),
 * `too_large`, `bad_checksum` (a changed character) or `bad_signature` (the inviter's card was
 * altered), and nothing else.
 */
export function parseRoomLink(text: string): RoomInvite {
  if (typeof text !== 'string') throw new TalkenError('malformed', 'expected a room link')
  const link = text.replace(/\s+/g, '')
  if (link.length > MAX_ROOM_LINK_LENGTH)
    throw new TalkenError('too_large', 'this link is longer than any room link')
  if (link.slice(0, ROOM_LINK_PREFIX.length).toLowerCase() !== ROOM_LINK_PREFIX) {
    throw new TalkenError('malformed', 'a room link starts with talken:room/')
  }
  const rest = link.slice(ROOM_LINK_PREFIX.length)
  let payload: Uint8Array
  try {
    payload = base64urlnopad.decode(rest)
  } catch (cause) {
    throw new TalkenError('malformed', 'not a complete room link: the payload is not base64url', { cause })
  }
  if (payload.length <= CHECK_LENGTH)
    throw new TalkenError('malformed', 'not a complete room link: too short')
  const bytes = payload.subarray(0, payload.length - CHECK_LENGTH)
  if (!bytesEqual(check(bytes), payload.subarray(payload.length - CHECK_LENGTH))) {
    throw new TalkenError('bad_checksum', 'this room link has a typo or was cut short')
  }
  const r = new FieldReader(decodeCbor(bytes, MAX_PAYLOAD, 'room link'), 'room link', 5)
  const version = r.uint('version')
  if (version !== 1) throw new TalkenError('unsupported_version', 'a room link from a newer Talken')
  const roomId = r.bytes('roomId', HASH_LENGTH)
  const name = r.text('name', MAX_ROOM_NAME_BYTES)
  const token = r.bytes('token', JOIN_TOKEN_LENGTH)
  const inviter = decodeContactCard(r.bytes('inviter', 1, MAX_CARD_BYTES))
  return { roomId, name, token, inviter }
}
