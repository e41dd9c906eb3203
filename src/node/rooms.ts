/**
 * The rooms a node holds: each one's log (src/groups/room-log.ts) and gossip
 * (src/groups/room-gossip.ts), carried in sealed room frames (src/groups/room-transport.ts) as
 * mesh datagrams; invitations and joins; the view the CLI and apps get.
 *
 * Store (kv): `rooms/self` `sealing-key` → this account's X25519 sealing key (private);
 * `rooms/joining` room hex → CBOR [name, inviter account, token] while a join is unanswered;
 * `rooms/invites` token hex → CBOR [room hex, expires ms]. The logs keep their own namespaces.
 */
import { dhKeyFromPrivate, generateDhKey, systemRandom } from '../e2e/primitives.ts'
import { isStorageFailure, isTalkenError, TalkenError } from '../errors.ts'
import { fromHex, type RoomEntry, toHex } from '../groups/entry.ts'
import { MAX_ROOM_MEMBERS, MAX_ROOM_NAME_BYTES } from '../groups/limits.ts'
import { decodeGenesisBody, decodeRemoveBody } from '../groups/room-bodies.ts'
import { RoomGossip } from '../groups/room-gossip.ts'
import { type KeySealer, x25519Sealer } from '../groups/room-keys.ts'
import { parseRoomLink, toRoomLink } from '../groups/room-link.ts'
import { createRoom, type HistoryItem, openRoomLog, type RoomLog } from '../groups/room-log.ts'
import {
  FreshFrames,
  JOIN_TOKEN_LENGTH,
  joinProof,
  openRoomMessage,
  provesToken,
  ROOM_FRAME_TTL_MS,
  type RoomChannel,
  type RoomMessage,
  roomTransportKey,
  sealRoomMessage,
} from '../groups/room-transport.ts'
import { decodeContactCard } from '../identity/contact-card.ts'
import type { Identity } from '../identity/identity.ts'
import { toTextId } from '../identity/text-id.ts'
import { BoundedMap } from '../mesh/bounded-map.ts'
import type { Logger } from '../mesh/router.ts'
import type { Store } from '../store/store.ts'
import { bytesEqual, decodeCbor, encodeCbor, FieldReader, textProblem } from '../wire/cbor.ts'
import { acceptContactCard } from './contacts.ts'

/** How long an invitation link admits joiners. */
export const INVITE_LIFETIME_MS = 7 * 24 * 3600_000
/**
 * How often an unanswered join request is sent again: every 10 s at first, then a tenth of the
 * time since the join began, up to every {@link JOIN_RETRY_MAX_MS}; after {@link INVITE_LIFETIME_MS}
 * no invitation can still be good, and the join is given up (as if left). A refusal is never
 * answered (an inviter owes nobody an answer), so nothing else would end it.
 */
const JOIN_RETRY_MS = 10_000
const JOIN_RETRY_MAX_MS = 10 * 60_000
/** Room frames handled per mesh step; more are dropped (see `receive`). */
const MAX_FRAMES_PER_STEP = 1024
/**
 * A member's whole history goes to one joiner at most this often. Join requests repeat every
 * {@link JOIN_RETRY_MS} and wait in the mesh while there is no route: when one appears, dozens
 * arrive at once, and each would send the whole history again.
 */
const SUPPLY_INTERVAL_MS = 60_000

const SELF_NS = 'rooms/self'
const JOINING_NS = 'rooms/joining'
/** Rooms whose join we gave up before its answer: if the add comes after all, we leave at once. */
const GIVEN_UP_NS = 'rooms/join-given-up'
const INVITES_NS = 'rooms/invites'
/**
 * Heads an invitation record keeps (the history it was made on). With more heads than this
 * (many concurrent branches), a removal known then may be taken for a later one: the old
 * invitation is refused, and a new one works.
 */
const MAX_INVITE_HEADS = 16
const ROOMS_NS = 'groups/rooms'

