/**
 * Spreads one room's history among its members and reconciles it when they meet: a sans-IO
 * state machine in the spirit of Plumtree (Leitão, Pereira, Rodrigues: "Epidemic Broadcast
 * Trees", 2007) over the member overlay, with heads exchange for anti-entropy.
 *
 * - **Overlay.** Each member keeps a few other members as gossip peers: the nearest ones by the
 *   mesh's hop count, plus one drawn at random so that clusters stay joined. A member that pushes
 *   to us becomes our peer too (links are symmetric).
 * - **Eager push, lazy announce.** A new entry goes in full to eager peers and as a hash (ihave,
 *   batched) to lazy ones. Receiving an entry already held over a push prunes that edge: the
 *   sender becomes lazy and is told so. What remains eager converges to a spanning tree, so each
 *   member receives each entry about once.
 * - **Repair.** A hash announced but not received within a timeout is grafted: asked for from the
 *   announcer, whose edge becomes eager again. An entry whose parents are missing is held (the
 *   room log's pending set) and its parents are grafted from its sender.
 * - **Anti-entropy.** When a peer becomes reachable, and every so often with a random member,
 *   the two exchange heads and then only what the other lacks (docs/groups.md §Sync).
 * - **Bad senders.** Entries that fail verification count against the member that sent them;
 *   past a threshold its frames are ignored for a while.
 * - **Bounded answers.** A sync or graft is a small frame that can ask for the whole history, so
 *   what one draws is bounded: a member's out of a byte budget of its own (a token bucket: a
 *   burst a catch-up can spend at once, then a steady rate), the oldest of what it lacks first;
 *   a non-member's once a minute at most.
 *
 * No clock, randomness or I/O of its own: the host (the node, or the simulator) supplies them.
 */
import { isStorageFailure, isTalkenError, type TalkenError } from '../errors.ts'
import { BoundedMap } from '../mesh/bounded-map.ts'
import type { Logger } from '../mesh/router.ts'
import { toHex } from './entry.ts'
import {
  decodeGossipFrame,
  encodeGossipFrame,
  entryFrames,
  type GossipFrame,
  MAX_GOSSIP_HASHES,
} from './gossip-frames.ts'
import { MAX_ROOM_MEMBERS } from './limits.ts'
import type { RoomLog } from './room-log.ts'

/** Senders whose strikes are remembered, at most (the oldest go first). */
const MAX_STRIKE_SENDERS = 256

/** A member, by the lower-case hex of its account key. */
export type MemberId = string

/** Whether a frame carries entries or only gossip control (hashes, heads, prunes). */
export type GossipTraffic = 'entries' | 'control'

/** What the gossip core asks of its host. Times are milliseconds on the host's clock. */
export interface RoomGossipHost {
  now(): number
  /** Uniform in [0, 1). */
  random(): number
  /** Sends a frame to a member (through the mesh); may be lost. */
  send(member: MemberId, frame: Uint8Array, traffic: GossipTraffic): void
  /** Hops to `member` by the mesh's current routes; undefined when no route is known. */
  distance(member: MemberId): number | undefined
  /** Asks to be woken through {@link RoomGossip.timer} at or after `time`. */
  wakeAt(time: number): void
  /** An entry entered the history: written here (`from` undefined) or received. */
  accepted?(hash: Uint8Array, from: MemberId | undefined): void
  /** A full copy of an entry already held arrived. */
  duplicate?(hash: Uint8Array, from: MemberId): void
  /** A frame or entry from `from` was refused. */
  rejected?(from: MemberId, error: TalkenError): void
  readonly log: Logger
}

