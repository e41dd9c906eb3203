/**
 * The control entries of a room's history (every kind but post) as a graph of their own, and the
 * membership state at any set of entries: the fold of the control entries in their causal past.
 *
 * Each entry records only its *control frontier*: the control entries at the top of its
 * inclusive causal past (one, unless concurrent control entries have not been merged since);
 * each control entry, the frontier of its parents. Folds are kept per control entry (the fold of
 * its inclusive past) and, for frontiers of several entries, in a bounded cache. So memory grows
 * with the number of entries, not with its square: keeping each control entry's whole past as a
 * list made a member who wrote thousands of rotations cost every replica hundreds of MB.
 *
 * No fold starts from genesis when it can start from less. The fold after a control entry is
 * one step past the fold of its parents (see {@link ControlHistory.record}), and the fold of
 * several entries starts from that of their *cut*, usually the control entry where their branches
 * forked: its cost is that of the entries since. Before, each add folded its whole control past
 * again, walking and sorting the past of every removal in it once more (an admin who added and
 * removed one account 400 times made the room take 25 s to open, and as long for each joiner), and
 * each frontier of several entries was folded from genesis (a member's 780 posts merging pairs of
 * concurrent rotations, after 2,000 rotations, cost 30 s). `test/groups/control-cost.test.ts`
 * counts the work.
 */
import { BoundedMap } from '../mesh/bounded-map.ts'
import { bytesEqual } from '../wire/cbor.ts'
import { compareBytes, type RoomEntry, toHex } from './entry.ts'
import { EMPTY_STATE, foldControl, foldOne, isControl, type RoomState } from './membership.ts'
import { decodeAddBody, decodeRemoveBody } from './room-bodies.ts'

/** Folds of frontiers of several control entries (concurrent branches), kept at most. */
const MERGED_STATES = 256

/** Causal order: by depth, ties broken by hash. */
export function byCausalOrder(a: RoomEntry, b: RoomEntry): number {
  return a.depth - b.depth || compareBytes(a.hash, b.hash)
}

/** Whether `e` takes someone out: a `remove` or a `leave`. */
function isRemoval(e: RoomEntry): boolean {
  return e.kind === 'remove' || e.kind === 'leave'
}

/** Whom a `remove` or `leave` takes out. */
function removalSubject(e: RoomEntry): Uint8Array {
  return e.kind === 'leave' ? e.author : decodeRemoveBody(e.body).member
}

/** Whom a `genesis` or `add` admits (hex). */
function admittedMember(e: RoomEntry): string {
  return toHex(e.kind === 'genesis' ? e.author : decodeAddBody(e.body).member)
}

/**
 * Members (hex) and the entries (genesis or add) that admitted them, as a chain that shares its
 * older links with the folds before it, with a full map every {@link ADMISSIONS_SNAPSHOT} links
 * so that a lookup walks at most that far: a map copied into each fold grew with the square of
 * the adds.
 */
interface Admissions {
  readonly member: string
  readonly by: RoomEntry
  readonly up: Admissions | undefined
  /** On every {@link ADMISSIONS_SNAPSHOT}th link: every admission up to and including this one. */
  readonly all: ReadonlyMap<string, RoomEntry> | undefined
  /** Links since the last snapshot. */
  readonly hops: number
}

const ADMISSIONS_SNAPSHOT = 64

/** The entry that admitted `member` (hex) in `chain`, if any. */
function admission(chain: Admissions | undefined, member: string): RoomEntry | undefined {
  for (let link = chain; link !== undefined; link = link.up) {
    if (link.all !== undefined) return link.all.get(member)
    if (link.member === member) return link.by
  }
  return undefined
}

/** `chain` with `member` (hex, not in it yet) admitted by `by`. */
function admit(chain: Admissions | undefined, member: string, by: RoomEntry): Admissions {
  const hops = (chain?.hops ?? 0) + 1
  if (hops < ADMISSIONS_SNAPSHOT) return { member, by, up: chain, all: undefined, hops }
  let link = chain
  const links: Admissions[] = []
  for (; link !== undefined && link.all === undefined; link = link.up) links.push(link)
  const all = new Map(link?.all)
  for (const l of links) all.set(l.member, l.by)
  return { member, by, up: undefined, all: all.set(member, by), hops: 0 }
}