/** What the node lends its rooms. */
export interface RoomsHost {
  readonly store: Store
  readonly identity: Identity
  readonly log: Logger
  /** Sends a room frame to an account, as a mesh datagram. */
  send(account: Uint8Array, frame: Uint8Array, ttlMs: number): void
  /** Hops to an account by the mesh's routes; undefined when none is known. */
  distance(account: Uint8Array): number | undefined
  /** Runs `fn` as one store transaction (and whatever the node does around its steps). */
  step(fn: () => void): void
  /** {@link step} for an application's action: throws the step's error when it is undone. */
  act<T>(fn: () => T): T
  /** The node's signed contact card, for invitations. */
  card(): Uint8Array
  /** An entry entered a room's history. */
  entry(event: RoomEntryEvent): void
}

/** A room as listed. */
export interface RoomSummary {
  /** The room ID, hex. */
  readonly id: string
  readonly name: string
  /** True once our own add (or the genesis) is in the history held here. */
  readonly member: boolean
  /**
   * `member`; `joining` while our join request waits for the inviter's answer; `left` once we
   * left or were removed (the history stays readable here).
   */
  readonly status: 'member' | 'joining' | 'left'
  readonly members: number
  readonly entries: number
}

/** One entry of a room's history, for display. */
export interface RoomHistoryItem {
  readonly hash: string
  readonly kind: HistoryItem['kind']
  /** Author's text ID, and contact name when known. */
  readonly author: string
  readonly authorName?: string | undefined
  readonly depth: number
  /** The author's claimed time, Unix ms. */
  readonly time: number
  /**
   * A post's text; undefined when no key for it is held here, or when it holds what no text may
   * (control characters a terminal could act on: no Talken sends such a post).
   */
  readonly text?: string | undefined
  /** The member an add or remove is about (text ID), and their contact name when known. */
  readonly subject?: string | undefined
  readonly subjectName?: string | undefined
}

/** A room member, for display. */
export interface RoomMemberInfo {
  readonly id: string
  readonly name?: string | undefined
  readonly role: 'member' | 'admin'
  readonly self: boolean
}

/** An entry that entered a room's history here (written or received). */
export interface RoomEntryEvent {
  readonly room: string
  readonly item: RoomHistoryItem
}

interface Room {
  readonly id: string
  readonly log: RoomLog
  readonly gossip: RoomGossip
  /** The room's ID and transport key, as frames are sealed and opened with them. */
  readonly channel: RoomChannel
  /** Name from the invitation, set while our join is unanswered (also marks that state). */
  invitedName?: string
}

/** All rooms of one node. */
export class NodeRooms {
  readonly #host: RoomsHost
  readonly #rooms = new Map<string, Room>()
  /** When each joiner (room and account, hex) was last handed a room's whole history. */
  readonly #supplied = new BoundedMap<string, number>(256)
  readonly #sealer: KeySealer
  readonly #me: Uint8Array
  /** Frames taken lately: each is taken once, for us alone, while fresh. */
  readonly #fresh = new FreshFrames()
  /** Signs room frames with our account key. */
  readonly #sign: (bytes: Uint8Array) => Uint8Array
  readonly #inbox: Uint8Array[] = []
  #droppedFrames = 0
  #timer: NodeJS.Timeout | undefined
  #timerAt = Number.POSITIVE_INFINITY
  #stopped = false
  #nextJoinRetry = 0
  /** When these rooms were opened (Unix ms). */
  readonly #openedAt = Date.now()
  /** When a join request last went out, by room (memory only: a restart sends one at once). */
  readonly #joinSent = new Map<string, number>()

  constructor(host: RoomsHost) {
    this.#host = host
    this.#me = host.identity.account.publicKey
    this.#sign = (bytes) => host.identity.account.sign(bytes)
    let secret = host.store.kvGet(SELF_NS, 'sealing-key')
    if (secret === undefined) {
      secret = generateDhKey().privateKey
      host.store.kvSet(SELF_NS, 'sealing-key', secret)
    }
    this.#sealer = x25519Sealer(dhKeyFromPrivate(secret))
    const ids = new Set([
      ...host.store.kvList(ROOMS_NS).map(([id]) => id),
      ...host.store.kvList(JOINING_NS).map(([id]) => id),
      ...host.store.kvList(GIVEN_UP_NS).map(([id]) => id),
    ])
    for (const id of ids) {
      try {
        const room = this.#open(fromHex(id))
        const joining = this.#joining(id)
        if (joining) room.invitedName = joining.name
      } catch (err) {
        host.log('error', 'could not open a room', { room: id, error: (err as Error).message })
      }
    }
  }

