/**
 * A room's history: a DAG of verified entries, persisted in the Store, sans-IO.
 *
 * Entries arrive from anywhere (`receive`) or are written here (`post`, `addMember`, …); either
 * way each one is decoded, its signatures verified, its parents found, its depth checked and
 * its author checked against the membership its own causal past defines. Entries whose parents
 * are missing wait in a bounded pending set and are taken in when the parents arrive. Sync is a
 * heads exchange: `entriesSince(theirHeads)` is everything the other side lacks, in causal order.
 *
 * Store namespaces (docs/groups.md §Storage): `groups/rooms` (room ID hex → empty),
 * `groups/entries/<room hex>` (entry hash hex → entry bytes), `groups/keys/<room hex>`
 * (key ID hex → room key). Post bodies are stored as they travel: encrypted.
 */

import { AEAD_NONCE_LENGTH, type RandomSource, sha256, systemRandom } from '../e2e/primitives.ts'
import { isStorageFailure, TalkenError } from '../errors.ts'
import type { Identity } from '../identity/identity.ts'
import type { Store } from '../store/store.ts'
import { bytesEqual } from '../wire/cbor.ts'
import { byCausalOrder, ControlHistory } from './control-history.ts'
import { DeepestLine } from './deepest-line.ts'
import {
  compareBytes,
  decodeEntry,
  type EntryKind,
  fromHex,
  genesisRoomId,
  type RoomEntry,
  signEntry,
  toHex,
} from './entry.ts'
import {
  MAX_ENTRY_BYTES,
  MAX_PARENTS,
  MAX_PENDING_ENTRIES,
  MAX_POST_BYTES,
  ROOM_KEY_LENGTH,
} from './limits.ts'
import { applyEntry, type Member, needsRotation, type RoomState } from './membership.ts'
import {
  decodeAddBody,
  decodeGenesisBody,
  decodeRemoveBody,
  encodeAddBody,
  encodeGenesisBody,
  encodePostBody,
  encodeRemoveBody,
  encodeRotateBody,
  type Role,
  sealedKeyFor,
} from './room-bodies.ts'
import { type KeySealer, openPostEntry, openSealedKey, roomKeyId, sealPost } from './room-keys.ts'

/** What {@link RoomLog.receive} did with an entry. */
export type ReceiveResult =
  | {
      readonly status: 'accepted'
      readonly hash: Uint8Array
      /** Pending entries this one let in, in the order they were taken. */
      readonly released: readonly Uint8Array[]
      /** Pending entries that turned out invalid once their parents arrived; dropped. */
      readonly dropped: readonly Uint8Array[]
    }
  | { readonly status: 'duplicate'; readonly hash: Uint8Array }
  | { readonly status: 'pending'; readonly hash: Uint8Array; readonly missing: readonly Uint8Array[] }

/** One entry as the app shows it. */
export interface HistoryItem {
  readonly hash: Uint8Array
  readonly kind: EntryKind
  readonly author: Uint8Array
  readonly depth: number
  /** The author's claimed time, Unix milliseconds. */
  readonly time: number
  /** A post's plaintext; undefined when this member holds no key for it. */
  readonly content?: Uint8Array | undefined
  /** The account an add or remove is about. */
  readonly subject?: Uint8Array | undefined
}

/** What a room log needs from its surroundings. */
export interface RoomLogOptions {
  readonly store: Store
  /** The local account and device, which sign what this log writes. */
  readonly identity: Identity
  /** Hands room keys to members and opens those handed to us. */
  readonly sealer: KeySealer
  /** Randomness for room keys, key IDs and nonces (default: the system CSPRNG). */
  readonly random?: RandomSource
}

const ROOMS = 'groups/rooms'
const entriesNs = (room: string) => `groups/entries/${room}`
const keysNs = (room: string) => `groups/keys/${room}`

/** No room key is held here to write with (`not_found`, reason `no_room_key`). */
const noRoomKey = (message: string) =>
  new TalkenError('not_found', `no current room key held here: ${message}`, {
    details: { reason: 'no_room_key' },
  })

