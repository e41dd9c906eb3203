/**
 * Distance-vector routes with sequence numbers and Babel's feasibility condition (RFC 8966 §2.4,
 * §3.5), so that the routes a node selects never form a loop, even while the network changes.
 *
 * For every destination the table keeps what each neighbour last advertised (a candidate), the
 * route it selected, and its feasibility distance FD = (seqno, metric): the best route it has
 * advertised to others. A candidate (s, m) is feasible when s is newer than FD's seqno, or equal
 * with m strictly smaller than FD's metric. Only feasible candidates are selected; when none is,
 * the destination is unreachable until a newer seqno arrives (which the node asks for with a
 * route request). Pure state: no I/O, no clock of its own (times are passed in).
 */
import { BoundedMap } from './bounded-map.ts'
import { INFINITY_METRIC } from './frames.ts'
import type { NeighbourId } from './router.ts'

/** Forgetting passes (see {@link RoutingTable.expire}) run at most this often. */
const FORGET_PASS_MS = 60_000
/**
 * Feasibility distances of destinations forgotten to make room, kept this many: learned again,
 * a destination takes its old one back. Without it, routes still out there from before (through
 * us, say) would be feasible again, and could loop (Babel keeps a source's FD for as long as a
 * route may still use it, RFC 8966 §3.2.6). 40 bytes or so each.
 */
const GHOST_FDS = 4096

/** What one neighbour advertised for a destination. */
interface Candidate {
  readonly neighbour: NeighbourId
  readonly seqno: number
  /** Metric through this neighbour: its advertised metric + 1 (or INFINITY). */
  readonly metric: number
  readonly expiresAt: number
  /**
   * The neighbour itself, which proved in its Hello that it is the destination: a route straight
   * to the destination cannot loop, so no feasibility condition holds it back (a false claim of
   * the tag may have raised the feasibility distance).
   */
  readonly direct?: boolean
}

/** A route as advertised to neighbours (metric INFINITY: a retraction). */
export interface Advert {
  readonly dest: Uint8Array
  readonly seqno: number
  readonly metric: number
  /** The neighbour the route goes through ('' for a retraction or ourselves). */
  readonly nextHop: NeighbourId
}

/** A selected route. */
export interface Route {
  readonly dest: Uint8Array
  readonly nextHop: NeighbourId
  readonly metric: number
  readonly seqno: number
}

interface DestEntry {
  /** Creation order: lists of destinations come out in it, whichever index found them. */
  readonly seq: number
  readonly key: string
  readonly dest: Uint8Array
  readonly candidates: Map<NeighbourId, Candidate>
  selected: Candidate | undefined
  /** Feasibility distance; undefined until a route was first selected. */
  fd: { seqno: number; metric: number } | undefined
  /** A candidate was offered since the last forgetting pass. */
  offered: boolean
  /** The pass that first found the entry without candidates (+∞ while it has some). */
  emptySince: number
}

/** Seqno comparison, modulo 2^32 as in RFC 8966 §3.2.1 (s1 newer than s2). */
export function seqnoNewer(s1: number, s2: number): boolean {
  return s1 !== s2 && (s1 - s2) >>> 0 < 0x80000000
}

/** Entries in creation order (the order of the table itself). */
function bySeq(entries: Iterable<DestEntry>): DestEntry[] {
  return [...entries].sort((a, b) => a.seq - b.seq)
}

/** Hex key of a 16-byte tag. */
export function tagKey(tag: Uint8Array): string {
  return Buffer.from(tag.buffer, tag.byteOffset, tag.byteLength).toString('hex')
}

/** The routing table of one node. */
export class RoutingTable {
  readonly #entries = new Map<string, DestEntry>()
  #seq = 0
  /** Neighbour → the destinations it offers a candidate for (a link going down visits only those). */
  readonly #byNeighbour = new Map<NeighbourId, Set<DestEntry>>()
  /** Destinations whose selected route changed since they were last advertised. */
  readonly #dirty = new Set<DestEntry>()
  readonly #maxDestinations: number
  /** Feasibility distances of destinations forgotten to make room (see {@link GHOST_FDS}). */
  readonly #ghosts = new BoundedMap<string, { seqno: number; metric: number }>(GHOST_FDS)
  /** No candidate expires before this time (a lower bound), so most expiry passes are skipped. */
  #nextExpiry = Number.POSITIVE_INFINITY
  /** How long a destination nobody offers is kept, feasibility distance included. */
  readonly #forgetAfterMs: number
  #nextForget = Number.NEGATIVE_INFINITY
  /** Selected routes at least this long count as far (see {@link hasFar}). */
  readonly #farMetric: number
  /** How many selected routes are far. */
  #far = 0
  readonly #onChange: ((destKey: string) => void) | undefined

