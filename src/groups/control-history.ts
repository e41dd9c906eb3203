/**
 * The control entries of a room's history (every kind but post) as a graph of their own, and the
 * membership state at any set of entries: the fold of the control entries in their causal past.
 *
 * Each entry records only its *control frontier*: the control entries at the top of its
 * inclusive causal past (one, unless concurrent control entries have not been merged since);
 * each control entry, the frontier of its parents. States are kept per control entry (the state
 * after it) and, for frontiers of several entries, in a bounded cache. So memory grows with the
 * number of entries, not with its square: keeping each control entry's whole past as a list made
 * a member who wrote thousands of rotations cost every replica hundreds of MB.
 */
import { BoundedMap } from '../mesh/bounded-map.ts'
import { bytesEqual } from '../wire/cbor.ts'
import { compareBytes, type RoomEntry, toHex } from './entry.ts'
import { EMPTY_STATE, foldControl, foldOne, isControl, type RoomState } from './membership.ts'
import { decodeAddBody, decodeRemoveBody } from './room-bodies.ts'

/** States of frontiers of several control entries (concurrent branches), kept at most. */
const MERGED_STATES = 256

/** Causal order: by depth, ties broken by hash. */
export function byCausalOrder(a: RoomEntry, b: RoomEntry): number {
  return a.depth - b.depth || compareBytes(a.hash, b.hash)
}

/** Whom a `remove` or `leave` takes out. */
function removalSubject(e: RoomEntry): Uint8Array {
  return e.kind === 'leave' ? e.author : decodeRemoveBody(e.body).member
}

/** The control graph and states of one room log. */
export class ControlHistory {
  /** For each recorded entry (hex), its control frontier, sorted by hash. */
  readonly #frontier = new Map<string, readonly RoomEntry[]>()
  /** For each control entry (hex), the control frontier of its parents. */
  readonly #up = new Map<string, readonly RoomEntry[]>()
  /** For each control entry (hex), the state after it. */
  readonly #after = new Map<string, RoomState>()
  /** States of frontiers of several entries, by their hashes joined. */
  readonly #merged = new BoundedMap<string, RoomState>(MERGED_STATES)

  /** The state at `entries` (each recorded): the fold of the control entries in their pasts. */
  stateAt(entries: readonly RoomEntry[]): RoomState {
    const frontier = this.#frontierOf(entries)
    if (frontier.length === 0) return EMPTY_STATE
    if (frontier.length === 1) return this.#after.get(toHex(frontier[0]!.hash))!
    const key = frontier.map((e) => toHex(e.hash)).join()
    let state = this.#merged.get(key)
    if (state === undefined) {
      state = foldControl(this.#counting(this.#pastOf(frontier)))
      this.#merged.set(key, state)
    }
    return state
  }

  /** Whether the inclusive past of `entry` (recorded) holds a `remove` or `leave` of `account`. */
  takesOut(entry: RoomEntry, account: Uint8Array): boolean {
    return this.#pastOf(this.#frontierOf([entry])).some(
      (e) => (e.kind === 'remove' || e.kind === 'leave') && bytesEqual(removalSubject(e), account),
    )
  }

  /**
   * Records an entry whose parents are recorded, once it was found valid against `before`, the
   * state at its parents. An entry is concurrent with nothing in its own past (all of it is its
   * ancestors), so it voids nothing there and contests no admission there (see
   * {@link #counting}): the state after a control entry is one fold step past `before`, unless it
   * is an add.
   */
  record(entry: RoomEntry, parents: readonly RoomEntry[], before: RoomState): void {
    const id = toHex(entry.hash)
    if (!isControl(entry)) {
      this.#frontier.set(id, this.#frontierOf(parents))
      return
    }
    this.#up.set(id, this.#frontierOf(parents))
    this.#frontier.set(id, [entry])
    // An add can be the first admission of someone who wrote removals in its past (those they
    // wrote under an admission that a concurrent removal contests there): it moves their
    // seniority, so the entries it decides are folded again. Adds are few (a room holds 128).
    this.#after.set(
      id,
      entry.kind === 'add' ? foldControl(this.#counting(this.#pastOf([entry]))) : foldOne(before, entry),
    )
  }

  /** Forgets an entry recorded last (its transaction was undone). */
  forget(entry: RoomEntry): void {
    const id = toHex(entry.hash)
    this.#frontier.delete(id)
    this.#up.delete(id)
    this.#after.delete(id)
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

  /** The control entries in the inclusive pasts of `frontier`, in causal order. */
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
    return [...found.values()].sort(byCausalOrder)
  }

  /**
   * The control entries of `list` (in causal order) that count. A `remove` or `leave` wins over
   * every entry by the member it takes out that is concurrent with it (neither in the other's
   * past): otherwise a removed member could write entries whose parents predate the removal (a
   * "backdated" `add` of an accomplice), valid in the past they name, and ordered before the
   * removal in the fold. One that an earlier one already voided voids nothing, so two admins
   * removing each other at once give one verdict; and "earlier" is by seniority, never by depth,
   * which an author chooses: removals are taken in the order their authors were first admitted
   * (the founder by genesis, everyone else by the first `add` of them whose author was not taken
   * out concurrently with it), then in causal order. A removed admin cannot move their admission,
   * so a backdated removal of the admin who removed them loses to that removal when the remover
   * is senior; nobody can make themselves senior to the admin who admitted them; an `add` that a
   * removal may void moves nobody's seniority, and a removal by someone admitted by no other add
   * voids nothing; and a later re-admission moves nobody's seniority.
   */
  #counting(list: readonly RoomEntry[]): readonly RoomEntry[] {
    const removals = list.filter((e) => e.kind === 'remove' || e.kind === 'leave')
    if (removals.length === 0) return list
    const subjects = new Map(removals.map((r) => [r, toHex(removalSubject(r))]))
    const admitted = new Map<string, number>()
    list.forEach((e, i) => {
      if (e.kind !== 'genesis' && e.kind !== 'add') return
      const member = toHex(e.kind === 'genesis' ? e.author : decodeAddBody(e.body).member)
      if (admitted.has(member)) return
      // An add whose author was taken out concurrently may be voided: it admits nobody here.
      const author = toHex(e.author)
      const contested = removals.some(
        (r) => subjects.get(r) === author && !this.#isAncestor(r, e) && !this.#isAncestor(e, r),
      )
      if (!contested) admitted.set(member, i)
    })
    const seniority = (e: RoomEntry) => admitted.get(toHex(e.author)) ?? Number.POSITIVE_INFINITY
    const order = new Map(list.map((e, i) => [e, i]))
    removals.sort((a, b) => {
      const d = seniority(a) - seniority(b)
      return Number.isNaN(d) || d === 0 ? order.get(a)! - order.get(b)! : d
    })
    const voided = new Set<RoomEntry>()
    for (const out of removals) {
      // Voided, or by someone admitted nowhere here (by adds that may all be voided): no authority.
      if (voided.has(out) || seniority(out) === Number.POSITIVE_INFINITY) continue
      const subject = removalSubject(out)
      const outPast = new Set(this.#pastOf([out]))
      for (const x of list) {
        if (x === out || voided.has(x) || !bytesEqual(x.author, subject)) continue
        if (outPast.has(x) || this.#isAncestor(out, x)) continue
        voided.add(x)
      }
    }
    return voided.size === 0 ? list : list.filter((e) => !voided.has(e))
  }
}