/** Deepest first, ties by hash: the order in which heads are linked and named. */
const deepestFirst = (a: RoomEntry, b: RoomEntry): number => b.depth - a.depth || compareBytes(a.hash, b.hash)

/**
 * Creates a room: writes its genesis entry, with a first room key sealed for the creator.
 *
 * @example
 * const room = createRoom({ store, identity: me, sealer: x25519Sealer(generateDhKey()) }, 'Climbing', Date.now())
 * room.post(new TextEncoder().encode('hello'), Date.now())
 */
export function createRoom(options: RoomLogOptions, name: string, now: number): RoomLog {
  const random = options.random ?? systemRandom
  const roomKey = random(ROOM_KEY_LENGTH)
  const keyId = roomKeyId(roomKey)
  const self = { account: options.identity.account.publicKey, sealingKey: options.sealer.sealingKey }
  const body = encodeGenesisBody({
    name,
    sealingKey: options.sealer.sealingKey,
    keyId,
    sealedKey: options.sealer.seal(self, keyId, roomKey),
  })
  const genesis = signEntry(options.identity, {
    roomId: genesisRoomId(),
    parents: [],
    depth: 0,
    kind: 'genesis',
    body,
    time: now,
  })
  const log = new RoomLog(options, genesis.hash)
  log.receive(genesis.bytes)
  return log
}

/** Opens the log of a room by its ID, loading what the store holds (nothing, for a new joiner). */
export function openRoomLog(options: RoomLogOptions, roomId: Uint8Array): RoomLog {
  return new RoomLog(options, roomId)
}

/** The history of one room as this member holds it. */
export class RoomLog {
  /** The room's ID: the hash of its genesis entry. */
  readonly roomId: Uint8Array
  readonly #store: Store
  readonly #identity: Identity
  readonly #sealer: KeySealer
  readonly #random: RandomSource
  readonly #room: string
  readonly #entries = new Map<string, RoomEntry>()
  readonly #heads = new Set<string>()
  /** The control entries' graph, and the membership state at any entries. */
  readonly #control = new ControlHistory()
  readonly #pending = new Map<string, RoomEntry>()
  readonly #keys = new Map<string, Uint8Array>()
  /** The line of deepest parents below each entry, for {@link recent}. */
  readonly #line = new DeepestLine()