  /** Stops timers; the node is stopping. */
  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }

  /**
   * Creates a room with this account as its first member and admin. Throws `invalid_argument` for
   * an empty name, one over {@link MAX_ROOM_NAME_BYTES} bytes or with control characters, and
   * `conflict` when a room held here has that name already (names are how people pick rooms).
   */
  create(name: string): RoomSummary {
    const trimmed = name.trim()
    const problem = trimmed.length === 0 ? 'is empty' : textProblem(trimmed, false)
    if (problem !== undefined || Buffer.byteLength(trimmed) > MAX_ROOM_NAME_BYTES) {
      throw new TalkenError(
        'invalid_argument',
        `a room name is 1 to ${MAX_ROOM_NAME_BYTES} bytes of text${problem === undefined ? '' : `: this one ${problem}`}`,
      )
    }
    const lower = trimmed.toLowerCase()
    if (this.list().some((r) => r.name.toLowerCase() === lower)) {
      throw new TalkenError('conflict', `you have a room named ${trimmed} already: choose another name`, {
        details: { name: trimmed },
      })
    }
    const room = this.#host.act(() => this.#adopt(createRoom(this.#logOptions(), trimmed, Date.now())))
    return this.#summary(room)
  }

  /** The rooms held here. */
  list(): RoomSummary[] {
    return (
      [...this.#rooms.values()]
        // A join given up before anything of the room came: nothing to show.
        .filter((r) => r.log.size.entries > 0 || this.#joining(r.id) !== undefined)
        .map((r) => this.#summary(r))
        .sort((a, b) => a.name.localeCompare(b.name))
    )
  }

  /** A link (and its token) that lets someone join `query`; only admins can answer joins. */
  invite(query: string, now = Date.now()): { room: string; link: string; expiresAt: number } {
    const room = this.#find(query)
    const me = room.log.members().find((m) => bytesEqual(m.account, this.#me))
    if (me === undefined || me.role !== 'admin') {
      throw new TalkenError('not_permitted', 'only an admin of the room can invite', {
        details: { reason: 'not_admin' },
      })
    }
    // Invitations past their time are forgotten as new ones are made (a join request tries each).
    for (const [key, record] of this.#host.store.kvList(INVITES_NS)) {
      const old = decodeInvite(record)
      if (old === undefined || old.expiresAt < now) this.#host.store.kvDelete(INVITES_NS, key)
    }
    const token = systemRandom(JOIN_TOKEN_LENGTH)
    const expiresAt = now + INVITE_LIFETIME_MS
    // The history as it stands, by its heads: a removal outside their past came after the invitation.
    const heads = room.log.heads().slice(0, MAX_INVITE_HEADS)
    this.#host.store.kvSet(INVITES_NS, toHex(token), encodeCbor([room.id, expiresAt, heads]))
    const link = toRoomLink({
      roomId: room.log.roomId,
      name: this.#name(room),
      token,
      inviter: decodeContactCard(this.#host.card()),
    })
    return { room: room.id, link, expiresAt }
  }

  /**
   * Joins a room from an invitation link: adds the inviter as a contact, and asks it (again and
   * again, also after restarts, until the add arrives, for as long as an invitation lasts: see
   * {@link JOIN_RETRY_MS}) to add us.
   */
  join(linkText: string): RoomSummary {
    const invite = parseRoomLink(linkText)
    if (bytesEqual(invite.inviter.accountKey, this.#me)) {
      throw new TalkenError('invalid_argument', 'this is an invitation of your own')
    }
    const id = toHex(invite.roomId)
    const held = this.#rooms.get(id)
    if (held && this.#isMember(held)) return this.#summary(held)
    const room = this.#host.act(() => {
      acceptContactCard(this.#host.store, this.#me, invite.inviter, { now: Date.now() })
      // Asked again: a join given up before is wanted after all.
      this.#host.store.kvDelete(GIVEN_UP_NS, id)
      this.#host.store.kvSet(
        JOINING_NS,
        id,
        encodeCbor([invite.name, invite.inviter.accountKey, invite.token, Date.now()]),
      )
      const joined = held ?? this.#open(invite.roomId)
      const before = joined.invitedName
      joined.invitedName = invite.name
      this.#host.store.onRollback(() => {
        joined.invitedName = before
      })
      this.#sendJoin(joined)
      return joined
    })
    this.#schedule(Date.now() + JOIN_RETRY_MS)
    return this.#summary(room)
  }

  /** Posts text to a room. */
  post(query: string, text: string): { room: string; hash: string } {
    const room = this.#find(query)
    this.#requireMember(room)
    const problem = textProblem(text, true)
    if (problem !== undefined) {
      throw new TalkenError('invalid_argument', `a post ${problem} (only newlines and tabs may be in it)`)
    }
    const hash = this.#host.act(() =>
      toHex(this.#publish(room, () => room.log.post(new TextEncoder().encode(text), Date.now())).hash),
    )
    return { room: room.id, hash }
  }

  /**
   * Writes an entry with `write` and publishes it; a key rotation it needed was written just
   * before it, and is its parent: pushed and announced like it, rather than left for members to
   * ask for.
   */
  #publish(room: Room, write: () => RoomEntry): RoomEntry {
    const heads = new Set(room.log.heads().map(toHex))
    const entry = write()
    for (const parent of entry.parents) {
      const written = heads.has(toHex(parent)) ? undefined : room.log.entry(parent)
      if (written === undefined) continue
      room.gossip.published(written)
      this.#announce(room, written.hash)
    }
    room.gossip.published(entry)
    this.#announce(room, entry.hash)
    return entry
  }

  /** The room's history in causal order. */
  history(query: string): RoomHistoryItem[] {
    const room = this.#find(query)
    return room.log.history().map((h) => this.#item(h))
  }

  /** The room's members. */
  members(query: string): RoomMemberInfo[] {
    const room = this.#find(query)
    return room.log.members().map((m) => ({
      id: toTextId(m.account),
      name: this.#contactName(m.account),
      role: m.role,
      self: bytesEqual(m.account, this.#me),
    }))
  }

  /**
   * Leaves a room: writes a leave entry; the rest rotate the key on their next post. A join not
   * answered yet is given up instead: no more requests, the room no longer listed while it holds
   * nothing, and if the inviter's add comes after all, a leave entry at once.
   */
  leave(query: string): RoomSummary {
    const room = this.#find(query)
    if (!this.#isMember(room) && this.#joining(room.id) !== undefined) {
      this.#host.act(() => this.#giveUpJoin(room))
      return this.#summary(room)
    }
    this.#requireMember(room)
    this.#host.act(() => {
      const entry = room.log.leave(Date.now())
      room.gossip.published(entry)
      this.#announce(room, entry.hash)
      this.#host.store.kvDelete(JOINING_NS, room.id)
    })
    return this.#summary(room)
  }

  /**
   * No more join requests for `room`. The inviter may have taken one already: its add may still
   * come, and then we leave at once (#handle) rather than stay a member who reads nothing.
   */
  #giveUpJoin(room: Room): void {
    this.#host.store.kvDelete(JOINING_NS, room.id)
    this.#host.store.kvSet(GIVEN_UP_NS, room.id, new Uint8Array(0))
    const invitedName = room.invitedName
    room.invitedName = undefined
    this.#host.store.onRollback(() => {
      room.invitedName = invitedName
    })
  }

  /** Removes a member (admins only); the room key rotates to those who stay. */
  remove(query: string, memberId: string): RoomSummary {
    const room = this.#find(query)
    const member = room.log
      .members()
      .find((m) => toTextId(m.account) === memberId || this.#contactName(m.account) === memberId)
    if (member === undefined) throw new TalkenError('not_found', `no member ${memberId} in this room`)
    this.#host.act(() => {
      const entry = room.log.removeMember(member.account, Date.now())
      room.gossip.published(entry)
      this.#announce(room, entry.hash)
    })
    return this.#summary(room)
  }

  /** Asks every reachable member for what we lack ("load history from peers"); returns how many were asked. */
  sync(query: string): number {
    const room = this.#find(query)
    let asked = 0
    this.#host.act(() => {
      for (const m of room.log.size.entries === 0 ? [] : room.log.members()) {
        if (bytesEqual(m.account, this.#me) || this.#host.distance(m.account) === undefined) continue
        room.gossip.syncWith(toHex(m.account))
        asked++
      }
      const joining = this.#joining(room.id)
      if (joining) {
        this.#sendJoin(room)
        asked++
      }
    })
    return asked
  }

  /** A room frame arrived (inside the node's core step): kept, handled by {@link drain}. */
  receive(frame: Uint8Array): void {
    // Room frames are datagrams, best-effort as the mesh carries them: beyond the bound of one
    // step they are dropped (counted, and logged at the step's end); anti-entropy repairs.
    if (this.#inbox.length < MAX_FRAMES_PER_STEP) this.#inbox.push(frame)
    else this.#droppedFrames++
  }

  /** Handles the frames received during a core step, after the core has returned. */
  drain(): void {
    if (this.#droppedFrames > 0) {
      this.#host.log('warn', 'dropped room frames: more came in one step than are handled', {
        dropped: this.#droppedFrames,
        handled: MAX_FRAMES_PER_STEP,
      })
      this.#droppedFrames = 0
    }
    while (this.#inbox.length > 0) {
      const bytes = this.#inbox.shift()!
      // Each frame on its own: one that fails is dropped with its writes, and takes nothing else
      // of the step with it. A full disk is the step's failure, not the frame's: it goes on up.
      try {
        this.#host.store.transaction(() => this.#handle(bytes))
      } catch (err) {
        if (isStorageFailure(err)) throw err
        this.#host.log('warn', 'dropped a room frame that could not be handled', {
          error: err instanceof Error ? err.message : String(err),
        })
      }
    }
  }

  // ------------------------------------------------------------------------------------------

  #handle(bytes: Uint8Array): void {
    const rooms = [...this.#rooms.values()]
    let opened: { index: number; message: RoomMessage; signature: Uint8Array }
    try {
      opened = openRoomMessage(
        rooms.map((r) => r.channel),
        bytes,
      )
    } catch (err) {
      // A forged sender is worth a warning (someone holding the room ID is up to no good); a
      // frame of a room we do not hold is routine.
      const level = isTalkenError(err, 'bad_signature') ? 'warn' : 'debug'
      this.#host.log(level, 'dropped a room frame', { error: (err as Error).message })
      return
    }
    // Each frame once, for us alone, while fresh: a replayed sync would be answered again.
    const member = rooms[opened.index]!.log.hasMember(toHex(opened.message.sender))
    const refused = this.#fresh.refusal(
      opened.message,
      opened.signature,
      this.#me,
      Date.now(),
      (undo) => this.#host.store.onRollback(undo),
      member,
    )
    if (refused !== undefined) {
      this.#host.log('debug', 'dropped a room frame', { reason: refused })
      return
    }
    const room = rooms[opened.index]!
    const m = opened.message
    if (m.kind === 'gossip') {
      room.gossip.receive(toHex(m.sender), m.frame)
      // Only a room still being joined can have just let us in.
      if (room.invitedName !== undefined && this.#isMember(room)) {
        const invitedName = room.invitedName
        this.#host.store.kvDelete(JOINING_NS, room.id)
        room.invitedName = undefined
        // Undone with the step (the record is back on disk): still joining, as the store says.
        this.#host.store.onRollback(() => {
          room.invitedName = invitedName
        })
        this.#host.log('info', 'joined a room', { room: room.id.slice(0, 16) })
      }
      // Let in after we gave the join up: we leave again, as the user asked.
      if (this.#host.store.kvGet(GIVEN_UP_NS, room.id) !== undefined && this.#isMember(room)) {
        this.#host.store.kvDelete(GIVEN_UP_NS, room.id)
        const entry = room.log.leave(Date.now())
        room.gossip.published(entry)
        this.#announce(room, entry.hash)
        this.#host.log('info', 'left a room whose join was given up, once its answer came', {
          room: room.id.slice(0, 16),
        })
      }
      return
    }
    this.#onJoin(room, m)
  }

  #onJoin(room: Room, m: Extract<RoomMessage, { kind: 'join' }>): void {
    const sender = toHex(m.sender)
    const invite = this.#invitationProved(room, m)
    if (invite === undefined) {
      this.#host.log('info', 'refused a join request with an unknown or expired invitation', {
        room: room.id.slice(0, 16),
      })
      return
    }
    const members = room.log.members()
    if (!members.some((x) => bytesEqual(x.account, m.sender))) {
      const me = members.find((x) => bytesEqual(x.account, this.#me))
      if (me?.role !== 'admin') return
      // An invitation handed out before someone was removed does not let them back in (a new
      // one, made after, does: that is an admin asking them back). "Before" is causal: the
      // removal is outside the history the invitation was made on. Entries' times are their
      // authors' clocks, and a clock behind ours would have let them back in.
      if (removedAfter(room.log, m.sender, invite.invite.heads)) {
        this.#host.log(
          'info',
          'refused a join request from a member removed (or gone) after that invitation',
          {
            room: room.id.slice(0, 16),
          },
        )
        return
      }
      // Nor does it let anyone in once someone was removed after it: the member removed may hold
      // it (they joined with it, or saw it), and would come back under a new account.
      if (anyoneRemovedAfter(room.log, invite.invite.heads)) {
        this.#host.log('info', 'refused a join request: someone was removed after that invitation', {
          room: room.id.slice(0, 16),
        })
        return
      }
      if (members.length >= MAX_ROOM_MEMBERS) {
        this.#host.log('info', 'refused a join request: the room is full', { room: room.id.slice(0, 16) })
        return
      }
      this.#publish(room, () =>
        room.log.addMember({ account: m.sender, sealingKey: m.sealingKey }, Date.now()),
      )
      this.#host.log('info', 'added a member who joined by invitation', { room: room.id.slice(0, 16) })
    }
    const key = `${room.id}:${sender}`
    const now = Date.now()
    const last = this.#supplied.get(key)
    if (last !== undefined && now - last < SUPPLY_INTERVAL_MS && now >= last) return
    // Undone with the step (the frames it queued are not sent): the next request is answered.
    this.#host.store.onRollback(this.#supplied.setUndoably(key, now))
    room.gossip.supplyAll(sender)
  }

  /**
   * The invitation to `room`, unexpired, whose token the join request `m` proves it holds (the
   * request carries a proof, not the token: room-transport.ts); undefined if none. Invitations are
   * few: each is tried.
   */
  #invitationProved(
    room: Room,
    m: Extract<RoomMessage, { kind: 'join' }>,
  ): { token: string; invite: NonNullable<ReturnType<typeof decodeInvite>> } | undefined {
    const now = Date.now()
    for (const [token, record] of this.#host.store.kvList(INVITES_NS)) {
      const invite = decodeInvite(record)
      if (invite === undefined || invite.room !== room.id || invite.expiresAt < now) continue
      if (provesToken(fromHex(token), room.log.roomId, m)) return { token, invite }
    }
    return undefined
  }

  #sendJoin(room: Room): void {
    const joining = this.#joining(room.id)
    if (joining === undefined) return
    this.#joinSent.set(room.id, Date.now())
    const request = {
      sender: this.#me,
      recipient: joining.inviter,
      sentAt: Date.now(),
      sealingKey: this.#sealer.sealingKey,
    }
    const proof = joinProof(joining.token, { roomId: room.log.roomId, ...request })
    const frame = sealRoomMessage(room.channel, { kind: 'join', ...request, proof }, this.#sign)
    this.#host.send(joining.inviter, frame, ROOM_FRAME_TTL_MS)
  }

  #open(roomId: Uint8Array): Room {
    return this.#adopt(openRoomLog(this.#logOptions(), roomId))
  }

  #adopt(log: RoomLog): Room {
    const id = toHex(log.roomId)
    const channel: RoomChannel = { id: log.roomId, key: roomTransportKey(log.roomId) }
    const room: Room = {
      id,
      log,
      channel,
      gossip: new RoomGossip(log, this.#me, {
        now: () => Date.now(),
        random: () => Math.random(),
        send: (member, frame) => {
          const recipient = fromHex(member)
          const message = { kind: 'gossip', sender: this.#me, recipient, sentAt: Date.now(), frame } as const
          this.#host.send(recipient, sealRoomMessage(channel, message, this.#sign), ROOM_FRAME_TTL_MS)
        },
        distance: (member) => this.#host.distance(fromHex(member)),
        wakeAt: (t) => this.#schedule(t),
        accepted: (hash, from) => {
          if (from !== undefined) this.#announce(room, hash)
        },
        rejected: (from, err) =>
          this.#host.log('warn', 'refused a room entry', {
            room: id.slice(0, 16),
            from: from.slice(0, 16),
            error: err.message,
          }),
        log: this.#host.log,
      }),
    }
    this.#rooms.set(id, room)
    // Opened in writes that are undone: the room is not held here after all.
    this.#host.store.onRollback(() => {
      if (this.#rooms.get(id) === room) this.#rooms.delete(id)
    })
    return room
  }

  #announce(room: Room, hash: Uint8Array): void {
    const item = room.log.historyItem(hash)
    if (item) this.#host.entry({ room: room.id, item: this.#item(item) })
  }

  #schedule(time: number): void {
    if (this.#stopped || time >= this.#timerAt) return
    clearTimeout(this.#timer)
    this.#timerAt = time
    this.#timer = setTimeout(() => this.#tick(), Math.max(0, Math.min(time - Date.now(), 2 ** 31 - 1)))
    this.#timer.unref?.()
  }

  #tick(): void {
    this.#timerAt = Number.POSITIVE_INFINITY
    this.#timer = undefined
    if (this.#stopped) return
    const now = Date.now()
    this.#host.step(() => {
      for (const room of this.#rooms.values()) room.gossip.timer()
      if (now >= this.#nextJoinRetry) {
        let next = Number.POSITIVE_INFINITY
        for (const room of this.#rooms.values()) {
          const joining = this.#isMember(room) ? undefined : this.#joining(room.id)
          if (joining === undefined) continue
          const elapsed = now - joining.since
          if (elapsed >= INVITE_LIFETIME_MS) {
            this.#giveUpJoin(room)
            this.#host.log('info', 'gave up joining a room: the invitation was never answered', {
              room: room.id.slice(0, 16),
            })
            continue
          }
          const due = joining.lastSent + joinRetryInterval(elapsed)
          if (now >= due) {
            this.#sendJoin(room)
            next = Math.min(next, now + joinRetryInterval(elapsed))
          } else next = Math.min(next, due)
        }
        this.#nextJoinRetry = Math.min(next, now + JOIN_RETRY_MAX_MS)
      }
    })
    if (this.#host.store.kvList(JOINING_NS).length > 0) this.#schedule(this.#nextJoinRetry)
  }

  #logOptions() {
    return { store: this.#host.store, identity: this.#host.identity, sealer: this.#sealer }
  }

  /**
   * The join under way for room `id`: the invitation's name, inviter and token, when the join
   * began (for a record kept before that was, when these rooms were opened), and when a request
   * last went out.
   */
  #joining(
    id: string,
  ): { name: string; inviter: Uint8Array; token: Uint8Array; since: number; lastSent: number } | undefined {
    const bytes = this.#host.store.kvGet(JOINING_NS, id)
    if (bytes === undefined) return undefined
    const r = new FieldReader(decodeCbor(bytes, 4096, 'joining record'), 'joining record', 3, 4)
    const name = r.text('name', 64)
    const inviter = r.bytes('inviter', 32)
    const token = r.bytes('token', JOIN_TOKEN_LENGTH)
    const since = r.remaining > 0 ? r.uint('since', Number.MAX_SAFE_INTEGER) : this.#openedAt
    return { name, inviter, token, since, lastSent: this.#joinSent.get(id) ?? 0 }
  }

  #find(query: string): Room {
    const q = query.trim().toLowerCase()
    const exact = this.#rooms.get(q)
    if (exact) return exact
    const matches = [...this.#rooms.values()].filter(
      (r) => (q.length >= 4 && r.id.startsWith(q)) || this.#name(r).toLowerCase() === q,
    )
    if (matches.length === 1) return matches[0]!
    if (matches.length > 1) {
      throw new TalkenError(
        'ambiguous_contact',
        `"${query}" names ${matches.length} rooms; use more of the room ID`,
      )
    }
    throw new TalkenError('not_found', `no room "${query}" here (talken rooms lists them)`)
  }

  #isMember(room: Room): boolean {
    return room.log.size.entries > 0 && room.log.hasMember(toHex(this.#me))
  }

  #requireMember(room: Room): void {
    if (this.#isMember(room)) return
    if (this.#joining(room.id)) {
      throw new TalkenError(
        'not_permitted',
        'the join is not answered yet: the inviter has to be reachable',
        {
          details: { reason: 'joining' },
        },
      )
    }
    throw new TalkenError('not_permitted', 'you are not a member of this room', {
      details: { reason: 'not_member' },
    })
  }

  #name(room: Room): string {
    const genesis = room.log.entry(room.log.roomId)
    if (genesis) return decodeGenesisBody(genesis.body).name
    return room.invitedName ?? room.id.slice(0, 12)
  }

  #summary(room: Room): RoomSummary {
    const size = room.log.size
    const member = this.#isMember(room)
    return {
      id: room.id,
      name: this.#name(room),
      member,
      status: member ? 'member' : this.#joining(room.id) !== undefined ? 'joining' : 'left',
      members: size.entries === 0 ? 0 : room.log.members().length,
      entries: size.entries,
    }
  }

  #contactName(account: Uint8Array): string | undefined {
    if (bytesEqual(account, this.#me)) return 'you'
    const id = toTextId(account)
    return this.#host.store.getContact(id)?.name
  }

  #item(h: HistoryItem): RoomHistoryItem {
    return {
      hash: toHex(h.hash),
      kind: h.kind,
      author: toTextId(h.author),
      authorName: this.#contactName(h.author),
      depth: h.depth,
      time: h.time,
      text: h.content === undefined ? undefined : postText(h.content),
      subject: h.subject === undefined ? undefined : toTextId(h.subject),
      subjectName: h.subject === undefined ? undefined : this.#contactName(h.subject),
    }
  }
}