/** Orders authors by seniority, given their admissions: in causal order, never admitted last. */
function bySeniority(a: RoomEntry | undefined, b: RoomEntry | undefined): number {
  if (a === b) return 0
  if (a === undefined) return 1
  if (b === undefined) return -1
  return byCausalOrder(a, b)
}

/** The fold of the control entries of a past, with what the fold of a larger past takes from it. */
interface Fold {
  readonly state: RoomState
  /** Each member's first admission here that no removal of its author contests: its seniority. */
  readonly admitted: Admissions | undefined
  /**
   * The authors (hex) of removals here whom nothing here admits (only contested adds do). Their
   * removals leave nothing out, until an admission of theirs comes and gives them a seniority.
   */
  readonly dormant: ReadonlySet<string>
}

const EMPTY_FOLD: Fold = { state: EMPTY_STATE, admitted: undefined, dormant: new Set() }

/** Control entries, deepest first: a binary heap on depth. */
class DeepestFirst {
  readonly #heap: RoomEntry[] = []

  get size(): number {
    return this.#heap.length
  }

  peek(): RoomEntry | undefined {
    return this.#heap[0]
  }

  push(e: RoomEntry): void {
    const h = this.#heap
    let i = h.push(e) - 1
    for (let p = (i - 1) >> 1; i > 0 && h[p]!.depth < e.depth; i = p, p = (i - 1) >> 1) h[i] = h[p]!
    h[i] = e
  }

  pop(): RoomEntry | undefined {
    const h = this.#heap
    const top = h[0]
    const last = h.pop()!
    if (h.length === 0) return top
    let i = 0
    for (let c = 1; c < h.length; i = c, c = 2 * i + 1) {
      if (c + 1 < h.length && h[c + 1]!.depth > h[c]!.depth) c++
      if (h[c]!.depth <= last.depth) break
      h[i] = h[c]!
    }
    h[i] = last
    return top
  }
}

/** The control graph and states of one room log. */
export class ControlHistory {
  /** For each recorded entry (hex), its control frontier, sorted by hash. */
  readonly #frontier = new Map<string, readonly RoomEntry[]>()
  /** For each control entry (hex), the control frontier of its parents. */
  readonly #up = new Map<string, readonly RoomEntry[]>()
  /** For each control entry (hex), the fold of its inclusive past. */
  readonly #after = new Map<string, Fold>()
  /** Folds of frontiers of several entries, by their hashes joined. */
  readonly #merged = new BoundedMap<string, Fold>(MERGED_STATES)

  /** The state at `entries` (each recorded): the fold of the control entries in their pasts. */
  stateAt(entries: readonly RoomEntry[]): RoomState {
    return this.#foldAt(this.#frontierOf(entries)).state
  }