/** Tunables; the defaults suit a room of up to 128 members on a mesh of phones. */
export interface GossipConfig {
  /** Nearest members kept as gossip peers. */
  readonly nearPeers: number
  /** Random members kept as gossip peers besides the nearest. */
  readonly randomPeers: number
  /** How often at most lazy peers are told our heads (when something new arrived). */
  readonly announceIntervalMs: number
  /** How long an announced or missing entry may stay missing before it is grafted. */
  readonly graftTimeoutMs: number
  /** How often reachability and the overlay are looked at again. */
  readonly reviewIntervalMs: number
  /** How often a random reachable member is synced with. */
  readonly antiEntropyIntervalMs: number
  /** Invalid entries from one member before its frames are ignored. */
  readonly maxStrikes: number
  /** How long a member's frames are ignored after too many invalid entries. */
  readonly penaltyMs: number
  /**
   * Bytes sent at most in one go in answer to one member's syncs and grafts: the size of its
   * budget (a token bucket), which a joiner's or a returning member's catch-up may spend at once.
   */
  readonly supplyBurstBytes: number
  /** Bytes a second that budget refills at: past the burst, what one member can make us send. */
  readonly supplyBytesPerSecond: number
}

export const DEFAULT_GOSSIP_CONFIG: GossipConfig = {
  nearPeers: 3,
  randomPeers: 1,
  announceIntervalMs: 2_000,
  graftTimeoutMs: 1_500,
  reviewIntervalMs: 2_000,
  antiEntropyIntervalMs: 30_000,
  maxStrikes: 8,
  penaltyMs: 10 * 60_000,
  supplyBurstBytes: 8 * 1024 * 1024,
  supplyBytesPerSecond: 32 * 1024,
}

/** Counters, for tests, logs and the simulator. */
export interface GossipStats {
  entriesAccepted: number
  duplicates: number
  duplicatesPushed: number
  rejected: number
  /** Entries from non-members whose parents are not held here: not kept waiting (no fault either). */
  notKept: number
  ignoredFrames: number
  /**
   * Members' syncs and grafts answered with only the oldest part of what they lack (in causal
   * order), their budget being short: the rest comes with a later sync or graft.
   */
  suppliesTruncated: number
  /** Members' syncs and grafts answered with nothing, their budget being spent. */
  suppliesRefused: number
  prunesSent: number
  graftsSent: number
  syncsSent: number
}

interface Wanted {
  /** Members that announced it (or sent an entry needing it), first asked first. */
  readonly from: MemberId[]
  due: number
  tries: number
}

/** How often one non-member's sync or graft is answered, at most (see `#mayAnswer`). */
export const NON_MEMBER_ANSWER_INTERVAL_MS = 60_000
/** Non-members' syncs and grafts answered per interval, from all of them together. */
export const NON_MEMBER_ANSWERS_PER_INTERVAL = 4

/** Most hashes tracked as wanted at once. */
const MAX_WANTED = 4096
/** Most hashes a sync or graft names (its heads first, then the newest other entries). */
const SYNC_HASHES = 48
/** Most graft attempts for one hash before leaving it to anti-entropy. */
const MAX_GRAFT_TRIES = 3
/** Members remembered as holding one wanted entry (each asked in turn). */
const MAX_GRAFT_SOURCES = 8
/** Most newly reachable peers synced with per review (bounds the burst after a partition heals). */
const SYNCS_PER_REVIEW = 4
/**
 * Members' answer budgets kept, at most (the least recently used go first, and come back full):
 * twice a full room, so that one is forgotten only after that many other accounts were members
 * and asked since.
 */
const MAX_SUPPLY_BUDGETS = 2 * MAX_ROOM_MEMBERS

/** What one member may still be sent in answer to its syncs and grafts: a token bucket. */
interface SupplyBudget {
  /** Bytes left, as of `at`; below zero after an answer that overdrew it (repaid first). */
  bytes: number
  at: number
}

