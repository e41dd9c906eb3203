/**
 * A room entry: one signed, hash-linked record of a room's history.
 *
 * ```
 * Entry = [ version: uint (1), roomId: bytes(32), author: bytes(32), deviceCert: DeviceCert,
 *           parents: [bytes(32)] (0–16, strictly ascending), depth: uint, kind: uint (0–5),
 *           body: bytes (0–32768), time: uint (Unix ms), signature: bytes(64) ]
 * signature = Ed25519(deviceKey, "talken/room-entry/v1" 0x00 || CBOR(first nine fields))
 * hash      = SHA-256(the whole encoded entry)
 * ```
 *
 * The author is an account key; the entry is signed by one of its devices, whose certificate
 * rides inside, so that one account may post from several devices. The genesis entry has no
 * parents, depth 0 and an all-zero room ID; the room's ID is the genesis entry's hash. Every other
 * entry names the room and has depth 1 + the greatest depth of its parents. Byte table:
 * docs/groups.md §Entry.
 */
import { createHash } from 'node:crypto'
import { TalkenError } from '../errors.ts'
import {
  type DeviceCert,
  deviceCertFromCbor,
  deviceCertToCbor,
  verifyDeviceCert,
} from '../identity/device-cert.ts'
import { domainSeparated, PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH, verifySignature } from '../identity/ed25519.ts'
import type { Identity } from '../identity/identity.ts'
import { type CborValue, decodeCbor, encodeCbor, FieldReader } from '../wire/cbor.ts'
import { HASH_LENGTH, MAX_ENTRY_BODY_BYTES, MAX_ENTRY_BYTES, MAX_PARENTS } from './limits.ts'

/** The entry format version this code reads and writes. */
export const ENTRY_VERSION = 1
const DOMAIN = 'talken/room-entry/v1'

/** What an entry does. */
export type EntryKind = 'genesis' | 'post' | 'add' | 'remove' | 'rotate' | 'leave'

/** Wire codes of {@link EntryKind}, in order. */
export const ENTRY_KINDS: readonly EntryKind[] = ['genesis', 'post', 'add', 'remove', 'rotate', 'leave']

/** The all-zero room ID a genesis entry carries (it cannot carry its own hash); a fresh copy. */
export function genesisRoomId(): Uint8Array {
  return new Uint8Array(HASH_LENGTH)
}

/** The fields an author chooses; the signature and hash follow from them. */
export interface EntryFields {
  /** The room's ID; {@link genesisRoomId}() for the genesis entry. */
  readonly roomId: Uint8Array
  /** The author's account key. */
  readonly author: Uint8Array
  /** The certificate of the device key that signs. */
  readonly cert: DeviceCert
  /** Hashes of the entries the author had seen as heads, strictly ascending. */
  readonly parents: readonly Uint8Array[]
  /** 0 for genesis, else 1 + the greatest parent depth (a Lamport clock). */
  readonly depth: number
  readonly kind: EntryKind
  /** Kind-specific content (see room-bodies.ts); post bodies are encrypted. */
  readonly body: Uint8Array
  /** When the author wrote it, Unix milliseconds, as its clock said (not trusted for order). */
  readonly time: number
}

/** A decoded entry whose signatures verified. */
export interface RoomEntry extends EntryFields {
  readonly signature: Uint8Array
  /** SHA-256 of {@link bytes}: the entry's identity. */
  readonly hash: Uint8Array
  /** The one encoding of the entry. */
  readonly bytes: Uint8Array
}

function unsignedCbor(f: EntryFields): CborValue[] {
  return [
    ENTRY_VERSION,
    f.roomId,
    f.author,
    deviceCertToCbor(f.cert),
    [...f.parents],
    f.depth,
    ENTRY_KINDS.indexOf(f.kind),
    f.body,
    f.time,
  ]
}

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest())
}

/** Orders byte strings lexicographically (shorter first on a common prefix). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.length - b.length
}

/** Lower-case hex of bytes: the form hashes take as store keys. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex')
}

/** The bytes of a lower-case hex string made by {@link toHex}. */
export function fromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'))
}

