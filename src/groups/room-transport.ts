/**
 * How room traffic travels between devices: signed by the sending account, sealed with a key only
 * holders of the room ID can derive, padded to the sizes of end-to-end sealed bodies, inside mesh
 * datagrams (docs/groups.md §Transport).
 *
 * ```
 * transport key = HKDF-SHA-256(ikm = roomId, salt = ∅, info = "talken/room-transport/v1", 32)
 * frame         = 0x02 ‖ nonce(12) ‖ ChaCha20-Poly1305(key, nonce, padded, ad = 0x02)
 * padded        = CBOR([kind, sender: bytes(32), recipient: bytes(32), sentAt: uint, body,
 *                       signature: bytes(64)]) ‖ 0x80 ‖ 0x00…   (to a bucket)
 * kind, body    = 1, gossip frame: bytes (gossip-frames.ts) · 2, join request: [proof(32), sealingKey(32)]
 * signature     = Ed25519(sender, "talken/room-frame/v2" ‖ 0x00 ‖ CBOR([roomId, kind, recipient, sentAt, body]))
 * proof         = HMAC-SHA-256(token, "talken/room-join/v1" ‖ 0x00 ‖
 *                              CBOR([roomId, sender, recipient, sealingKey, sentAt]))
 * ```
 * A join request proves that its sender holds the invitation's token without carrying it: every
 * holder of the room ID can open room frames (a removed member, anyone who saw an old link), and a
 * token read off a joiner's request would let them join under an account of their own. The proof
 * is bound to the sender, its sealing key, the inviter and the time, so it serves nobody else.
 * A frame names no room: a receiver tries the keys of the rooms it holds (a device holds few).
 * So a relay sees a padded blob of one of the sealed-body sizes, as for a direct message, and
 * cannot tell which room, or whether two frames belong to the same one.
 *
 * The signature makes the sender's account key mean something to whoever holds the room ID (a
 * former member, anyone who saw an invitation link): a join request cannot put someone else's
 * account in the room with the requester's sealing key, and gossip cannot be sent in a member's
 * name to get that member's frames ignored. Frames are bound to their room, their recipient (an
 * account key) and the time they were sealed (Unix milliseconds), and {@link FreshFrames} takes each
 * once: anyone holding the room ID could otherwise send a member's old sync to another member again
 * and again, and have it answered each time with whatever the sync lacks, or replay a member's
 * graft or prune to steer the gossip tree.
 */
import {
  AEAD_NONCE_LENGTH,
  AEAD_TAG_LENGTH,
  aeadOpen,
  aeadSeal,
  hkdf,
  hmac,
  type RandomSource,
  secretsEqual,
  systemRandom,
} from '../e2e/primitives.ts'
import { SEALED_BUCKETS } from '../e2e/sealed.ts'
import { TalkenError } from '../errors.ts'
import { domainSeparated, SIGNATURE_LENGTH, verifySignature } from '../identity/ed25519.ts'
import { BoundedMap } from '../mesh/bounded-map.ts'
import { bytesEqual, decodeCbor, encodeCbor, FieldReader } from '../wire/cbor.ts'
import { MAX_GOSSIP_FRAME_BYTES } from './gossip-frames.ts'

/** The first byte of a room frame (a sealed direct-message body starts with its own version, 0x04). */
export const ROOM_FRAME_VERSION = 0x02
const AD = new Uint8Array([ROOM_FRAME_VERSION])
const OVERHEAD = 1 + AEAD_NONCE_LENGTH + AEAD_TAG_LENGTH
/** Length of a join token. */
export const JOIN_TOKEN_LENGTH = 16
/** Length of a join request's proof of the token (see {@link joinProof}). */
export const JOIN_PROOF_LENGTH = 32
const JOIN_PROOF_DOMAIN = 'talken/room-join/v1'
const SIGNATURE_DOMAIN = 'talken/room-frame/v2'
/** How long room frames live in the mesh. */
export const ROOM_FRAME_TTL_MS = 10 * 60_000
/** Clocks of two devices may be this far apart: a frame's time is believed within it. */
export const ROOM_FRAME_CLOCK_SKEW_MS = 15 * 60_000
/** Members' frames remembered as taken (see {@link FreshFrames}), at most. */
const REMEMBERED_FRAMES = 8192
/** Non-members' frames remembered as taken, at most: beyond, theirs are refused until some age out. */
export const REMEMBERED_OTHERS_FRAMES = 1024
/** How often those too old to be taken again are forgotten. */
const SWEEP_INTERVAL_MS = 60_000
/** …and how often at most while non-members' frames fill their memory. */
const FULL_SWEEP_INTERVAL_MS = 1_000

/** The room a frame travels in: its ID (which the signature covers) and transport key. */
export interface RoomChannel {
  readonly id: Uint8Array
  readonly key: Uint8Array
}