/** The gossip state of one room on one device. */
export class RoomGossip {
  readonly stats: GossipStats = {
    entriesAccepted: 0,
    duplicates: 0,
    duplicatesPushed: 0,
    rejected: 0,
    notKept: 0,
    ignoredFrames: 0,
    suppliesTruncated: 0,
    suppliesRefused: 0,
    prunesSent: 0,
    graftsSent: 0,
    syncsSent: 0,
  }
  readonly #log: RoomLog
  readonly #host: RoomGossipHost
  readonly #cfg: GossipConfig
  readonly #self: MemberId
  readonly #eager = new Set<MemberId>()
  readonly #lazy = new Set<MemberId>()
  /** Members with a route at the last review. */
  #reachable = new Set<MemberId>()
  /** Overlay peers synced with since they last became reachable. */
  readonly #met = new Set<MemberId>()
  /** Lazy peers to tell our heads at the next announcement. */
  readonly #announce = new Set<MemberId>()
  #announceAt = Number.POSITIVE_INFINITY
  readonly #wanted = new Map<string, Wanted>()
  /** Pending entry (hex) → the member that sent it, so that released entries spread onward. */
  readonly #pendingFrom = new Map<string, MemberId>()
  /** Entry (hex) → the member whose push brought it first, for recent entries. */
  readonly #firstPush = new BoundedMap<string, MemberId>(4096)
  /** Senders of invalid entries, bounded: anyone holding the room ID can sign frames under new accounts. */
  readonly #strikes = new BoundedMap<MemberId, { count: number; until: number }>(MAX_STRIKE_SENDERS)
  /** When each non-member's sync or graft was last answered, and the answers of this interval. */
  readonly #nonMemberAnswered = new BoundedMap<MemberId, number>(256)
  #nonMemberWindow = { start: Number.NEGATIVE_INFINITY, count: 0 }
  /** Each member's budget for what we send in answer to its syncs and grafts (see `#answer`). */
  readonly #supplyBudgets = new BoundedMap<MemberId, SupplyBudget>(MAX_SUPPLY_BUDGETS)
  #reviewAt = 0
  #antiEntropyAt: number
  #wakeAt = Number.POSITIVE_INFINITY

  constructor(log: RoomLog, self: Uint8Array, host: RoomGossipHost, config: Partial<GossipConfig> = {}) {
    this.#log = log
    this.#host = host
    this.#cfg = { ...DEFAULT_GOSSIP_CONFIG, ...config }
    this.#self = toHex(self)
    this.#antiEntropyAt = host.now() + this.#cfg.antiEntropyIntervalMs * (0.5 + host.random())
    this.#schedule()
  }

  /** The room's log this gossip feeds. */
  get log(): RoomLog {
    return this.#log
  }