function checkFields(f: EntryFields): void {
  const bad = (message: string): never => {
    throw new TalkenError('invalid_argument', `room entry: ${message}`)
  }
  if (f.roomId.length !== HASH_LENGTH) bad('room ID is 32 bytes')
  if (f.author.length !== PUBLIC_KEY_LENGTH) bad('author is a 32-byte account key')
  if (!ENTRY_KINDS.includes(f.kind)) bad(`unknown kind ${String(f.kind)}`)
  if (f.parents.length > MAX_PARENTS) bad(`more than ${MAX_PARENTS} parents`)
  for (let i = 0; i < f.parents.length; i++) {
    if (f.parents[i]!.length !== HASH_LENGTH) bad('a parent is a 32-byte hash')
    if (i > 0 && compareBytes(f.parents[i - 1]!, f.parents[i]!) >= 0)
      bad('parents must be strictly ascending')
  }
  if (!Number.isSafeInteger(f.depth) || f.depth < 0) bad('depth is an unsigned integer')
  if (!Number.isSafeInteger(f.time) || f.time < 0) bad('time is Unix milliseconds')
  if (f.body.length > MAX_ENTRY_BODY_BYTES) bad(`body longer than ${MAX_ENTRY_BODY_BYTES} bytes`)
  const genesis = f.kind === 'genesis'
  const zeroRoom = f.roomId.every((b) => b === 0)
  if (genesis !== (f.parents.length === 0) || genesis !== zeroRoom || genesis !== (f.depth === 0)) {
    bad('a genesis entry, and only it, has no parents, depth 0 and the all-zero room ID')
  }
}

/**
 * Signs an entry with the identity's device key (the identity's account is the author).
 *
 * @example
 * const genesis = signEntry(me, { roomId: genesisRoomId(),
 *   parents: [], depth: 0, kind: 'genesis', body, time: Date.now() })
 * const roomId = genesis.hash
 */
export function signEntry(identity: Identity, fields: Omit<EntryFields, 'author' | 'cert'>): RoomEntry {
  const full: EntryFields = { ...fields, author: identity.account.publicKey, cert: identity.deviceCert }
  checkFields(full)
  const unsigned = unsignedCbor(full)
  const signature = identity.device.sign(domainSeparated(DOMAIN, encodeCbor(unsigned)))
  const bytes = encodeCbor([...unsigned, signature])
  if (bytes.length > MAX_ENTRY_BYTES) throw new TalkenError('too_large', 'room entry: larger than the limit')
  return { ...full, signature, hash: sha256(bytes), bytes }
}

/**
 * Decodes and verifies an entry: size, canonical CBOR, shape, the device certificate against the
 * author, and the signature. Throws `too_large`, `malformed`, `non_canonical`,
 * `unsupported_version` or `bad_signature`; never anything else. Whether the author may write in
 * the room, and whether the parents exist, is the room log's question.
 */
export function decodeEntry(bytes: Uint8Array): RoomEntry {
  const value = decodeCbor(bytes, MAX_ENTRY_BYTES, 'room entry')
  if (
    Array.isArray(value) &&
    value.length > 0 &&
    typeof value[0] === 'number' &&
    value[0] !== ENTRY_VERSION
  ) {
    throw new TalkenError('unsupported_version', `room entry version ${value[0]} is not supported`)
  }
  const r = new FieldReader(value, 'room entry', 10)
  r.uint('version', 255)
  const roomId = r.bytes('roomId', HASH_LENGTH)
  const author = r.bytes('author', PUBLIC_KEY_LENGTH)
  const cert = deviceCertFromCbor(r.value())
  const parents = r.array('parents', MAX_PARENTS, (v) => {
    if (!(v instanceof Uint8Array) || v.length !== HASH_LENGTH) {
      throw new TalkenError('malformed', 'room entry.parents: each is a 32-byte hash')
    }
    return v
  })
  const depth = r.uint('depth')
  const kind = ENTRY_KINDS[r.uint('kind', ENTRY_KINDS.length - 1)]!
  const body = r.bytes('body', 0, MAX_ENTRY_BODY_BYTES)
  const time = r.uint('time')
  const signature = r.bytes('signature', SIGNATURE_LENGTH)
  const fields: EntryFields = { roomId, author, cert, parents, depth, kind, body, time }
  try {
    checkFields(fields)
  } catch (err) {
    throw new TalkenError('malformed', (err as Error).message)
  }
  verifyDeviceCert(author, cert)
  const signed = domainSeparated(DOMAIN, encodeCbor(unsignedCbor(fields)))
  if (!verifySignature(cert.deviceKey, signed, signature)) {
    throw new TalkenError('bad_signature', 'room entry: the signature does not verify')
  }
  const own = new Uint8Array(bytes)
  return { ...fields, signature, hash: sha256(own), bytes: own }
}
