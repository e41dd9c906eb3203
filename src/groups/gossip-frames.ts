/**
 * The frames room members exchange to spread and reconcile a room's history
 * (docs/groups.md §Dissemination). Deterministic CBOR arrays; the first item names the kind.
 *
 * ```
 * [1, entries: [bytes…]]            push      entries for the eager tree
 * [2, heads: [bytes(32)…]]          ihave     the sender's heads, announced lazily
 * [3, heads: [bytes(32)…]]          graft     "push to me from now on; send what I lack beyond these heads"
 * [4]                               prune     "stop pushing to me; announce instead"
 * [5, heads: [bytes(32)…], reply, peer?]  sync  "this is what I hold"; reply: bool; peer: bool,
 *                                             "I keep you as a gossip peer" (absent: false)
 * [6, entries: [bytes…]]            supply    entries asked for (graft, sync); never pruned on
 * ```
 */
import { TalkenError } from '../errors.ts'
import { type CborValue, decodeCbor, encodeCbor, FieldReader } from '../wire/cbor.ts'
import { HASH_LENGTH, MAX_ENTRY_BYTES } from './limits.ts'

/** Largest gossip frame: one entry of the largest size fits, with room to spare. */
export const MAX_GOSSIP_FRAME_BYTES = 48 * 1024
/** Most hashes in one ihave, graft or sync frame. */
export const MAX_GOSSIP_HASHES = 512

/** A decoded gossip frame. */
export type GossipFrame =
  | { readonly type: 'push' | 'supply'; readonly entries: readonly Uint8Array[] }
  | { readonly type: 'ihave' | 'graft'; readonly hashes: readonly Uint8Array[] }
  | { readonly type: 'prune' }
  | {
      readonly type: 'sync'
      readonly heads: readonly Uint8Array[]
      readonly reply: boolean
      /** The sender keeps us as a gossip peer (so we keep it too). */
      readonly peer?: boolean
    }

const CODES = { push: 1, ihave: 2, graft: 3, prune: 4, sync: 5, supply: 6 } as const

/** Encodes a gossip frame. */
export function encodeGossipFrame(f: GossipFrame): Uint8Array {
  const code = CODES[f.type]
  switch (f.type) {
    case 'push':
    case 'supply':
      return encodeCbor([code, [...f.entries]])
    case 'ihave':
    case 'graft':
      return encodeCbor([code, [...f.hashes]])
    case 'prune':
      return encodeCbor([code])
    case 'sync':
      return encodeCbor(f.peer ? [code, [...f.heads], f.reply, true] : [code, [...f.heads], f.reply])
  }
}

const hash = (v: CborValue) => {
  if (!(v instanceof Uint8Array) || v.length !== HASH_LENGTH) {
    throw new TalkenError('malformed', 'gossip frame: a hash is 32 bytes')
  }
  return v
}

const entry = (v: CborValue) => {
  if (!(v instanceof Uint8Array) || v.length === 0 || v.length > MAX_ENTRY_BYTES) {
    throw new TalkenError('malformed', 'gossip frame: an entry is 1 to 34 KiB of bytes')
  }
  return v
}

/** Decodes a gossip frame; throws `too_large`, `malformed` or `non_canonical` only. */
export function decodeGossipFrame(bytes: Uint8Array): GossipFrame {
  if (bytes.length > MAX_GOSSIP_FRAME_BYTES) throw new TalkenError('too_large', 'gossip frame too large')
  const value = decodeCbor(bytes, MAX_GOSSIP_FRAME_BYTES, 'gossip frame')
  if (!Array.isArray(value) || typeof value[0] !== 'number') {
    throw new TalkenError('malformed', 'gossip frame: expected [kind, …]')
  }
  switch (value[0]) {
    case 1:
    case 6: {
      const r = new FieldReader(value, 'gossip entries', 2)
      r.uint('kind')
      const entries = r.array('entries', MAX_GOSSIP_HASHES, entry)
      return { type: value[0] === 1 ? 'push' : 'supply', entries }
    }
    case 2:
    case 3: {
      const r = new FieldReader(value, 'gossip hashes', 2)
      r.uint('kind')
      const hashes = r.array('hashes', MAX_GOSSIP_HASHES, hash)
      return { type: value[0] === 2 ? 'ihave' : 'graft', hashes }
    }
    case 4:
      new FieldReader(value, 'gossip prune', 1).uint('kind')
      return { type: 'prune' }
    case 5: {
      const r = new FieldReader(value, 'gossip sync', 3, 4)
      r.uint('kind')
      const heads = r.array('heads', MAX_GOSSIP_HASHES, hash)
      const reply = r.value()
      if (typeof reply !== 'boolean') throw new TalkenError('malformed', 'gossip sync: reply is a bool')
      if (r.remaining === 0) return { type: 'sync', heads, reply }
      const peer = r.value()
      if (peer !== true) throw new TalkenError('malformed', 'gossip sync: peer is true or absent')
      return { type: 'sync', heads, reply, peer }
    }
    default:
      throw new TalkenError('malformed', 'gossip frame: unknown kind')
  }
}

/**
 * Splits entries into as few push or supply frames as fit {@link MAX_GOSSIP_FRAME_BYTES}, in
 * the order given (causal order stays causal order across frames).
 */
export function entryFrames(type: 'push' | 'supply', entries: readonly Uint8Array[]): Uint8Array[] {
  const frames: Uint8Array[] = []
  let batch: Uint8Array[] = []
  let size = 16
  for (const e of entries) {
    if (
      batch.length > 0 &&
      (size + e.length + 5 > MAX_GOSSIP_FRAME_BYTES || batch.length >= MAX_GOSSIP_HASHES)
    ) {
      frames.push(encodeGossipFrame({ type, entries: batch }))
      batch = []
      size = 16
    }
    batch.push(e)
    size += e.length + 5
  }
  if (batch.length > 0) frames.push(encodeGossipFrame({ type, entries: batch }))
  return frames
}