/** Whom a room frame is for, and when it was sealed; signed with the rest. */
export interface RoomAddressing {
  /** The account key of the member (or inviter) the frame is sent to. */
  readonly recipient: Uint8Array
  /** Unix milliseconds, by the sender's clock. */
  readonly sentAt: number
}

/** What a room frame carries. */
export type RoomMessage = RoomAddressing &
  (
    | { readonly kind: 'gossip'; readonly sender: Uint8Array; readonly frame: Uint8Array }
    | {
        readonly kind: 'join'
        readonly sender: Uint8Array
        /** {@link joinProof} of the invitation's token. */
        readonly proof: Uint8Array
        readonly sealingKey: Uint8Array
      }
  )

/**
 * What a join request carries instead of the invitation's token: an HMAC under the token of
 * whom the request is from and for, with what sealing key, and when (see the file comment).
 */
export function joinProof(
  token: Uint8Array,
  j: {
    readonly roomId: Uint8Array
    readonly sender: Uint8Array
    readonly recipient: Uint8Array
    readonly sealingKey: Uint8Array
    readonly sentAt: number
  },
): Uint8Array {
  const fields = encodeCbor([j.roomId, j.sender, j.recipient, j.sealingKey, j.sentAt])
  return hmac(token, domainSeparated(JOIN_PROOF_DOMAIN, fields))
}

/** Whether `proof` is {@link joinProof} of `token` for the join request `m` of room `roomId`. */
export function provesToken(
  token: Uint8Array,
  roomId: Uint8Array,
  m: Extract<RoomMessage, { kind: 'join' }>,
): boolean {
  return secretsEqual(joinProof(token, { roomId, ...m }), m.proof)
}

/** The key that seals a room's frames. */
export function roomTransportKey(roomId: Uint8Array): Uint8Array {
  return hkdf(roomId, new Uint8Array(0), 'talken/room-transport/v1', 32)
}

function kindAndBody(m: RoomMessage): [kind: number, body: Uint8Array | Uint8Array[]] {
  return m.kind === 'gossip' ? [1, m.frame] : [2, [m.proof, m.sealingKey]]
}

function signedPart(roomId: Uint8Array, m: RoomMessage): Uint8Array {
  const [kind, body] = kindAndBody(m)
  return domainSeparated(SIGNATURE_DOMAIN, encodeCbor([roomId, kind, m.recipient, m.sentAt, body]))
}

/**
 * Seals a room message for the mesh. `sign` signs with the account key of `m.sender` (the
 * caller's own).
 */
export function sealRoomMessage(
  room: RoomChannel,
  m: RoomMessage,
  sign: (bytes: Uint8Array) => Uint8Array,
  random: RandomSource = systemRandom,
): Uint8Array {
  if (m.recipient.length !== 32 || !Number.isSafeInteger(m.sentAt) || m.sentAt < 0) {
    throw new TalkenError('invalid_argument', 'a room frame needs a 32-byte recipient and a time')
  }
  const [kind, body] = kindAndBody(m)
  const inner = encodeCbor([kind, m.sender, m.recipient, m.sentAt, body, sign(signedPart(room.id, m))])
  const key = room.key
  const bucket = SEALED_BUCKETS.find((b) => b >= inner.length + 1 + OVERHEAD)
  if (bucket === undefined) throw new TalkenError('too_large', 'room message too large for one frame')
  const padded = new Uint8Array(bucket - OVERHEAD)
  padded.set(inner, 0)
  padded[inner.length] = 0x80
  const nonce = random(AEAD_NONCE_LENGTH)
  const sealed = aeadSeal(key, nonce, padded, AD)
  const out = new Uint8Array(bucket)
  out[0] = ROOM_FRAME_VERSION
  out.set(nonce, 1)
  out.set(sealed, 1 + AEAD_NONCE_LENGTH)
  return out
}

/** Whether `bytes` has the shape of a room frame (its first byte and a bucket length). */
export function looksLikeRoomFrame(bytes: Uint8Array): boolean {
  return bytes[0] === ROOM_FRAME_VERSION && SEALED_BUCKETS.includes(bytes.length)
}

/**
 * Opens a room frame with the first room whose key fits, and checks the sender's signature.
 * Returns the room's index in `rooms`, the message and its signature; throws `decrypt_failed` when
 * no key opens it, `malformed` for a bad inside and `bad_signature` when the sender did not sign
 * it for this room. Whom it is for and whether it is fresh are {@link FreshFrames}'s to judge.
 */
export function openRoomMessage(
  rooms: readonly RoomChannel[],
  bytes: Uint8Array,
): { index: number; message: RoomMessage; signature: Uint8Array } {
  if (!looksLikeRoomFrame(bytes)) throw new TalkenError('malformed', 'not a room frame')
  const nonce = bytes.subarray(1, 1 + AEAD_NONCE_LENGTH)
  const sealed = bytes.subarray(1 + AEAD_NONCE_LENGTH)
  for (let index = 0; index < rooms.length; index++) {
    let padded: Uint8Array
    try {
      padded = aeadOpen(rooms[index]!.key, nonce, sealed, AD)
    } catch {
      continue
    }
    const { message, signature } = decodeInner(unpad(padded))
    if (!verifySignature(message.sender, signedPart(rooms[index]!.id, message), signature)) {
      throw new TalkenError('bad_signature', 'room frame: not signed by its sender for this room')
    }
    return { index, message, signature }
  }
  throw new TalkenError('decrypt_failed', 'no room held here opens this frame')
}

