/**
 * A mesh core's neighbours: one per link that is up, found by the host's link ID and, once its
 * Hello arrived, by its destination tag. Each keeps what the neighbour said about itself (tag and
 * encounter count in its Hello, its Summary) and how many of our data frames await its hop
 * acknowledgement.
 */
import type { NeighbourId } from './router.ts'

/** One neighbour: a link that is up. */
export interface Neighbour {
  readonly id: NeighbourId
  /** The largest frame the link carries. */
  readonly mtu: number
  /** Its destination tag, once its Hello arrived. */
  tag: Uint8Array | undefined
  tagKey: string | undefined
  /** Its Hello proved that the link speaks for the tag's account (`RouterHost.verifyHello`). */
  verified: boolean
  /** ID prefixes (hex) it said it has: held, or delivered to it (its Summary). */
  has: Set<string>
  /** How many encounters it reported (in its Hello). */
  encounters: number
  /** Our data frames awaiting its hop acknowledgement. */
  inflight: number
  /** When a Hello of this link last changed what the pump reads (mesh-core.ts `#onHello`). */
  helloChangedAt: number
  /** The last Hello proof this link sent, for its tag, and whether it proved it (mesh-core.ts). */
  lastProof?: {
    readonly tagKey: string
    readonly proof: Uint8Array
    readonly verified: boolean
    /** When it was checked. */
    readonly at: number
  }
}

/** The neighbours of one mesh core. */
export class NeighbourTable {
  readonly #byId = new Map<NeighbourId, Neighbour>()
  /** Destination tag (hex) → the link its latest Hello came over. */
  readonly #byTag = new Map<string, NeighbourId>()

  /** A link came up: a neighbour not yet named (it replaces any entry of the same link). */
  add(id: NeighbourId, mtu: number): Neighbour {
    const n: Neighbour = {
      id,
      mtu,
      tag: undefined,
      tagKey: undefined,
      verified: false,
      has: new Set(),
      encounters: 0,
      inflight: 0,
      helloChangedAt: Number.NEGATIVE_INFINITY,
    }
    this.#byId.set(id, n)
    return n
  }

  /** The link went down: forgets the neighbour, and its tag unless a later Hello moved it to another link. */
  remove(id: NeighbourId): Neighbour | undefined {
    const n = this.#byId.get(id)
    if (n === undefined) return undefined
    this.#byId.delete(id)
    if (n.tagKey !== undefined && this.#byTag.get(n.tagKey) === id) this.#byTag.delete(n.tagKey)
    return n
  }

  /**
   * The neighbour's Hello named it `tag` (`key` in hex), proved (`verified`) or only claimed: the
   * tag now leads to this link. Returns false, naming nothing, when the Hello only claims a tag
   * that another link proved: anyone can claim anyone's tag (it is in every Hello they send).
   */
  name(n: Neighbour, tag: Uint8Array, key: string, verified: boolean): boolean {
    const holder = this.#byTag.get(key)
    if (!verified && holder !== undefined && holder !== n.id && this.#byId.get(holder)?.verified) return false
    if (n.tagKey !== undefined && n.tagKey !== key && this.#byTag.get(n.tagKey) === n.id) {
      this.#byTag.delete(n.tagKey)
    }
    n.tag = new Uint8Array(tag)
    n.tagKey = key
    n.verified = verified
    this.#byTag.set(key, n.id)
    return true
  }

  /** The neighbour is not the node its Hello named (another link proved it is): unnamed again. */
  unname(n: Neighbour): void {
    if (n.tagKey !== undefined && this.#byTag.get(n.tagKey) === n.id) this.#byTag.delete(n.tagKey)
    n.tag = undefined
    n.tagKey = undefined
    n.verified = false
  }

  /** The link the node whose tag is `key` (hex) said Hello over last, if it is up. */
  byTag(key: string): Neighbour | undefined {
    const id = this.#byTag.get(key)
    return id === undefined ? undefined : this.#byId.get(id)
  }

  get(id: NeighbourId): Neighbour | undefined {
    return this.#byId.get(id)
  }

  has(id: NeighbourId): boolean {
    return this.#byId.has(id)
  }

  /** Whether the node whose tag is `key` (hex) is a neighbour (its Hello arrived over a link that is up). */
  hasTag(key: string): boolean {
    return this.#byTag.has(key)
  }

  /** Neighbours whose Hello arrived. */
  get named(): number {
    return this.#byTag.size
  }

  /** Links that are up. */
  get size(): number {
    return this.#byId.size
  }

  ids(): IterableIterator<NeighbourId> {
    return this.#byId.keys()
  }

  values(): IterableIterator<Neighbour> {
    return this.#byId.values()
  }

  /** One of our data frames to `id` is settled (acknowledged, timed out or given up). */
  settle(id: NeighbourId): void {
    const n = this.#byId.get(id)
    if (n !== undefined) n.inflight = Math.max(0, n.inflight - 1)
  }
}