  /** The current gossip peers: eager (full entries) and lazy (hashes only). */
  peers(): { eager: MemberId[]; lazy: MemberId[] } {
    return { eager: [...this.#eager].sort(), lazy: [...this.#lazy].sort() }
  }

  /** Spreads an entry this device wrote (already in the log). */
  published(entry: { readonly hash: Uint8Array; readonly bytes: Uint8Array }): void {
    this.stats.entriesAccepted++
    this.#host.accepted?.(entry.hash, undefined)
    this.#review(false)
    this.#spread([entry.bytes], undefined)
    this.#schedule()
  }

  /** Asks `member` for whatever it holds that we lack (and offers the same): a heads exchange. */
  syncWith(member: MemberId): void {
    this.#sendSync(member, false)
    this.#schedule()
  }

  /** Hands everything held to `member` (a new member who holds nothing yet). */
  supplyAll(member: MemberId): void {
    for (const frame of entryFrames('supply', this.#log.entriesSince([])))
      this.#host.send(member, frame, 'entries')
  }

  /** A frame from `from` arrived. Never throws: bad frames and entries are counted and reported. */
  receive(from: MemberId, bytes: Uint8Array): void {
    const now = this.#host.now()
    const strikes = this.#strikes.get(from)
    if (strikes && strikes.until > now) {
      this.stats.ignoredFrames++
      return
    }
    let frame: GossipFrame
    try {
      frame = decodeGossipFrame(bytes)
    } catch (err) {
      this.#reject(from, err)
      return
    }
    this.#handle(from, frame)
    this.#schedule()
  }

  /** A wake-up asked for through {@link RoomGossipHost.wakeAt} is due. */
  timer(): void {
    const now = this.#host.now()
    this.#wakeAt = Number.POSITIVE_INFINITY
    if (now >= this.#reviewAt) this.#review(true)
    if (now >= this.#announceAt) this.#flushAnnouncements()
    this.#graftDue(now)
    if (now >= this.#antiEntropyAt) {
      this.#antiEntropyAt = now + this.#cfg.antiEntropyIntervalMs * (0.75 + 0.5 * this.#host.random())
      const reachable = [...this.#reachable]
      if (reachable.length > 0)
        this.#sendSync(reachable[Math.floor(this.#host.random() * reachable.length)]!, false)
    }
    this.#schedule()
  }

  // ------------------------------------------------------------------------------------------

  #handle(from: MemberId, frame: GossipFrame): void {
    switch (frame.type) {
      case 'push':
        if (!this.#eager.has(from) && !this.#lazy.has(from) && this.#isMember(from)) this.#eager.add(from)
        this.#takeEntries(from, frame.entries, true)
        return
      case 'supply':
        this.#takeEntries(from, frame.entries, false)
        return
      case 'ihave':
        // Only a member's announcement is followed up: anyone holding the room ID could fill the
        // wanted set with made-up hashes, and then nothing genuinely missing would be asked for.
        if (!this.#heeded(from)) return
        for (const h of frame.hashes) this.#want(h, from, this.#cfg.graftTimeoutMs)
        return
      case 'graft': {
        // "Push to me from now on, and send what I lack": the frame carries the asker's heads.
        this.#lazy.delete(from)
        if (this.#isMember(from)) this.#eager.add(from)
        this.#answer(from, frame.hashes, false)
        return
      }
      case 'prune':
        if (this.#eager.delete(from)) this.#lazy.add(from)
        return
      case 'sync': {
        // Links are two-way: a member that picked us as a peer (its first sync says so) is ours too,
        // or a member nobody picked, and who never posts, would hear only through anti-entropy.
        if (frame.peer && !this.#eager.has(from) && !this.#lazy.has(from) && this.#isMember(from)) {
          this.#eager.add(from)
        }
        // Answer with ours unless they named every one of our heads (then they lack nothing).
        const named = new Set(frame.heads.map(toHex))
        this.#answer(from, frame.heads, !frame.reply && !this.#log.heads().every((h) => named.has(toHex(h))))
        // What they hold and we lack comes in their answer; graft it only if that answer is lost.
        if (!this.#heeded(from)) return
        for (const h of this.#log.missing(frame.heads)) this.#want(h, from, 2 * this.#cfg.graftTimeoutMs)
        return
      }
    }
  }

  #takeEntries(from: MemberId, entries: readonly Uint8Array[], eager: boolean): void {
    const spreadBytes: Uint8Array[] = []
    let prune = false
    // Entries from someone who is no member wait for nothing: made-up parents would push genuine
    // entries out of the bounded set of those waiting.
    const rejectMissing = !this.#heeded(from)
    for (const bytes of entries) {
      try {
        const result = this.#log.receive(bytes, { rejectMissing })
        if (result.status === 'duplicate') {
          // Prune only a second push of something that came by push: a copy racing a graft or a
          // sync answer says nothing about the tree.
          const first = this.#firstPush.get(toHex(result.hash))
          if (eager && first !== undefined && first !== from) prune = true
          this.stats.duplicates++
          if (eager) this.stats.duplicatesPushed++
          this.#host.duplicate?.(result.hash, from)
          continue
        }
        const id = toHex(result.hash)
        this.#wanted.delete(id)
        if (eager) this.#firstPush.set(id, from)
        if (result.status === 'pending') {
          if (this.#pendingFrom.has(id)) {
            this.stats.duplicates++
            this.#host.duplicate?.(result.hash, from)
            continue
          }
          this.#pendingFrom.set(id, from)
          for (const m of result.missing) this.#want(m, from, this.#cfg.graftTimeoutMs)
          continue
        }
        this.#accepted(result.hash, bytes, from, spreadBytes)
        for (const h of result.released) {
          const hid = toHex(h)
          const origin = this.#pendingFrom.get(hid) ?? from
          this.#pendingFrom.delete(hid)
          this.#wanted.delete(hid)
          const entry = this.#log.entry(h)
          if (entry) this.#accepted(h, entry.bytes, origin, spreadBytes)
        }
        for (const h of result.dropped) this.#pendingFrom.delete(toHex(h))
      } catch (err) {
        // A member whose add has not reached us yet sends such entries too: they come again
        // with the next sync, and cost the sender no strike.
        if (rejectMissing && isTalkenError(err, 'not_found')) {
          this.stats.notKept++
          continue
        }
        this.#reject(from, err)
      }
    }
    if (this.#pendingFrom.size > 2 * MAX_GOSSIP_HASHES) {
      for (const id of this.#pendingFrom.keys()) {
        if (this.#pendingFrom.size <= MAX_GOSSIP_HASHES) break
        this.#pendingFrom.delete(id)
      }
    }
    if (prune && this.#eager.delete(from)) {
      this.#lazy.add(from)
      this.stats.prunesSent++
      this.#host.send(from, encodeGossipFrame({ type: 'prune' }), 'control')
    }
    this.#spread(spreadBytes, from)
  }

  #accepted(hash: Uint8Array, bytes: Uint8Array, from: MemberId, spreadBytes: Uint8Array[]): void {
    this.stats.entriesAccepted++
    this.#host.accepted?.(hash, from)
    spreadBytes.push(bytes)
  }

  /** Pushes entries to eager peers and marks lazy ones (but `from`) for the next announcement. */
  #spread(entries: readonly Uint8Array[], from: MemberId | undefined): void {
    if (entries.length === 0) return
    for (const peer of this.#eager) {
      if (peer === from || !this.#reachable.has(peer)) continue
      for (const f of entryFrames('push', entries)) this.#host.send(peer, f, 'entries')
    }
    for (const peer of this.#lazy) if (peer !== from && this.#reachable.has(peer)) this.#announce.add(peer)
    if (this.#announce.size > 0 && this.#announceAt === Number.POSITIVE_INFINITY) {
      this.#announceAt = this.#host.now() + this.#cfg.announceIntervalMs
    }
  }

  /**
   * Tells the lazy peers marked since the last time what we hold: our heads, which name the whole
   * history. One small frame per peer per interval, however many entries arrived meanwhile.
   */
  #flushAnnouncements(): void {
    this.#announceAt = Number.POSITIVE_INFINITY
    const heads = this.#log.heads().slice(-MAX_GOSSIP_HASHES)
    const frame = encodeGossipFrame({ type: 'ihave', hashes: heads })
    for (const peer of this.#announce) this.#host.send(peer, frame, 'control')
    this.#announce.clear()
  }

  #want(hash: Uint8Array, from: MemberId, delayMs: number): void {
    const id = toHex(hash)
    if (this.#log.has(hash) || this.#pendingFrom.has(id)) return
    const w = this.#wanted.get(id)
    if (w) {
      if (!w.from.includes(from) && w.from.length < MAX_GRAFT_SOURCES) w.from.push(from)
      return
    }
    if (this.#wanted.size >= MAX_WANTED) return
    this.#wanted.set(id, { from: [from], due: this.#host.now() + delayMs, tries: 0 })
  }

  #graftDue(now: number): void {
    const asks = new Set<MemberId>()
    for (const [id, w] of this.#wanted) {
      if (w.due > now) continue
      const hash = Uint8Array.from(Buffer.from(id, 'hex'))
      if (this.#log.has(hash) || w.tries >= MAX_GRAFT_TRIES || w.from.length === 0) {
        this.#wanted.delete(id)
        continue
      }
      const peer = w.from[w.tries % w.from.length]!
      w.tries++
      w.due = now + this.#cfg.graftTimeoutMs * 2 ** w.tries
      asks.add(peer)
    }
    if (asks.size === 0) return
    const frame = encodeGossipFrame({ type: 'graft', hashes: this.#held() })
    for (const peer of asks) {
      this.#lazy.delete(peer)
      if (this.#isMember(peer)) this.#eager.add(peer)
      this.stats.graftsSent++
      this.#host.send(peer, frame, 'control')
    }
  }

  /** Sends `member` a sync naming what we hold; returns its size in bytes. */
  #sendSync(member: MemberId, reply: boolean, peer = false): number {
    this.stats.syncsSent++
    const frame = encodeGossipFrame({ type: 'sync', heads: this.#held(), reply, peer })
    this.#host.send(member, frame, 'control')
    return frame.length
  }

  /** What a sync or graft names as held: the heads, then the newest other entries (bounded). */
  #held(): Uint8Array[] {
    return this.#log.size.entries === 0 ? [] : this.#log.recent(SYNC_HASHES)
  }

  /**
   * Whether what `id` says it holds is worth asking for: a member's word, or anyone's while we
   * hold nothing yet (a joiner catching up from its inviter, whose membership it cannot judge).
   */
  #heeded(id: MemberId): boolean {
    return this.#log.size.entries === 0 || this.#isMember(id)
  }

  /**
   * Answers a sync or graft from `from` naming `heads`: what it lacks beyond them (the entries
   * outside their causal past, in causal order), then, when `reply`, a sync of ours.
   *
   * One small frame can ask for the whole history, so what it draws is bounded. A non-member's
   * is answered in full, but seldom ({@link #mayAnswer}). A member's is answered every time, out
   * of a budget of bytes of its own, a token bucket ({@link GossipConfig.supplyBurstBytes},
   * refilled at {@link GossipConfig.supplyBytesPerSecond}), charged with every frame of the
   * answer: a joiner or a member back from days away takes what it lacks at once, while a
   * member that asks again and again (buggy or hostile) draws no more than the refill rate. An
   * answer is given while the budget is above zero; when it runs short, only the oldest part of
   * what they lack goes (the last entry taken may overdraw it, and the sync of ours then still
   * goes: it names our heads, which they then graft). Causal order makes that part verifiable
   * on its own: each entry's parents are in their past or come before it, and an entry is one
   * deeper than its deepest parent. The rest comes with their next graft or sync, as the budget
   * refills; when it is spent, the frame is answered with nothing.
   */
  #answer(from: MemberId, heads: readonly Uint8Array[], reply: boolean): void {
    if (!this.#isMember(from)) {
      if (!this.#mayAnswer(from)) return
      for (const f of entryFrames('supply', this.#log.entriesSince(heads)))
        this.#host.send(from, f, 'entries')
      if (reply) this.#sendSync(from, true)
      return
    }
    const budget = this.#supplyBudget(from)
    if (budget.bytes <= 0) {
      // Nothing is computed either: working out what they lack walks the whole history.
      this.stats.suppliesRefused++
      return
    }
    const since = this.#log.entriesSince(heads)
    let fits = 0
    for (let bytes = 0; fits < since.length && bytes < budget.bytes; fits++) bytes += since[fits]!.length
    if (fits < since.length) this.stats.suppliesTruncated++
    for (const f of entryFrames('supply', since.slice(0, fits))) {
      budget.bytes -= f.length
      this.#host.send(from, f, 'entries')
    }
    if (reply) budget.bytes -= this.#sendSync(from, true)
  }

  /** Member `id`'s answer budget, refilled up to now (a new one starts full). */
  #supplyBudget(id: MemberId): SupplyBudget {
    const now = this.#host.now()
    const { supplyBurstBytes: burst, supplyBytesPerSecond: rate } = this.#cfg
    const budget = this.#supplyBudgets.get(id) ?? { bytes: burst, at: now }
    // A clock set back refills nothing (and the budget counts from the new time on).
    budget.bytes = Math.min(burst, budget.bytes + (Math.max(0, now - budget.at) * rate) / 1000)
    budget.at = now
    this.#supplyBudgets.set(id, budget)
    return budget
  }

  /**
   * Whether a sync or graft from `id`, who is no member by our log (a joiner our log does not
   * list yet, or anyone holding the room ID, replaying one sealed frame), gets what it lacks:
   * once per {@link NON_MEMBER_ANSWER_INTERVAL_MS} per sender and
   * {@link NON_MEMBER_ANSWERS_PER_INTERVAL} times in all, since one small frame can ask for the
   * whole history, and senders cost nothing to make.
   */
  #mayAnswer(id: MemberId): boolean {
    const now = this.#host.now()
    const last = this.#nonMemberAnswered.get(id)
    if (now - this.#nonMemberWindow.start >= NON_MEMBER_ANSWER_INTERVAL_MS) {
      this.#nonMemberWindow = { start: now, count: 0 }
    }
    if (
      (last !== undefined && now - last < NON_MEMBER_ANSWER_INTERVAL_MS) ||
      this.#nonMemberWindow.count >= NON_MEMBER_ANSWERS_PER_INTERVAL
    ) {
      this.stats.ignoredFrames++
      return false
    }
    this.#nonMemberWindow.count++
    this.#nonMemberAnswered.set(id, now)
    return true
  }

  /**
   * Whether `id` is a member now, by our log. Only members become peers: anyone holding the room
   * ID can sign frames under new accounts, and each would otherwise get a sync from us at the
   * next review (a datagram to an address of the sender's choosing).
   */
  #isMember(id: MemberId): boolean {
    return this.#log.hasMember(id)
  }

  /**
   * Looks at members and routes again: drops peers who left the room (with a last sync), fills the overlay up to
   * its size from reachable members (nearest first, then at random), and syncs with peers that
   * just became reachable.
   */
  #review(syncNew: boolean): void {
    this.#reviewAt = this.#host.now() + this.#cfg.reviewIntervalMs
    const members = this.#log.size.entries === 0 ? [] : this.#log.members().map((m) => toHex(m.account))
    const others = members.filter((m) => m !== this.#self)
    const isMember = new Set(others)
    const dropped = new Set<MemberId>()
    for (const set of [this.#eager, this.#lazy]) {
      for (const p of set) {
        if (isMember.has(p)) continue
        set.delete(p)
        dropped.add(p)
      }
    }
    // A peer no longer a member (removed, or gone) gets one last sync: its answer brings it what
    // it lacks, its removal included, even if nothing was pushed to it (we had lost sight of it).
    for (const p of dropped) this.#sendSync(p, false)
    const distance = new Map<MemberId, number>()
    for (const m of others) {
      const d = this.#host.distance(m)
      if (d !== undefined) distance.set(m, d)
    }
    const reachable = new Set(distance.keys())
    const inOverlay = (m: MemberId) => this.#eager.has(m) || this.#lazy.has(m)
    const active = () => [...reachable].filter(inOverlay).length
    const want = this.#cfg.nearPeers + this.#cfg.randomPeers
    if (active() < want) {
      const candidates = [...reachable].filter((m) => !inOverlay(m))
      const ranked = candidates
        .map((m) => ({ m, d: distance.get(m)!, r: this.#host.random() }))
        .sort((a, b) => a.d - b.d || a.r - b.r)
      const near = Math.max(0, this.#cfg.nearPeers - active())
      for (const c of ranked.slice(0, near)) this.#eager.add(c.m)
      const rest = ranked.slice(near)
      while (active() < want && rest.length > 0) {
        const [pick] = rest.splice(Math.floor(this.#host.random() * rest.length), 1)
        this.#eager.add(pick!.m)
      }
    }
    if (syncNew) {
      const fresh = [...reachable].filter((m) => inOverlay(m) && !this.#met.has(m))
      for (const m of fresh.slice(0, SYNCS_PER_REVIEW)) {
        this.#sendSync(m, false, true)
        this.#met.add(m)
      }
    }
    for (const m of this.#met) if (!reachable.has(m) || !inOverlay(m)) this.#met.delete(m)
    this.#reachable = reachable
  }

  #reject(from: MemberId, err: unknown): void {
    if (!isTalkenError(err)) throw err
    if (isStorageFailure(err)) {
      // Not the sender's fault: the entry is not stored, and the next sync brings it again.
      this.#host.log('error', 'could not store a room entry', { code: err.code })
      return
    }
    this.stats.rejected++
    const now = this.#host.now()
    const s = this.#strikes.get(from) ?? { count: 0, until: 0 }
    s.count++
    if (s.count >= this.#cfg.maxStrikes) {
      s.count = 0
      s.until = now + this.#cfg.penaltyMs
      this.#host.log('warn', 'ignoring a room member that sent invalid entries', {
        member: from.slice(0, 16),
      })
    }
    this.#strikes.set(from, s)
    this.#host.rejected?.(from, err as TalkenError)
  }

  #schedule(): void {
    let next = Math.min(this.#reviewAt, this.#announceAt, this.#antiEntropyAt)
    for (const w of this.#wanted.values()) next = Math.min(next, w.due)
    if (next < this.#wakeAt) {
      this.#wakeAt = next
      this.#host.wakeAt(next)
    }
  }
}