/** A post's text, if it is fit to show (see `textProblem`). */
function postText(content: Uint8Array): string | undefined {
  const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(content)
  return textProblem(text, true) === undefined ? text : undefined
}

function decodeInvite(
  bytes: Uint8Array,
): { room: string; expiresAt: number; heads: Uint8Array[] } | undefined {
  try {
    const limit = 256 + MAX_INVITE_HEADS * 40
    const r = new FieldReader(decodeCbor(bytes, limit, 'invite record'), 'invite record', 2, 3)
    const room = r.text('room', 64)
    const expiresAt = r.uint('expiresAt')
    // Invitations made before their heads were kept have none: every removal is after them.
    const heads =
      r.remaining === 0
        ? []
        : r.array('heads', MAX_INVITE_HEADS, (v) => new FieldReader([v], 'invite head', 1).bytes('head', 32))
    return { room, expiresAt, heads }
  } catch {
    return undefined
  }
}

/**
 * Whether `account` was removed from the room, or left it, by an entry outside the past of
 * `heads`. A leave counts too: join requests carry no time, so anyone who saw one could replay it
 * after its sender left and have them taken back in; someone who left and wants back asks for a
 * new link.
 */
function removedAfter(log: RoomLog, account: Uint8Array, heads: readonly Uint8Array[]): boolean {
  return log
    .entriesOutside(heads)
    .some(
      (e) =>
        (e.kind === 'remove' && bytesEqual(decodeRemoveBody(e.body).member, account)) ||
        (e.kind === 'leave' && bytesEqual(e.author, account)),
    )
}

/** Whether the log holds a removal of anyone outside the history `heads` name (one made after them). */
function anyoneRemovedAfter(log: RoomLog, heads: readonly Uint8Array[]): boolean {
  return log.entriesOutside(heads).some((e) => e.kind === 'remove')
}

/** How long after the last join request the next goes, `elapsed` since the join began (see {@link JOIN_RETRY_MS}). */
function joinRetryInterval(elapsed: number): number {
  return Math.min(JOIN_RETRY_MAX_MS, Math.max(JOIN_RETRY_MS, elapsed / 10))
}
