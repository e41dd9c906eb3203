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
  /** For each key ID (hex), the accounts (hex) it was sealed for. */
  readonly keyHolders: ReadonlyMap<string, ReadonlySet<string>>
}

/** The state before genesis: nobody. */
export const EMPTY_STATE: RoomState = { members: new Map(), currentKeyId: undefined, keyHolders: new Map() }

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
      keyHolders: new Map([[toHex(g.keyId), new Set([author])]]),
    }
  }
  if (self === undefined) reject('not_member', 'the author is not a member of the room')
  const members = new Map(state.members)
  const keyHolders = new Map(state.keyHolders)
  switch (entry.kind) {
    case 'post':
      if (strict) decodePostBody(entry.body)
      return state
    case 'leave':
      if (entry.body.length !== 0) reject('bad_body', 'a leave entry has an empty body')
      members.delete(author)
      return { ...state, members }
    case 'add': {
      if (self.role !== 'admin') reject('not_admin', 'only an admin may add members')
      const b = decodeAddBody(entry.body)
      const id = toHex(b.member)
      if (strict && members.has(id)) reject('already_member', 'the account is a member already')
      if (!members.has(id) && members.size >= MAX_ROOM_MEMBERS) {
        reject('room_full', `a room holds at most ${MAX_ROOM_MEMBERS} members`)
      }
      if (strict && (state.currentKeyId === undefined || !bytesEqual(b.keyId, state.currentKeyId))) {
        reject('stale_key', 'an add must hand over the current room key')
      }
      members.set(id, { account: b.member, sealingKey: b.sealingKey, role: b.role })
      const holders = new Set(keyHolders.get(toHex(b.keyId)))
      holders.add(id)
      keyHolders.set(toHex(b.keyId), holders)
      return { ...state, members, keyHolders }
    }
    case 'remove':
    case 'rotate': {
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
      if (keyHolders.has(toHex(keyId))) {
        if (strict) reject('key_reused', 'a new room key needs a new key ID')
        return { ...state, members }
      }
      // In a fold, members added concurrently are not among the recipients: the key then
      // differs from the membership, and the next post rotates again (needsRotation).
      if (strict) checkSealedForAll(sealed, members.keys())
      keyHolders.set(toHex(keyId), new Set(sealed.map((s) => toHex(s.account))))
      return { members, currentKeyId: keyId, keyHolders }
    }
  }
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
    return entry.kind === 'add' ? handedOver(state, entry) : state
  }
}

function handedOver(state: RoomState, add: RoomEntry): RoomState {
  const b = decodeAddBody(add.body) // an entry in a fold decoded when it was checked
  const id = toHex(b.keyId)
  if (state.keyHolders.get(id)?.has(toHex(b.member))) return state
  const keyHolders = new Map(state.keyHolders)
  keyHolders.set(id, new Set(keyHolders.get(id)).add(toHex(b.member)))
  return { ...state, keyHolders }
}

/**
 * True when the current key's holders are not exactly the members: someone who left or was
 * removed still holds it, or someone added concurrently with a rotation lacks it.
 */
export function needsRotation(state: RoomState): boolean {
  if (state.currentKeyId === undefined) return false
  const holders = state.keyHolders.get(toHex(state.currentKeyId)) ?? new Set<string>()
  if (holders.size !== state.members.size) return true
  for (const h of holders) if (!state.members.has(h)) return true
  return false
}
