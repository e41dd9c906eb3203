/**
 * Size limits of room entries, with their arithmetic. The entry decoder checks these before
 * parsing; the encoders refuse to produce anything larger. See docs/groups.md §Limits.
 */
import { MAX_DEVICE_CERT_BYTES } from '../wire/limits.ts'

/** Room ID and entry hash length: SHA-256. */
export const HASH_LENGTH = 32
/** Room key ID length: 128 random bits, unique per key. */
export const KEY_ID_LENGTH = 16
/** Room key length: a ChaCha20-Poly1305 key. */
export const ROOM_KEY_LENGTH = 32

/** Most parents one entry links to; an author with more heads merges them over several entries. */
export const MAX_PARENTS = 16
/** Most members a room holds (bounds a key rotation, which seals the new key for each of them). */
export const MAX_ROOM_MEMBERS = 128
/** Largest room key sealed for one member (the X25519 box uses 80 bytes; an e2e session more). */
export const MAX_SEALED_KEY_BYTES = 192
/** Longest room name, in UTF-8 bytes. */
export const MAX_ROOM_NAME_BYTES = 64
/** Largest post plaintext: 16 KiB (files are chunked above rooms). */
export const MAX_POST_BYTES = 16 * 1024

/**
 * Largest entry body: a rotation for 128 members, each 1 (array) + 34 (account key) +
 * 2 + 192 (sealed key) = 229 bytes, is 29,312 bytes plus about 60 of header; a post is
 * 16 KiB of plaintext plus 46 bytes. Capped at 32 KiB.
 */
export const MAX_ENTRY_BODY_BYTES = 32 * 1024

/**
 * Largest encoded entry: array header 1, version 1, room ID 34, author 34, device certificate
 * 192, parents 3 + 16 × 34 = 547, depth 9, kind 1, body 5 + 32,768, time 9, signature 66 =
 * 33,667 bytes, rounded up to 34 KiB.
 */
export const MAX_ENTRY_BYTES = 34 * 1024

/** The fixed part of {@link MAX_ENTRY_BYTES}: everything but the body's content. */
export const ENTRY_OVERHEAD_BYTES =
  1 + 1 + 34 + 34 + MAX_DEVICE_CERT_BYTES + 3 + MAX_PARENTS * 34 + 9 + 1 + 5 + 9 + 66

/** Most entries held while their parents are missing (evicted oldest first). */
export const MAX_PENDING_ENTRIES = 256
