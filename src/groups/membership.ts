/**
 * Who is in a room, decided by the room's own signed entries: a pure fold, no I/O.
 *
 * The state that judges an entry is the fold of the control entries (genesis, add, remove,
 * rotate, leave) in that entry's causal past, taken in causal order (depth, then hash). Every
 * replica that holds an entry holds its whole past, so every replica reaches the same verdict.
 * A control entry that was valid in its own past but no longer applies in a larger fold (an
 * admin removed concurrently with an add they made, say) is skipped there; docs/groups.md
 * §Membership states the rules.
 */
import { TalkenError } from '../errors.ts'
import { bytesEqual } from '../wire/cbor.ts'
import type { RoomEntry } from './entry.ts'
import { toHex } from './entry.ts'
import { MAX_ROOM_MEMBERS } from './limits.ts'
import {
  decodeAddBody,
  decodeGenesisBody,
  decodePostBody,
  decodeRemoveBody,
  decodeRotateBody,
  type Role,
  type SealedFor,
} from './room-bodies.ts'

/** A member of a room. */
export interface Member {
  readonly account: Uint8Array
  readonly sealingKey: Uint8Array
  readonly role: Role
}

/** The membership and key epochs a set of control entries yields. */
export interface RoomState {
  /** Members by account key (hex). */
  readonly members: ReadonlyMap<string, Member>
  /** The key ID posts should use: the last key introduced in causal order; undefined before genesis. */
  readonly currentKeyId: Uint8Array | undefined
  /**
   * The accounts (hex) the current key was sealed for or handed to. Only the current key's: a key
   * once superseded never becomes current again (a key ID is introduced once).
   */
  readonly holders: ReadonlySet<string>
  /** Every key ID introduced so far. */
  readonly introduced: KeyIds | undefined
}

/**
 * Key IDs (hex), as a chain that shares its older links with the states before it, with a full
 * set every {@link SNAPSHOT_EVERY} links so that a lookup walks at most that far. Each control
 * entry's state is kept, and a table copied into each grew with the square of the rotations a
 * member wrote.
 */
export interface KeyIds {
  readonly id: string
  readonly up: KeyIds | undefined
  /** On every {@link SNAPSHOT_EVERY}th link: every ID up to and including this one. */
  readonly all: ReadonlySet<string> | undefined
  /** Links since the last snapshot. */
  readonly hops: number
}

const SNAPSHOT_EVERY = 64

function hasKeyId(ids: KeyIds | undefined, id: string): boolean {
  for (let link = ids; link !== undefined; link = link.up) {
    if (link.all !== undefined) return link.all.has(id)
    if (link.id === id) return true
  }
  return false
}

function withKeyId(ids: KeyIds | undefined, id: string): KeyIds {
  const hops = (ids?.hops ?? 0) + 1
  if (hops < SNAPSHOT_EVERY) return { id, up: ids, all: undefined, hops }
  const all = new Set<string>([id])
  for (let link = ids; link !== undefined; link = link.up) {
    if (link.all !== undefined) {
      for (const k of link.all) all.add(k)
      break
    }
    all.add(link.id)
  }
  return { id, up: undefined, all, hops: 0 }
}

/** The state before genesis: nobody. */
export const EMPTY_STATE: RoomState = {
  members: new Map(),
  currentKeyId: undefined,
  holders: new Set(),
  introduced: undefined,
}

/** True for the kinds that change membership or keys. */
export function isControl(entry: RoomEntry): boolean {
  return entry.kind !== 'post'
}

function reject(reason: string, message: string): never {
  // `not_permitted`: a valid signature by someone the room does not allow to write this entry.
  const code = reason === 'not_member' || reason === 'not_admin' ? 'not_permitted' : 'malformed'
  throw new TalkenError(code, `room entry: ${message}`, { details: { reason } })
}

function checkSealedForAll(sealed: readonly SealedFor[], members: Iterable<string>): void {
  const want = [...members].sort()
  const got = sealed.map((s) => toHex(s.account))
  if (want.length !== got.length || want.some((m, i) => m !== got[i])) {
    reject('bad_recipients', 'a new room key must be sealed for every remaining member exactly once')
  }
}

/**
 * How strictly {@link applyEntry} judges: `check` for a new entry against its own causal past
 * (everything must hold), `fold` for replaying entries that were each checked that way into a
 * larger set, where concurrent changes may have moved things (only authority still counts).
 */
export type ApplyMode = 'check' | 'fold'

/**
 * Checks that `entry` may follow `state` (the fold of its causal past) and returns the state
 * after it. Throws `not_permitted` (reason `not_member` or `not_admin`) or `malformed` (a body
 * that does not decode, or a change that does not apply).
 */