  /** Whether the inclusive past of `entry` (recorded) holds a `remove` or `leave` of `account`. */
  takesOut(entry: RoomEntry, account: Uint8Array): boolean {
    return this.#pastOf(this.#frontierOf([entry])).some(
      (e) => isRemoval(e) && bytesEqual(removalSubject(e), account),
    )
  }

  /**
   * Records an entry whose parents are recorded, once it was found valid against `before`, the
   * state at its parents. An entry is concurrent with nothing in its own past (all of it is its
   * ancestors), so it voids nothing there and contests no admission there (see
   * {@link #foldSince}): the state after a control entry is one fold step past `before`. Unless
   * it is the first admission of an author of removals in its past (written under adds that
   * removals contest there): it moves them into the order of removals, so the entries they may
   * leave out are folded again.
   */
  record(entry: RoomEntry, parents: readonly RoomEntry[], before: RoomState): void {
    const id = toHex(entry.hash)
    const up = this.#frontierOf(parents)
    if (!isControl(entry)) {
      this.#frontier.set(id, up)
      return
    }
    this.#up.set(id, up)
    this.#frontier.set(id, [entry])
    this.#after.set(id, this.#next(this.#foldAt(up), entry, before))
  }

  /** The fold after control entry `entry`, from `fold`, that of its parents, whose state is `before`. */
  #next(fold: Fold, entry: RoomEntry, before: RoomState): Fold {
    if (entry.kind === 'genesis' || entry.kind === 'add') {
      const member = admittedMember(entry)
      if (fold.dormant.has(member)) return this.#foldSince([entry])
      const state = foldOne(before, entry)
      if (admission(fold.admitted, member) !== undefined) return { ...fold, state }
      return { ...fold, state, admitted: admit(fold.admitted, member, entry) }
    }
    const state = foldOne(before, entry)
    const author = toHex(entry.author)
    if (!isRemoval(entry) || admission(fold.admitted, author) !== undefined || fold.dormant.has(author)) {
      return { ...fold, state }
    }
    return { ...fold, state, dormant: new Set(fold.dormant).add(author) }
  }

  /** Forgets an entry recorded last (its transaction was undone). */
  forget(entry: RoomEntry): void {
    const id = toHex(entry.hash)
    this.#frontier.delete(id)
    this.#up.delete(id)
    this.#after.delete(id)
  }

  /** The fold of the inclusive pasts of `frontier`, a control frontier. */
  #foldAt(frontier: readonly RoomEntry[]): Fold {
    if (frontier.length === 0) return EMPTY_FOLD
    if (frontier.length === 1) return this.#after.get(toHex(frontier[0]!.hash))!
    const key = frontier.map((e) => toHex(e.hash)).join()
    let fold = this.#merged.get(key)
    if (fold === undefined) {
      fold = this.#foldSince(frontier)
      this.#merged.set(key, fold)
    }
    return fold
  }

  /** The control frontier of the union of the inclusive pasts of `entries`, sorted by hash. */
  #frontierOf(entries: readonly RoomEntry[]): readonly RoomEntry[] {
    if (entries.length === 1) return this.#frontier.get(toHex(entries[0]!.hash)) ?? []
    const candidates = new Map<string, RoomEntry>()
    for (const e of entries)
      for (const c of this.#frontier.get(toHex(e.hash)) ?? []) candidates.set(toHex(c.hash), c)
    const all = [...candidates.values()]
    if (all.length <= 1) return all
    return all
      .filter((c) => !all.some((d) => d !== c && this.#isAncestor(c, d)))
      .sort((a, b) => compareBytes(a.hash, b.hash))
  }

  /** Whether control entry `a` is in the inclusive causal past of control entry `b`. */
  #isAncestor(a: RoomEntry, b: RoomEntry): boolean {
    if (a === b) return true
    const seen = new Set<string>()
    const stack = [b]
    while (stack.length > 0) {
      const n = stack.pop()!
      if (n === a) return true
      // An ancestor is shallower than what it precedes: nothing at or above a's depth leads to it.
      if (n.depth <= a.depth) continue
      const id = toHex(n.hash)
      if (seen.has(id)) continue
      seen.add(id)
      for (const u of this.#up.get(id) ?? []) stack.push(u)
    }
    return false
  }

  /** The control entries in the inclusive pasts of `frontier`, in no particular order. */
  #pastOf(frontier: readonly RoomEntry[]): RoomEntry[] {
    const found = new Map<string, RoomEntry>()
    const stack = [...frontier]
    while (stack.length > 0) {
      const n = stack.pop()!
      const id = toHex(n.hash)
      if (found.has(id)) continue
      found.set(id, n)
      for (const u of this.#up.get(id) ?? []) stack.push(u)
    }
    return [...found.values()]
  }

  /**
   * Walks down from control entries `tops`, deepest first, until one entry is all that is left to
   * walk: their *cut*. Every path down from what was walked passes through it, so each entry of
   * their pasts either is in its inclusive past or follows it; walking deepest first stops at the
   * first such entry, where the branches forked. The cut must have a fold of its own that the
   * walked entries leave standing: none of them may admit a dormant author of it (see
   * {@link Fold.dormant}), else the walk goes on to the next cut, or past genesis. Returns the
   * cut's fold and depth, and the walked entries, in causal order.
   */
  #cut(tops: readonly RoomEntry[]): { base: Fold; floor: number; since: RoomEntry[] } {
    const queue = new DeepestFirst()
    const seen = new Set<string>()
    for (const e of tops) {
      seen.add(toHex(e.hash))
      queue.push(e)
    }
    const since: RoomEntry[] = []
    const admits = new Set<string>()
    while (queue.size > 0) {
      const last = queue.size === 1 ? queue.peek()! : undefined
      const base = last && this.#after.get(toHex(last.hash))
      if (last !== undefined && base !== undefined && ![...base.dormant].some((a) => admits.has(a))) {
        return { base, floor: last.depth, since: since.sort(byCausalOrder) }
      }
      const n = queue.pop()!
      since.push(n)
      if (n.kind === 'genesis' || n.kind === 'add') admits.add(admittedMember(n))
      for (const u of this.#up.get(toHex(n.hash)) ?? []) {
        const id = toHex(u.hash)
        if (seen.has(id)) continue
        seen.add(id)
        queue.push(u)
      }
    }
    return { base: EMPTY_FOLD, floor: -1, since: since.sort(byCausalOrder) }
  }

  /**
   * The fold of the inclusive pasts of control entries `tops`: that of their cut (see
   * {@link #cut}), followed by the entries since that count. Everything since the cut follows
   * it, and everything else precedes it, so nothing since is concurrent with anything before:
   * a removal since leaves out nothing before, an admission since is contested by no removal
   * before, and those before keep their seniority, ahead of those since.
   *
   * The entries that count: a `remove` or `leave` wins over every entry by the member it takes out
   * that is concurrent with it (neither in the other's past). Otherwise a removed member could write
   * entries whose parents predate the removal (a "backdated" `add` of an accomplice), valid in the
   * past they name, and ordered before the removal in the fold. One that an earlier one already
   * voided voids nothing, so two admins removing each other at once give one verdict; and
   * "earlier" is by seniority, never by depth, which an author chooses: removals are taken in the
   * order their authors were first admitted (the founder by genesis, everyone else by the first
   * `add` of them whose author was not taken out concurrently with it), then in causal order. A
   * removed admin cannot move their admission, so a backdated removal of the admin who removed
   * them loses to that removal when the remover is senior; nobody can make themselves senior to
   * the admin who admitted them; an `add` that a removal may void moves nobody's seniority, and a
   * removal by someone admitted by no other add voids nothing; and a later re-admission moves
   * nobody's seniority.
   */
  #foldSince(tops: readonly RoomEntry[]): Fold {
    const { base, floor, since } = this.#cut(tops)
    const removals = since.filter(isRemoval)
    const subjects = new Map(removals.map((r) => [r, toHex(removalSubject(r))]))
    let admitted = base.admitted
    for (const e of since) {
      if (e.kind !== 'genesis' && e.kind !== 'add') continue
      const member = admittedMember(e)
      if (admission(admitted, member) !== undefined) continue
      // An add whose author was taken out concurrently may be voided: it admits nobody here.
      const author = toHex(e.author)
      const contested = removals.some(
        (r) => subjects.get(r) === author && !this.#isAncestor(r, e) && !this.#isAncestor(e, r),
      )
      if (!contested) admitted = admit(admitted, member, e)
    }
    const seniority = new Map(removals.map((r) => [r, admission(admitted, toHex(r.author))]))
    removals.sort((a, b) => bySeniority(seniority.get(a), seniority.get(b)) || byCausalOrder(a, b))
    const byAuthor = new Map<string, RoomEntry[]>()
    for (const e of since) {
      const author = toHex(e.author)
      const theirs = byAuthor.get(author)
      if (theirs === undefined) byAuthor.set(author, [e])
      else theirs.push(e)
    }
    const voided = new Set<RoomEntry>()
    for (const out of removals) {
      // Voided, or by someone admitted nowhere here (by adds that may all be voided): no authority.
      if (voided.has(out) || seniority.get(out) === undefined) continue
      const theirs = (byAuthor.get(subjects.get(out)!) ?? []).filter((x) => x !== out && !voided.has(x))
      if (theirs.length === 0) continue
      const related = this.#related(out, since, floor)
      for (const x of theirs) if (!related.has(x)) voided.add(x)
    }
    const kept = voided.size === 0 ? since : since.filter((e) => !voided.has(e))
    const dormant = removals.filter((r) => seniority.get(r) === undefined).map((r) => toHex(r.author))
    return {
      state: foldControl(kept, base.state),
      admitted,
      dormant: dormant.length === 0 ? base.dormant : new Set([...base.dormant, ...dormant]),
    }
  }

  /**
   * `out` and the entries of `since` (in causal order, all deeper than `floor`) in its past or
   * its future: every one of them but those concurrent with it.
   */
  #related(out: RoomEntry, since: readonly RoomEntry[], floor: number): Set<RoomEntry> {
    const related = new Set([out])
    for (const x of since) {
      if (x.depth > out.depth && this.#up.get(toHex(x.hash))!.some((u) => related.has(u))) related.add(x)
    }
    const stack = [...this.#up.get(toHex(out.hash))!]
    while (stack.length > 0) {
      const n = stack.pop()!
      if (n.depth <= floor || related.has(n)) continue
      related.add(n)
      stack.push(...this.#up.get(toHex(n.hash))!)
    }
    return related
  }
}
