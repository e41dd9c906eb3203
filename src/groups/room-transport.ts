/**
 * How room traffic travels between devices: sealed with a key only holders of the room ID can
 * derive, padded to the sizes of end-to-end sealed bodies, inside mesh datagrams
 * (docs/groups.md §Transport).
 *
 * ```
 * transport key = HKDF-SHA-256(ikm = roomId, salt = ∅, info = "talken/room-transport/v1", 32)
 * frame         = 0x02 ‖ nonce(12) ‖ ChaCha20-Poly1305(key, nonce, padded, ad = 0x02)
 * padded        = CBOR([kind, sender: bytes(32), body: bytes]) ‖ 0x80 ‖ 0x00…   (to a bucket)
 * kind          = 1 gossip frame (gossip-frames.ts) · 2 join request [token(16), sealingKey(32)]
 * ```
 * A frame names no room: a receiver tries the keys of the rooms it holds (a device holds few).
 * So a relay sees a padded blob of one of the sealed-body sizes, as for a direct message, and
 * cannot tell which room, or whether two frames belong to the same one.
 */
import {
  AEAD_NONCE_LENGTH,
  AEAD_TAG_LENGTH,
  aeadOpen,
  aeadSeal,
  hkdf,
  type RandomSource,
  systemRandom,
} from '../e2e/primitives.ts'
import { SEALED_BUCKETS } from '../e2e/sealed.ts'
import { TalkenError } from '../errors.ts'
import { decodeCbor, encodeCbor, FieldReader } from '../wire/cbor.ts'
import { MAX_GOSSIP_FRAME_BYTES } from './gossip-frames.ts'

/** The first byte of a room frame (a sealed direct-message body starts with 0x01). */
export const ROOM_FRAME_VERSION = 0x02
const AD = new Uint8Array([ROOM_FRAME_VERSION])
const OVERHEAD = 1 + AEAD_NONCE_LENGTH + AEAD_TAG_LENGTH
/** Length of a join token. */
export const JOIN_TOKEN_LENGTH = 16

/** What a room frame carries. */
export type RoomMessage =
  | { readonly kind: 'gossip'; readonly sender: Uint8Array; readonly frame: Uint8Array }
  | {
      readonly kind: 'join'
      readonly sender: Uint8Array
      readonly token: Uint8Array
      readonly sealingKey: Uint8Array
    }

/** The key that seals a room's frames. */
export function roomTransportKey(roomId: Uint8Array): Uint8Array {
  return hkdf(roomId, new Uint8Array(0), 'talken/room-transport/v1', 32)
}

/** Seals a room message for the mesh. */
export function sealRoomMessage(
  key: Uint8Array,
  m: RoomMessage,
  random: RandomSource = systemRandom,
): Uint8Array {
  const inner =
    m.kind === 'gossip'
      ? encodeCbor([1, m.sender, m.frame])
      : encodeCbor([2, m.sender, [m.token, m.sealingKey]])
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
 * Opens a room frame with the first key that fits. Returns the room's index in `keys` and the
 * message; throws `decrypt_failed` when no key opens it and `malformed` for a bad inside.
 */
export function openRoomMessage(
  keys: readonly Uint8Array[],
  bytes: Uint8Array,
): { index: number; message: RoomMessage } {
  if (!looksLikeRoomFrame(bytes)) throw new TalkenError('malformed', 'not a room frame')
  const nonce = bytes.subarray(1, 1 + AEAD_NONCE_LENGTH)
  const sealed = bytes.subarray(1 + AEAD_NONCE_LENGTH)
  for (let index = 0; index < keys.length; index++) {
    let padded: Uint8Array
    try {
      padded = aeadOpen(keys[index]!, nonce, sealed, AD)
    } catch {
      continue
    }
    return { index, message: decodeInner(unpad(padded)) }
  }
  throw new TalkenError('decrypt_failed', 'no room held here opens this frame')
}

function unpad(padded: Uint8Array): Uint8Array {
  let end = padded.length - 1
  while (end >= 0 && padded[end] === 0) end--
  if (end < 0 || padded[end] !== 0x80) throw new TalkenError('malformed', 'room frame: bad padding')
  return padded.subarray(0, end)
}

function decodeInner(bytes: Uint8Array): RoomMessage {
  const value = decodeCbor(bytes, MAX_GOSSIP_FRAME_BYTES + 64, 'room message')
  if (!Array.isArray(value)) throw new TalkenError('malformed', 'room message: expected an array')
  const r = new FieldReader(value, 'room message', 3)
  const kind = r.uint('kind', 2, 1)
  const sender = r.bytes('sender', 32)
  if (kind === 1) return { kind: 'gossip', sender, frame: r.bytes('frame', 1, MAX_GOSSIP_FRAME_BYTES) }
  const j = new FieldReader(r.value(), 'join request', 2)
  return {
    kind: 'join',
    sender,
    token: j.bytes('token', JOIN_TOKEN_LENGTH),
    sealingKey: j.bytes('sealingKey', 32),
  }
}
