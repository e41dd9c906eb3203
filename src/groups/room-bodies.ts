/**
 * The bodies of room entries, by kind. Each is a CBOR array inside the entry's `body` bytes.
 *
 * ```
 * genesis = [ name: text(≤64), sealingKey: bytes(32), keyId: bytes(16), sealedKey: bytes(≤192) ]
 * post    = [ keyId: bytes(16), nonce: bytes(12), ciphertext: bytes(16–16400) ]
 * add     = [ member: bytes(32), sealingKey: bytes(32), role: uint (0 member, 1 admin),
 *             keyId: bytes(16), sealedKey: bytes(≤192) ]
 * remove  = [ member: bytes(32), keyId: bytes(16), sealed: [[account: bytes(32), sealedKey]] ]
 * rotate  = [ keyId: bytes(16), sealed: [[account: bytes(32), sealedKey]] ]
 * leave   = (empty body)
 * ```
 * `sealingKey` is the member's public key for receiving room keys (X25519 in the default
 * sealer); `sealedKey` is a room key sealed for one member. `sealed` lists every remaining
 * member exactly once, in ascending order of account key. Byte table: docs/groups.md §Bodies.
 */

import { AEAD_NONCE_LENGTH, AEAD_TAG_LENGTH } from '../e2e/primitives.ts'
import { TalkenError } from '../errors.ts'
import { PUBLIC_KEY_LENGTH } from '../identity/ed25519.ts'
import { bytesEqual, type CborValue, decodeCbor, encodeCbor, FieldReader } from '../wire/cbor.ts'
import { compareBytes, type RoomEntry } from './entry.ts'
import {
  KEY_ID_LENGTH,
  MAX_ENTRY_BODY_BYTES,
  MAX_POST_BYTES,
  MAX_ROOM_MEMBERS,
  MAX_ROOM_NAME_BYTES,
  MAX_SEALED_KEY_BYTES,
} from './limits.ts'

/** A member's role: admins may add and remove members. */
export type Role = 'member' | 'admin'

/** A room key sealed for one member. */
export interface SealedFor {
  readonly account: Uint8Array
  readonly sealed: Uint8Array
}

/** The genesis body: the room's name and its creator's first key. */
export interface GenesisBody {
  readonly name: string
  readonly sealingKey: Uint8Array
  readonly keyId: Uint8Array
  readonly sealedKey: Uint8Array
}

/** A post body: content encrypted with one room key. */
export interface PostBody {
  readonly keyId: Uint8Array
  readonly nonce: Uint8Array
  readonly ciphertext: Uint8Array
}

/** An add body: the new member and the current room key sealed for them. */
export interface AddBody {
  readonly member: Uint8Array
  readonly sealingKey: Uint8Array
  readonly role: Role
  readonly keyId: Uint8Array
  readonly sealedKey: Uint8Array
}

/** A remove body: who leaves, and a new room key for everyone who stays. */
export interface RemoveBody {
  readonly member: Uint8Array
  readonly keyId: Uint8Array
  readonly sealed: readonly SealedFor[]
}

/** A rotate body: a new room key for every member. */
export interface RotateBody {
  readonly keyId: Uint8Array
  readonly sealed: readonly SealedFor[]
}

function sealedToCbor(list: readonly SealedFor[]): CborValue {
  return list.map((s) => [s.account, s.sealed])
}

function readSealed(r: FieldReader, what: string): SealedFor[] {
  const list = r.array('sealed', MAX_ROOM_MEMBERS, (v) => {
    const item = new FieldReader(v, `${what}.sealed`, 2)
    return {
      account: item.bytes('account', PUBLIC_KEY_LENGTH),
      sealed: item.bytes('sealedKey', 1, MAX_SEALED_KEY_BYTES),
    }
  })
  for (let i = 1; i < list.length; i++) {
    if (compareBytes(list[i - 1]!.account, list[i]!.account) >= 0) {
      throw new TalkenError('malformed', `${what}.sealed: accounts must be strictly ascending`)
    }
  }
  return list
}

function read(body: Uint8Array, what: string, count: number): FieldReader {
  return new FieldReader(decodeCbor(body, MAX_ENTRY_BODY_BYTES, what), what, count)
}