function unpad(padded: Uint8Array): Uint8Array {
  let end = padded.length - 1
  while (end >= 0 && padded[end] === 0) end--
  if (end < 0 || padded[end] !== 0x80) throw new TalkenError('malformed', 'room frame: bad padding')
  return padded.subarray(0, end)
}

function decodeInner(bytes: Uint8Array): { message: RoomMessage; signature: Uint8Array } {
  const value = decodeCbor(bytes, MAX_GOSSIP_FRAME_BYTES + 160, 'room message')
  if (!Array.isArray(value)) throw new TalkenError('malformed', 'room message: expected an array')
  const r = new FieldReader(value, 'room message', 6)
  const kind = r.uint('kind', 2, 1)
  const sender = r.bytes('sender', 32)
  const recipient = r.bytes('recipient', 32)
  const sentAt = r.uint('sentAt', Number.MAX_SAFE_INTEGER)
  let message: RoomMessage
  if (kind === 1) {
    message = {
      kind: 'gossip',
      sender,
      recipient,
      sentAt,
      frame: r.bytes('frame', 1, MAX_GOSSIP_FRAME_BYTES),
    }
  } else {
    const j = new FieldReader(r.value(), 'join request', 2)
    message = {
      kind: 'join',
      sender,
      recipient,
      sentAt,
      proof: j.bytes('proof', JOIN_PROOF_LENGTH),
      sealingKey: j.bytes('sealingKey', 32),
    }
  }
  return { message, signature: r.bytes('signature', SIGNATURE_LENGTH) }
}

/**
 * Which opened frames to take: those for `me`, sealed within {@link ROOM_FRAME_TTL_MS} and the
 * clock skew before now (or the skew after), and not taken before, by signature (a frame's
 * signature is its own: Ed25519 signs deterministically, and the recipient and time are in it).
 */
export class FreshFrames {
  /** Signatures (hex) of members' frames taken, with their times; the oldest forgotten first. */
  readonly #members = new BoundedMap<string, number>(REMEMBERED_FRAMES)
  /**
   * The same for frames of accounts that are not members (joiners, and anyone holding the room
   * ID): kept apart, and full means refused, never forgotten early. Signing frames under made-up
   * accounts costs nothing: in one set, they would push members' frames out before their time,
   * and a member's old sync could then be taken again.
   */
  readonly #others = new BoundedMap<string, number>(REMEMBERED_OTHERS_FRAMES)
  /** When frames too old to be taken were last forgotten. */
  #sweptAt = Number.NEGATIVE_INFINITY

  /**
   * Why the frame is refused, or undefined to take it (it is then remembered; `onRollback` is
   * given the way to forget it again, for a step that is undone). `member`: whether its sender
   * is a member of its room, by our log.
   */
  refusal(
    m: RoomMessage,
    signature: Uint8Array,
    me: Uint8Array,
    now: number,
    onRollback?: (undo: () => void) => void,
    member = true,
  ): string | undefined {
    if (!bytesEqual(m.recipient, me)) return 'it is for someone else'
    if (m.sentAt < now - ROOM_FRAME_TTL_MS - ROOM_FRAME_CLOCK_SKEW_MS) return 'it is too old'
    if (m.sentAt > now + ROOM_FRAME_CLOCK_SKEW_MS) return 'it is from the future'
    const key = Buffer.from(signature).toString('hex')
    if (this.#members.has(key) || this.#others.has(key)) return 'it was taken before'
    // Frames too old to be taken again need no remembering: swept once a minute, not per frame
    // (the bound holds meanwhile); once a second while non-members' are full (a flood of their
    // frames must not cost a sweep each).
    const taken = member ? this.#members : this.#others
    const full = !member && taken.size >= REMEMBERED_OTHERS_FRAMES
    const every = full ? FULL_SWEEP_INTERVAL_MS : SWEEP_INTERVAL_MS
    if (now - this.#sweptAt >= every || now < this.#sweptAt) {
      this.#sweptAt = now
      const stale = (at: number) => at < now - ROOM_FRAME_TTL_MS - ROOM_FRAME_CLOCK_SKEW_MS
      this.#members.sweep(stale)
      this.#others.sweep(stale)
    }
    if (!member && this.#others.size >= REMEMBERED_OTHERS_FRAMES) {
      return 'too many frames from non-members lately'
    }
    const undo = taken.setUndoably(key, m.sentAt)
    onRollback?.(undo)
    return undefined
  }
}