export function applyEntry(state: RoomState, entry: RoomEntry, mode: ApplyMode = 'check'): RoomState {
  const strict = mode === 'check'
  const author = toHex(entry.author)
  const self = state.members.get(author)
  if (entry.kind === 'genesis') {
    if (state.members.size > 0 || state.currentKeyId !== undefined)
      reject('second_genesis', 'a second genesis')
    const g = decodeGenesisBody(entry.body)
    return {
      members: new Map([[author, { account: entry.author, sealingKey: g.sealingKey, role: 'admin' }]]),
      currentKeyId: g.keyId,
      holders: new Set([author]),
      introduced: withKeyId(undefined, toHex(g.keyId)),
    }
  }
  if (self === undefined) reject('not_member', 'the author is not a member of the room')
  switch (entry.kind) {
    case 'post':
      if (strict) decodePostBody(entry.body)
      return state
    case 'leave': {
      if (entry.body.length !== 0) reject('bad_body', 'a leave entry has an empty body')
      const members = new Map(state.members)
      members.delete(author)
      return { ...state, members }
    }
    case 'add': {
      if (self.role !== 'admin') reject('not_admin', 'only an admin may add members')
      const b = decodeAddBody(entry.body)
      const id = toHex(b.member)
      const already = state.members.has(id)
      if (strict && already) reject('already_member', 'the account is a member already')
      if (!already && state.members.size >= MAX_ROOM_MEMBERS) {
        reject('room_full', `a room holds at most ${MAX_ROOM_MEMBERS} members`)
      }
      if (strict && (state.currentKeyId === undefined || !bytesEqual(b.keyId, state.currentKeyId))) {
        reject('stale_key', 'an add must hand over the current room key')
      }
      // In a fold, an add of a member already in (a concurrent or backdated one) changes neither
      // their sealing key nor their role: it only handed over a key.
      if (already) return handedOver(state, b.keyId, id)
      const members = new Map(state.members).set(id, {
        account: b.member,
        sealingKey: b.sealingKey,
        role: b.role,
      })
      return { ...handedOver(state, b.keyId, id), members }
    }
    case 'remove':
    case 'rotate': {
      const members = new Map(state.members)
      let keyId: Uint8Array
      let sealed: readonly SealedFor[]
      if (entry.kind === 'remove') {
        if (self.role !== 'admin') reject('not_admin', 'only an admin may remove members')
        const b = decodeRemoveBody(entry.body)
        const id = toHex(b.member)
        if (strict && !members.has(id)) reject('not_a_member', 'the account is not a member')
        if (id === author) reject('self_remove', 'members remove themselves with a leave entry')
        members.delete(id)
        keyId = b.keyId
        sealed = b.sealed
      } else {
        const b = decodeRotateBody(entry.body)
        keyId = b.keyId
        sealed = b.sealed
      }
      if (hasKeyId(state.introduced, toHex(keyId))) {
        if (strict) reject('key_reused', 'a new room key needs a new key ID')
        return { ...state, members }
      }
      // In a fold, members added concurrently are not among the recipients: the key then
      // differs from the membership, and the next post rotates again (needsRotation).
      if (strict) checkSealedForAll(sealed, members.keys())
      return {
        members,
        currentKeyId: keyId,
        holders: new Set(sealed.map((s) => toHex(s.account))),
        introduced: withKeyId(state.introduced, toHex(keyId)),
      }
    }
  }
}

/** `state` with `account` (hex) holding key `keyId` too, if that is the current key. */
function handedOver(state: RoomState, keyId: Uint8Array, account: string): RoomState {
  if (state.currentKeyId === undefined || !bytesEqual(keyId, state.currentKeyId)) return state
  if (state.holders.has(account)) return state
  return { ...state, holders: new Set(state.holders).add(account) }
}

/**
 * Folds control entries, given in causal order, into a state. Entries whose author lost the
 * authority to make them (in this larger set) are skipped: they stay in the history and change
 * nothing.
 */
export function foldControl(entries: readonly RoomEntry[], from: RoomState = EMPTY_STATE): RoomState {
  let state = from
  for (const entry of entries) state = foldOne(state, entry)
  return state
}

/**
 * One step of {@link foldControl}. A skipped `add` (its author lost authority, or the room is
 * full in this larger set) still handed its key to the account it names: that account is
 * recorded as a holder, so {@link needsRotation} sees a key a non-member holds.
 */
export function foldOne(state: RoomState, entry: RoomEntry): RoomState {
  try {
    return applyEntry(state, entry, 'fold')
  } catch (err) {
    if (!(err instanceof TalkenError)) throw err
    if (entry.kind !== 'add') return state
    const b = decodeAddBody(entry.body) // an entry in a fold decoded when it was checked
    return handedOver(state, b.keyId, toHex(b.member))
  }
}

/**
 * True when the current key's holders are not exactly the members: someone who left or was
 * removed still holds it, or someone added concurrently with a rotation lacks it.
 */
export function needsRotation(state: RoomState): boolean {
  if (state.currentKeyId === undefined) return false
  if (state.holders.size !== state.members.size) return true
  for (const h of state.holders) if (!state.members.has(h)) return true
  return false
}