/** Encodes a genesis body. */
export function encodeGenesisBody(b: GenesisBody): Uint8Array {
  return encodeCbor([b.name, b.sealingKey, b.keyId, b.sealedKey])
}

/** Decodes a genesis body; throws `malformed`, `non_canonical` or `too_large`. */
export function decodeGenesisBody(body: Uint8Array): GenesisBody {
  const r = read(body, 'genesis body', 4)
  return {
    name: r.text('name', MAX_ROOM_NAME_BYTES),
    sealingKey: r.bytes('sealingKey', 32),
    keyId: r.bytes('keyId', KEY_ID_LENGTH),
    sealedKey: r.bytes('sealedKey', 1, MAX_SEALED_KEY_BYTES),
  }
}

/** Encodes a post body. */
export function encodePostBody(b: PostBody): Uint8Array {
  return encodeCbor([b.keyId, b.nonce, b.ciphertext])
}

/** Decodes a post body. */
export function decodePostBody(body: Uint8Array): PostBody {
  const r = read(body, 'post body', 3)
  return {
    keyId: r.bytes('keyId', KEY_ID_LENGTH),
    nonce: r.bytes('nonce', AEAD_NONCE_LENGTH),
    ciphertext: r.bytes('ciphertext', AEAD_TAG_LENGTH, MAX_POST_BYTES + AEAD_TAG_LENGTH),
  }
}

/** Encodes an add body. */
export function encodeAddBody(b: AddBody): Uint8Array {
  return encodeCbor([b.member, b.sealingKey, b.role === 'admin' ? 1 : 0, b.keyId, b.sealedKey])
}

/** Decodes an add body. */
export function decodeAddBody(body: Uint8Array): AddBody {
  const r = read(body, 'add body', 5)
  return {
    member: r.bytes('member', PUBLIC_KEY_LENGTH),
    sealingKey: r.bytes('sealingKey', 32),
    role: r.uint('role', 1) === 1 ? 'admin' : 'member',
    keyId: r.bytes('keyId', KEY_ID_LENGTH),
    sealedKey: r.bytes('sealedKey', 1, MAX_SEALED_KEY_BYTES),
  }
}

/** Encodes a remove body. */
export function encodeRemoveBody(b: RemoveBody): Uint8Array {
  return encodeCbor([b.member, b.keyId, sealedToCbor(b.sealed)])
}

/** Decodes a remove body. */
export function decodeRemoveBody(body: Uint8Array): RemoveBody {
  const r = read(body, 'remove body', 3)
  return {
    member: r.bytes('member', PUBLIC_KEY_LENGTH),
    keyId: r.bytes('keyId', KEY_ID_LENGTH),
    sealed: readSealed(r, 'remove body'),
  }
}

/** Encodes a rotate body. */
export function encodeRotateBody(b: RotateBody): Uint8Array {
  return encodeCbor([b.keyId, sealedToCbor(b.sealed)])
}

/** Decodes a rotate body. */
export function decodeRotateBody(body: Uint8Array): RotateBody {
  const r = read(body, 'rotate body', 2)
  return { keyId: r.bytes('keyId', KEY_ID_LENGTH), sealed: readSealed(r, 'rotate body') }
}

/** The room key a control entry seals for `member`, if it seals one for them. */
export function sealedKeyFor(
  entry: RoomEntry,
  member: Uint8Array,
): { keyId: Uint8Array; sealed: Uint8Array } | undefined {
  let keyId: Uint8Array
  let sealed: Uint8Array | undefined
  if (entry.kind === 'genesis') {
    const b = decodeGenesisBody(entry.body)
    ;[keyId, sealed] = [b.keyId, bytesEqual(entry.author, member) ? b.sealedKey : undefined]
  } else if (entry.kind === 'add') {
    const b = decodeAddBody(entry.body)
    ;[keyId, sealed] = [b.keyId, bytesEqual(b.member, member) ? b.sealedKey : undefined]
  } else if (entry.kind === 'remove' || entry.kind === 'rotate') {
    const b = entry.kind === 'remove' ? decodeRemoveBody(entry.body) : decodeRotateBody(entry.body)
    ;[keyId, sealed] = [b.keyId, b.sealed.find((s) => bytesEqual(s.account, member))?.sealed]
  } else return undefined
  return sealed === undefined ? undefined : { keyId, sealed }
}