  /**
   * `maxDestinations` bounds memory: beyond it, the farthest unreachable destinations are
   * forgotten. Selected routes of at least `farMetric` hops are counted (default: never).
   * `onChange` hears of every destination whose selected route changed (or was forgotten).
   * A destination no neighbour has offered for `forgetAfterMs` (default: never) is forgotten by
   * {@link expire}; see there.
   */
  constructor(options: {
    maxDestinations: number
    farMetric?: number
    onChange?: (destKey: string) => void
    forgetAfterMs?: number
  }) {
    this.#maxDestinations = options.maxDestinations
    this.#forgetAfterMs = options.forgetAfterMs ?? Number.POSITIVE_INFINITY
    this.#farMetric = options.farMetric ?? INFINITY_METRIC
    this.#onChange = options.onChange
  }

  /** True when some selected route is at least `farMetric` hops long. */
  hasFar(): boolean {
    return this.#far > 0
  }

  /** True when the table has an entry for `destKey`: a route is selected, offered, or was once. */
  knows(destKey: string): boolean {
    return this.#entries.has(destKey)
  }

  /** Number of destinations known (reachable or not). */
  get size(): number {
    return this.#entries.size
  }

  #feasible(e: DestEntry, c: Candidate): boolean {
    if (c.metric >= INFINITY_METRIC) return false
    if (e.fd === undefined || c.direct === true) return true
    return seqnoNewer(c.seqno, e.fd.seqno) || (c.seqno === e.fd.seqno && c.metric < e.fd.metric)
  }

  /**
   * Records an advertisement from `neighbour`: (`seqno`, `advertisedMetric`) for `dest`, valid
   * until `expiresAt`; `direct` when the neighbour proved it is `dest` (see {@link Candidate}).
   * Returns true when the selected route changed.
   */
  update(
    dest: Uint8Array,
    neighbour: NeighbourId,
    seqno: number,
    advertisedMetric: number,
    expiresAt: number,
    direct = false,
  ): boolean {
    const key = tagKey(dest)
    let e = this.#entries.get(key)
    const metric = advertisedMetric >= INFINITY_METRIC ? INFINITY_METRIC : advertisedMetric + 1
    if (e === undefined) {
      if (metric >= INFINITY_METRIC) return false
      this.#makeRoom()
      e = {
        seq: this.#seq++,
        key,
        dest: new Uint8Array(dest),
        candidates: new Map(),
        selected: undefined,
        fd: this.#ghosts.get(key),
        offered: true,
        emptySince: Number.POSITIVE_INFINITY,
      }
      this.#entries.set(key, e)
      this.#ghosts.delete(key)
    }
    const wasStarved = e.selected === undefined && e.candidates.size > 0
    if (metric >= INFINITY_METRIC) this.#dropCandidate(e, neighbour)
    else {
      e.candidates.set(
        neighbour,
        direct ? { neighbour, seqno, metric, expiresAt, direct } : { neighbour, seqno, metric, expiresAt },
      )
      e.offered = true
      let offered = this.#byNeighbour.get(neighbour)
      if (offered === undefined) {
        offered = new Set()
        this.#byNeighbour.set(neighbour, offered)
      }
      offered.add(e)
      if (expiresAt < this.#nextExpiry) this.#nextExpiry = expiresAt
    }
    return this.#select(e, wasStarved)
  }

  /** Drops every candidate through `neighbour` (its link went down). Returns destinations whose route changed. */
  dropNeighbour(neighbour: NeighbourId): Uint8Array[] {
    const offered = this.#byNeighbour.get(neighbour)
    if (offered === undefined) return []
    this.#byNeighbour.delete(neighbour)
    const changed: Uint8Array[] = []
    for (const e of bySeq(offered)) {
      if (e.candidates.delete(neighbour) && this.#select(e)) changed.push(e.dest)
    }
    return changed
  }

  /** Removes `neighbour`'s candidate for `e`; false when it had none. */
  #dropCandidate(e: DestEntry, neighbour: NeighbourId): boolean {
    if (!e.candidates.delete(neighbour)) return false
    const offered = this.#byNeighbour.get(neighbour)
    offered?.delete(e)
    if (offered?.size === 0) this.#byNeighbour.delete(neighbour)
    return true
  }

  /**
   * Drops expired candidates, and forgets destinations nobody has offered for `forgetAfterMs`.
   * Returns destinations whose route changed.
   *
   * Forgetting drops the feasibility distance too (Babel's source garbage collection, RFC 8966
   * §3.2.5): a destination that comes back later is accepted with whatever seqno it brings, so
   * nobody has to flood a request for a newer one, and a destination long out of reach is no
   * longer asked for. It cannot make a loop: our last advertisement of the route was sent before
   * its last candidate went, and every neighbour lets what it heard from us expire within the
   * hold time (sooner if the retraction or the link going down reached it).
   */
  expire(now: number): Uint8Array[] {
    const changed: Uint8Array[] = []
    if (now >= this.#nextForget) this.#forget(now)
    if (now < this.#nextExpiry) return changed
    let next = Number.POSITIVE_INFINITY
    for (const e of this.#entries.values()) {
      let removed = false
      for (const [n, c] of e.candidates) {
        if (c.expiresAt <= now) {
          this.#dropCandidate(e, n)
          removed = true
        } else if (c.expiresAt < next) next = c.expiresAt
      }
      if (removed && this.#select(e)) changed.push(e.dest)
    }
    this.#nextExpiry = next
    return changed
  }

  /**
   * Re-runs selection; returns true when the selected route changed (next hop, metric or seqno).
   * `onChange` also hears of a destination that just became starved (offered, but unfeasibly):
   * a route request may now help.
   */
  #select(e: DestEntry, wasStarved = false): boolean {
    let best: Candidate | undefined
    for (const c of e.candidates.values()) {
      if (!this.#feasible(e, c) && c !== this.#sameAsSelected(e, c)) continue
      if (best === undefined || this.#better(c, best, e.selected)) best = c
    }
    const before = e.selected
    e.selected = best
    if (before !== undefined && before.metric >= this.#farMetric) this.#far--
    if (best !== undefined && best.metric >= this.#farMetric) this.#far++
    if (best !== undefined) {
      if (e.fd === undefined || seqnoNewer(best.seqno, e.fd.seqno))
        e.fd = { seqno: best.seqno, metric: best.metric }
      else if (best.seqno === e.fd.seqno && best.metric < e.fd.metric) e.fd.metric = best.metric
    }
    const changed =
      before?.neighbour !== best?.neighbour ||
      before?.metric !== best?.metric ||
      before?.seqno !== best?.seqno
    if (changed) {
      this.#dirty.add(e)
      this.#onChange?.(e.key)
    } else if (!wasStarved && best === undefined && e.candidates.size > 0) this.#onChange?.(e.key)
    return changed
  }

  /** Lower metric wins; on a tie the current next hop (stability), then the smaller neighbour ID. */
  #better(c: Candidate, best: Candidate, current: Candidate | undefined): boolean {
    if (c.metric !== best.metric) return c.metric < best.metric
    if (
      current !== undefined &&
      (c.neighbour === current.neighbour) !== (best.neighbour === current.neighbour)
    ) {
      return c.neighbour === current.neighbour
    }
    return c.neighbour < best.neighbour
  }

  /**
   * The selected candidate itself stays usable while its neighbour keeps advertising the same
   * seqno with a metric no worse than FD (RFC 8966 §3.5.1: updates from the current next hop
   * that are not feasible retract the route unless they are).
   */
  #sameAsSelected(e: DestEntry, c: Candidate): Candidate | undefined {
    const s = e.selected
    if (s === undefined || s.neighbour !== c.neighbour || e.fd === undefined) return undefined
    return c.seqno === e.fd.seqno && c.metric <= e.fd.metric ? c : undefined
  }

  /** The selected route to `dest`, if any. */
  lookup(dest: Uint8Array): Route | undefined {
    return this.lookupKey(tagKey(dest))
  }

  /** The next hop of the selected route to the destination whose hex tag is `destKey`, if any. */
  nextHopByKey(destKey: string): NeighbourId | undefined {
    return this.#entries.get(destKey)?.selected?.neighbour
  }

  /** {@link lookup} by hex tag. */
  lookupKey(destKey: string): Route | undefined {
    const e = this.#entries.get(destKey)
    const s = e?.selected
    if (e === undefined || s === undefined) return undefined
    return { dest: e.dest, nextHop: s.neighbour, metric: s.metric, seqno: s.seqno }
  }

  /** The seqno a route request for `dest` should ask to exceed (FD's seqno), if any. */
  feasibilitySeqno(dest: Uint8Array): number | undefined {
    return this.#entries.get(tagKey(dest))?.fd?.seqno
  }

  /** Every selected route, as advertised in a full dump, nearest first. */
  adverts(): Advert[] {
    const out: Advert[] = []
    for (const e of this.#entries.values()) {
      const s = e.selected
      if (s) out.push({ dest: e.dest, seqno: s.seqno, metric: s.metric, nextHop: s.neighbour })
    }
    return out.sort((a, b) => a.metric - b.metric)
  }

  /** The destinations changed since {@link clearDirty}: their selected route, or a retraction. */
  peekDirty(): Advert[] {
    const out: Advert[] = []
    for (const e of bySeq(this.#dirty)) {
      if (e.selected)
        out.push({
          dest: e.dest,
          seqno: e.selected.seqno,
          metric: e.selected.metric,
          nextHop: e.selected.neighbour,
        })
      else if (e.fd) out.push({ dest: e.dest, seqno: e.fd.seqno, metric: INFINITY_METRIC, nextHop: '' })
    }
    return out
  }

  /** Marks every destination as advertised. */
  clearDirty(): void {
    this.#dirty.clear()
  }

  /** True when some destination changed since it was last advertised. */
  hasDirty(): boolean {
    return this.#dirty.size > 0
  }

  /**
   * One forgetting pass (at most one a {@link FORGET_PASS_MS}): an entry found without candidates,
   * none offered since the pass before, is marked; one marked at least `forgetAfterMs` and one
   * more pass ago goes (the pass a margin for what is still in flight). A mark is never earlier
   * than the last candidate went, so nothing goes early.
   */
  #forget(now: number): void {
    if (this.#forgetAfterMs === Number.POSITIVE_INFINITY) {
      this.#nextForget = Number.POSITIVE_INFINITY
      return
    }
    this.#nextForget = now + FORGET_PASS_MS
    for (const [k, e] of this.#entries) {
      if (e.candidates.size > 0 || e.offered) {
        e.offered = false
        e.emptySince = Number.POSITIVE_INFINITY
      } else if (e.emptySince === Number.POSITIVE_INFINITY) e.emptySince = now
      else if (now - e.emptySince >= this.#forgetAfterMs + FORGET_PASS_MS && !this.#dirty.has(e)) {
        this.#entries.delete(k)
      }
    }
  }

  #makeRoom(): void {
    if (this.#entries.size < this.#maxDestinations) return
    // Forget an unreachable destination first, else the farthest one; the farthest of those a
    // neighbour offers when it offers more than half the table, so that a neighbour making up
    // destinations by the thousand cannot push out the routes the others offer.
    let gone: DestEntry | undefined
    for (const e of this.#entries.values()) {
      if (e.selected !== undefined) continue
      gone = e
      break
    }
    if (gone === undefined) {
      let pool: Iterable<DestEntry> = this.#entries.values()
      for (const offered of this.#byNeighbour.values()) {
        if (offered.size > this.#maxDestinations / 2) pool = offered
      }
      let worst = -1
      for (const e of pool) {
        const m = e.selected?.metric ?? INFINITY_METRIC
        if (m > worst) {
          worst = m
          gone = e
        }
      }
    }
    if (gone === undefined) return
    const m = gone.selected?.metric
    if (m !== undefined && m >= this.#farMetric) this.#far--
    for (const n of [...gone.candidates.keys()]) this.#dropCandidate(gone, n)
    this.#dirty.delete(gone)
    this.#entries.delete(gone.key)
    if (gone.fd !== undefined) this.#ghosts.set(gone.key, gone.fd)
    if (m !== undefined) this.#onChange?.(gone.key)
  }
}