  /** Use {@link createRoom} or {@link openRoomLog}. */
  constructor(options: RoomLogOptions, roomId: Uint8Array) {
    if (roomId.length !== 32) throw new TalkenError('invalid_argument', 'a room ID is 32 bytes')
    this.roomId = new Uint8Array(roomId)
    this.#store = options.store
    this.#identity = options.identity
    this.#sealer = options.sealer
    this.#random = options.random ?? systemRandom
    this.#room = toHex(roomId)
    for (const [id, key] of this.#store.kvList(keysNs(this.#room))) this.#keys.set(id, key)
    const stored = this.#store.kvList(entriesNs(this.#room)).map(([, bytes]) => decodeEntry(bytes))
    for (const entry of stored.sort(byCausalOrder)) this.#accept(entry, false)
  }

  /** The hashes of the entries nothing else links to yet, ascending. */
  heads(): Uint8Array[] {
    return [...this.#heads].sort().map(fromHex)
  }

  /** True when the entry is in the verified history (pending entries are not). */
  has(hash: Uint8Array): boolean {
    return this.#entries.has(toHex(hash))
  }

  /**
   * What a sync or graft names as held, at most `max` hashes: the heads (the deepest, when there
   * are too many), then entries on the line of deepest parents below the deepest head, every one
   * near the top and then at distances doubling down to the genesis. A peer that lacks our newest
   * entries (we wrote them while apart, or they are on their way) still finds one it holds close
   * to what we have in common, so it sends little more than what we lack, not the whole history.
   * (Bitcoin's block locator, for the same reason.)
   */
  recent(max: number): Uint8Array[] {
    const heads = this.#headEntries().sort(deepestFirst)
    const top = heads[0]
    if (top === undefined || max <= 0) return []
    const far: number[] = []
    for (let d = 1; d <= top.depth; d *= 2) far.push(d)
    const named = heads.slice(0, Math.max(1, max - far.length))
    const room = max - named.length
    const distances = new Set(far.slice(0, room))
    for (let d = 1; distances.size < room && d <= top.depth; d++) distances.add(d)
    const line = [...distances].sort((a, b) => a - b).map((d) => this.#line.ancestor(top, top.depth - d))
    return [...named, ...line].map((e) => e.hash)
  }

  /** The verified entry with this hash, if held. */
  entry(hash: Uint8Array): RoomEntry | undefined {
    return this.#entries.get(toHex(hash))
  }

  /** How many entries the verified history holds, and how many wait for parents. */
  get size(): { entries: number; pending: number } {
    return { entries: this.#entries.size, pending: this.#pending.size }
  }

  /** Of a peer's heads, those we lack: what to ask it for. */
  missing(theirHeads: readonly Uint8Array[]): Uint8Array[] {
    return theirHeads.filter((h) => !this.#entries.has(toHex(h)))
  }

  /**
   * What a peer whose heads are `theirHeads` lacks: every entry we hold outside the causal past
   * of those heads (the ones we know), in causal order, encoded. Heads we do not know are
   * ignored; they are ours to fetch ({@link missing}).
   */
  entriesSince(theirHeads: readonly Uint8Array[]): Uint8Array[] {
    return this.entriesOutside(theirHeads).map((e) => e.bytes)
  }

  /**
   * Every entry held here outside the causal past of `heads` (those of them held here), in causal
   * order: what was written, or came to be known, after a moment whose heads those were.
   */
  entriesOutside(heads: readonly Uint8Array[]): RoomEntry[] {
    const known = new Set<string>()
    const stack = heads.map(toHex).filter((h) => this.#entries.has(h))
    while (stack.length > 0) {
      const h = stack.pop()!
      if (known.has(h)) continue
      known.add(h)
      for (const p of this.#entries.get(h)!.parents) stack.push(toHex(p))
    }
    return this.entries().filter((e) => !known.has(toHex(e.hash)))
  }

  /** Every verified entry in causal order: by depth, ties broken by hash. */
  entries(): RoomEntry[] {
    return [...this.#entries.values()].sort(byCausalOrder)
  }

  /** Whether the account (lower-case hex) is a member now: {@link members} without the copy and sort. */
  hasMember(accountHex: string): boolean {
    return this.#state().members.has(accountHex)
  }

  /** The members as the whole history known here defines them, by account key. */
  members(): Member[] {
    return [...this.#state().members.values()].sort((a, b) => compareBytes(a.account, b.account))
  }

  /** The history for display, in causal order, with posts decrypted where a key is held. */
  history(): HistoryItem[] {
    return this.entries().map((e) => this.#item(e))
  }

  /** One entry of {@link history}, by hash; undefined when not held. */
  historyItem(hash: Uint8Array): HistoryItem | undefined {
    const e = this.#entries.get(toHex(hash))
    return e && this.#item(e)
  }

  #item(e: RoomEntry): HistoryItem {
    const base = { hash: e.hash, kind: e.kind, author: e.author, depth: e.depth, time: e.time }
    if (e.kind === 'post') return { ...base, content: this.#decrypt(e) }
    if (e.kind === 'add') return { ...base, subject: decodeAddBody(e.body).member }
    if (e.kind === 'remove') return { ...base, subject: decodeRemoveBody(e.body).member }
    return base
  }

  /**
   * Takes in an entry from a peer. Returns `accepted` (with any pending entries it released),
   * `duplicate` (already held: never applied twice) or `pending` (parents missing; held, bounded).
   * With `rejectMissing`, a missing parent throws `not_found` instead of holding the entry; with
   * `rejectDuplicate`, an entry held already (a replay, or a copy from gossip) throws `replayed`
   * instead of returning `duplicate`. Either way the history is unchanged.
   * Throws the decoder's errors, `not_permitted` (reason `not_member` / `not_admin`: an author
   * the room does not accept) or `malformed` (wrong room, wrong depth, a change that does not
   * apply); nothing is stored then.
   */
  receive(
    input: Uint8Array | RoomEntry,
    options: { rejectMissing?: boolean; rejectDuplicate?: boolean } = {},
  ): ReceiveResult {
    const bytes = input instanceof Uint8Array ? input : input.bytes
    const duplicate = (hash: Uint8Array): ReceiveResult => {
      if (!options.rejectDuplicate) return { status: 'duplicate', hash }
      throw new TalkenError('replayed', 'room entry already held: a replay or a copy', {
        details: { reason: 'duplicate' },
      })
    }
    // A copy of an entry held already is known by its hash, before any signature is checked.
    if (bytes.length <= MAX_ENTRY_BYTES) {
      const hash = sha256(bytes)
      if (this.#entries.has(toHex(hash))) return duplicate(hash)
    }
    const entry = decodeEntry(bytes)
    const id = toHex(entry.hash)
    if (this.#entries.has(id)) return duplicate(entry.hash)
    const missing = entry.parents.filter((p) => !this.#entries.has(toHex(p)))
    if (
      entry.kind === 'genesis' ? !bytesEqual(entry.hash, this.roomId) : !bytesEqual(entry.roomId, this.roomId)
    ) {
      throw new TalkenError('malformed', 'room entry: not of this room', {
        details: { reason: 'wrong_room' },
      })
    }
    if (missing.length > 0) {
      if (options.rejectMissing) {
        throw new TalkenError('not_found', `room entry claims ${missing.length} parent(s) not held here`, {
          details: { reason: 'missing_parent', missing: missing.length },
        })
      }
      if (!this.#pending.has(id) && this.#pending.size >= MAX_PENDING_ENTRIES) {
        this.#pending.delete(this.#pending.keys().next().value!)
      }
      this.#pending.set(id, entry)
      return { status: 'pending', hash: entry.hash, missing }
    }
    this.#accept(entry, true)
    return { status: 'accepted', hash: entry.hash, ...this.#release() }
  }

  /**
   * Posts content (at most 16 KiB), encrypted with the current room key; rotates it first if
   * needed (the rotation is then the post's parent). Throws `not_found` (reason `no_room_key`),
   * writing nothing, when no key can be held here (see {@link #writingKey}).
   */
  post(content: Uint8Array, now: number): RoomEntry {
    if (content.length > MAX_POST_BYTES) throw new TalkenError('too_large', 'a post holds at most 16 KiB')
    return this.#store.transaction(() => {
      const { tips, keyId, key } = this.#writingKey(now)
      const nonce = this.#random(AEAD_NONCE_LENGTH)
      const ciphertext = sealPost(key, keyId, this.roomId, this.#identity.account.publicKey, content, nonce)
      return this.#append(tips, 'post', encodePostBody({ keyId, nonce, ciphertext }), now)
    })
  }

  /**
   * Adds a member (admins only), handing them the current room key; rotates it first, as
   * {@link post} does, when it is not held here or its holders are not the members (the rotation
   * is then the add's parent). The two are written in one transaction: an add refused undoes the
   * rotation.
   */
  addMember(member: { account: Uint8Array; sealingKey: Uint8Array; role?: Role }, now: number): RoomEntry {
    return this.#store.transaction(() => {
      const { tips, keyId, key } = this.#writingKey(now)
      const sealedKey = this.#sealer.seal(member, keyId, key)
      const body = encodeAddBody({
        member: member.account,
        sealingKey: member.sealingKey,
        role: member.role ?? 'member',
        keyId,
        sealedKey,
      })
      return this.#append(tips, 'add', body, now)
    })
  }

  /**
   * The heads a post or add links to and the current room key at them, after a rotation written
   * first when the key's holders are not the members, or the key is not held here (an add of us
   * concurrent with a rotation left us out of it). Throws `not_found` (reason `no_room_key`) before
   * writing anything when a new key, sealed to the sealing key the room has for us, would not open
   * here either: the account was added with a sealing key that is not this sealer's.
   */
  #writingKey(now: number): { tips: RoomEntry[]; keyId: Uint8Array; key: Uint8Array } {
    let tips = this.#tips()
    let state = this.#stateAt(tips)
    if (needsRotation(state) || !this.#hasKey(state.currentKeyId)) {
      const me = this.#identity.account.publicKey
      const fresh = this.#newKey([...state.members.values()])
      // Not listed: not a member, which the rotation's own check reports (`not_permitted`).
      const mine = fresh.sealed.find((s) => bytesEqual(s.account, me))
      if (mine !== undefined && openSealedKey(this.#sealer, me, fresh.keyId, mine.sealed) === undefined) {
        throw noRoomKey('a new room key sealed for this account does not open with this sealing key')
      }
      this.#append(tips, 'rotate', encodeRotateBody(fresh), now)
      tips = this.#tips()
      state = this.#stateAt(tips)
    }
    const keyId = state.currentKeyId
    const key = keyId && this.#keys.get(toHex(keyId))
    if (!keyId || !key) throw noRoomKey('the current room key is not held here')
    return { tips, keyId, key }
  }

  /** Removes a member (admins only) and rotates the room key to everyone who stays. */
  removeMember(account: Uint8Array, now: number): RoomEntry {
    const tips = this.#tips()
    const stay = [...this.#stateAt(tips).members.values()].filter((m) => !bytesEqual(m.account, account))
    const { keyId, sealed } = this.#newKey(stay)
    return this.#append(tips, 'remove', encodeRemoveBody({ member: account, keyId, sealed }), now)
  }

  /** Replaces the room key with a new one sealed for every current member. */
  rotateKey(now: number): RoomEntry {
    const tips = this.#tips()
    const members = [...this.#stateAt(tips).members.values()]
    return this.#append(tips, 'rotate', encodeRotateBody(this.#newKey(members)), now)
  }

  /** Leaves the room; a remaining member's next post rotates the key. */
  leave(now: number): RoomEntry {
    return this.#append(this.#tips(true), 'leave', new Uint8Array(0), now)
  }

  #newKey(members: readonly Member[]) {
    const key = this.#random(ROOM_KEY_LENGTH)
    const keyId = roomKeyId(key)
    const sealed = [...members]
      .sort((a, b) => compareBytes(a.account, b.account))
      .map((m) => ({ account: m.account, sealed: this.#sealer.seal(m, keyId, key) }))
    return { keyId, sealed }
  }

  /**
   * The heads the next entry links to: all of them, or, when there are more, the 16 deepest (ties
   * by hash) with others swapped in for what those leave out. Writers judge keys and members from
   * exactly these, as validators will. A removal outside them would leave its member among those
   * a post's key or a new key is sealed for; an add outside them would leave its member out of new
   * keys, and the writer's own would get the entry refused. (A member can make many heads deeper
   * than either, writing on a head from before it.) With `forLeaving`, only the writer's own add
   * matters: a leave seals nothing.
   */
  #tips(forLeaving = false): RoomEntry[] {
    if (this.#entries.size === 0) throw new TalkenError('not_found', 'the room history is not held here yet')
    const heads = this.#headEntries().sort(deepestFirst)
    if (heads.length <= MAX_PARENTS) return heads
    // Other members' adds are taken in too, unless the places they take are needed for the rest.
    const tips = this.#swapIn(heads, forLeaving, true) ?? this.#swapIn(heads, forLeaving, false)
    if (tips !== undefined) return tips
    throw new TalkenError(
      'conflict',
      `the room history has more concurrent removals or adds than one entry can join (${MAX_PARENTS})`,
    )
  }

  /**
   * The 16 deepest of `heads` (more than 16, deepest first), each round the shallowest of them not
   * swapped in already giving its place to a head whose past holds, first, a removal of a member
   * they keep whom the whole history does not (not `forLeaving`); then the add of the writer, when
   * they lack it; then (with `others`) the add of any member they lack. Undefined when a removal
   * or the writer's own add still lies outside them.
   */
  #swapIn(heads: readonly RoomEntry[], forLeaving: boolean, others: boolean): RoomEntry[] | undefined {
    const me = toHex(this.#identity.account.publicKey)
    const everyone = this.#state().members
    const states = new Map<RoomEntry, RoomState>()
    const stateOf = (h: RoomEntry): RoomState => {
      const known = states.get(h)
      if (known !== undefined) return known
      const state = this.#stateAt([h])
      states.set(h, state)
      return state
    }
    const tips = heads.slice(0, MAX_PARENTS)
    const misjudged = () => {
      const at = this.#stateAt(tips).members
      const kept = forLeaving ? [] : [...at.values()].filter((m) => !everyone.has(toHex(m.account)))
      const lacking = [...everyone.keys()].filter((a) => !at.has(a) && (a === me || (others && !forLeaving)))
      return { kept, lacking: lacking.sort((a, b) => Number(b === me) - Number(a === me)) }
    }
    const swappedIn = new Set<RoomEntry>()
    for (let round = 0; round < MAX_PARENTS; round++) {
      const { kept, lacking } = misjudged()
      if (kept.length === 0 && lacking.length === 0) return tips
      const rest = heads.filter((h) => !tips.includes(h))
      // Someone kept may have no removal of their own (an add the removal of its author voids):
      // a head taking out any of them will do, and the state is judged again.
      const head =
        rest.find((h) => kept.some((m) => this.#control.takesOut(h, m.account))) ??
        lacking.map((a) => rest.find((h) => stateOf(h).members.has(a))).find((h) => h !== undefined)
      const drop = tips.findLastIndex((t) => !swappedIn.has(t))
      if (head === undefined || drop < 0) break
      tips[drop] = head
      swappedIn.add(head)
    }
    const { kept, lacking } = misjudged()
    return kept.length === 0 && !lacking.includes(me) ? tips : undefined
  }

  #append(heads: readonly RoomEntry[], kind: EntryKind, body: Uint8Array, now: number): RoomEntry {
    const parents = heads.map((e) => e.hash).sort(compareBytes)
    const depth = 1 + Math.max(...heads.map((e) => e.depth))
    const entry = signEntry(this.#identity, { roomId: this.roomId, parents, depth, kind, body, time: now })
    const result = this.receive(entry.bytes)
    if (result.status !== 'accepted') throw new TalkenError('conflict', 'own entry was not accepted')
    return entry
  }

  #headEntries(): RoomEntry[] {
    return [...this.#heads].map((h) => this.#entries.get(h)!)
  }

  #hasKey(keyId: Uint8Array | undefined): boolean {
    return keyId !== undefined && this.#keys.has(toHex(keyId))
  }

  /** The fold of the control entries in the causal past of `tips` (inclusive). */
  #stateAt(tips: readonly RoomEntry[]): RoomState {
    return this.#control.stateAt(tips)
  }

  #state(): RoomState {
    return this.#stateAt(this.#headEntries())
  }

  /** Validates against the entry's own past and records it; parents are known to be present. */
  #accept(entry: RoomEntry, persist: boolean): void {
    const id = toHex(entry.hash)
    const parents = entry.parents.map((p) => this.#entries.get(toHex(p)))
    if (parents.some((p) => p === undefined)) {
      throw new TalkenError('not_found', 'room entry: a parent is not held here')
    }
    const known = parents as RoomEntry[]
    if (entry.kind === 'genesis') {
      if (!bytesEqual(entry.hash, this.roomId)) {
        throw new TalkenError('malformed', 'room entry: not of this room', {
          details: { reason: 'wrong_room' },
        })
      }
    } else if (entry.depth !== 1 + Math.max(...known.map((p) => p.depth))) {
      throw new TalkenError('malformed', 'room entry: depth is not one more than its deepest parent', {
        details: { reason: 'bad_depth' },
      })
    }
    const before = this.#stateAt(known)
    applyEntry(before, entry)
    if (persist) this.#checkSealingKey(entry)
    const key = persist ? this.#openKeyFor(entry) : undefined
    if (persist) {
      this.#store.transaction(() => {
        this.#store.kvSet(ROOMS, this.#room, new Uint8Array(0))
        this.#store.kvSet(entriesNs(this.#room), id, entry.bytes)
        if (key) this.#store.kvSet(keysNs(this.#room), key.id, key.key)
      })
    }
    if (persist) this.#undoOnRollback(entry, key?.id)
    if (key) this.#keys.set(key.id, key.key)
    this.#entries.set(id, entry)
    this.#line.record(entry, known)
    this.#control.record(entry, known, before)
    for (const p of entry.parents) this.#heads.delete(toHex(p))
    this.#heads.add(id)
    this.#pending.delete(id)
  }

  /** Refuses a genesis or add whose sealing key nothing can be sealed to (`malformed`, `bad_sealing_key`). */
  #checkSealingKey(entry: RoomEntry): void {
    if (entry.kind !== 'genesis' && entry.kind !== 'add') return
    const { sealingKey } =
      entry.kind === 'genesis' ? decodeGenesisBody(entry.body) : decodeAddBody(entry.body)
    try {
      this.#sealer.check(sealingKey)
    } catch (cause) {
      throw new TalkenError('malformed', 'room entry: its sealing key cannot be sealed to', {
        cause,
        details: { reason: 'bad_sealing_key' },
      })
    }
  }

  /**
   * The memory {@link #accept} is about to change, put back if the transaction the entry was
   * stored in (the node's step, say) is undone: otherwise the entry would be held here but not on
   * disk, a copy that comes again would be taken for a duplicate, and an entry of ours written on
   * top of it would leave a log that no longer opens after a restart.
   */
  #undoOnRollback(entry: RoomEntry, keyId: string | undefined): void {
    const id = toHex(entry.hash)
    const heads = [...this.#heads]
    const pending = this.#pending.get(id)
    this.#store.onRollback(() => {
      this.#entries.delete(id)
      this.#control.forget(entry)
      if (keyId !== undefined) this.#keys.delete(keyId)
      this.#heads.clear()
      for (const h of heads) this.#heads.add(h)
      if (pending !== undefined) this.#pending.set(id, pending)
    })
  }

  /** The room key an accepted control entry seals for us, opened; undefined when there is none. */
  #openKeyFor(entry: RoomEntry): { id: string; key: Uint8Array } | undefined {
    const me = this.#identity.account.publicKey
    const found = sealedKeyFor(entry, me)
    if (found === undefined || this.#keys.has(toHex(found.keyId))) return undefined
    const key = openSealedKey(this.#sealer, me, found.keyId, found.sealed)
    return key && { id: toHex(found.keyId), key }
  }

  /** Takes in pending entries whose parents are now all held, repeatedly; returns their hashes. */
  #release(): { released: Uint8Array[]; dropped: Uint8Array[] } {
    const released: Uint8Array[] = []
    const dropped: Uint8Array[] = []
    for (let progress = true; progress; ) {
      progress = false
      for (const [id, entry] of this.#pending) {
        if (!entry.parents.every((p) => this.#entries.has(toHex(p)))) continue
        // #accept takes it out of the pending set, and puts it back if its transaction is undone.
        try {
          this.#accept(entry, true)
          released.push(entry.hash)
          progress = true
        } catch (err) {
          // An invalid entry that waited for its parents is dropped like one that did not wait. A
          // full disk is not the entry's fault: the step fails, and the entry comes again.
          if (!(err instanceof TalkenError) || isStorageFailure(err)) throw err
          this.#pending.delete(id)
          dropped.push(entry.hash)
        }
      }
    }
    return { released, dropped }
  }

  #decrypt(entry: RoomEntry): Uint8Array | undefined {
    return openPostEntry(entry, (keyId) => this.#keys.get(toHex(keyId)))
  }
}
