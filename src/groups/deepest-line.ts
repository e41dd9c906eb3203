/**
 * The line of deepest parents below each entry of a room log, with skip pointers (Bitcoin Core's
 * `CBlockIndex::pskip`), so that the entry at any depth on it is found in O(log depth) steps: what
 * a sync names below the heads (`RoomLog.recent`) reaches back to the genesis at little cost.
 */
import type { RoomEntry } from './entry.ts'

/**
 * The depth of an entry's skip pointer (Bitcoin Core's `GetSkipHeight`): lower bits cleared, so
 * that pointers of nearby entries reach far apart and any ancestor is O(log depth) steps away.
 */
function skipDepth(depth: number): number {
  // Bit operations hold to 2^31; a depth needs as many entries above the genesis.
  if (depth < 2 || depth > 0x7fffffff) return Math.max(0, depth - 1)
  const clearLowest = (n: number) => n & (n - 1)
  return depth & 1 ? clearLowest(clearLowest(depth - 1)) + 1 : clearLowest(depth)
}

/** Each entry's deepest parent and its skip pointer. The genesis has none. */
export class DeepestLine {
  readonly #line = new WeakMap<RoomEntry, { readonly down: RoomEntry; readonly skip: RoomEntry }>()

  /** Records `entry`, whose parents held here are `parents` (sorted by hash; none for the genesis). */
  record(entry: RoomEntry, parents: readonly RoomEntry[]): void {
    if (parents.length === 0) return
    // The first of the deepest, as parents are sorted by hash.
    const down = parents.reduce((a, b) => (b.depth > a.depth ? b : a))
    this.#line.set(entry, { down, skip: this.ancestor(down, skipDepth(entry.depth)) })
  }

  /**
   * The entry at `depth` on the line of deepest parents below `from` (recorded; `depth` ≤ its
   * own). Bitcoin Core's `CBlockIndex::GetAncestor`: a skip pointer is taken unless it overshoots,
   * or the entry one step down has one that reaches further without overshooting.
   */
  ancestor(from: RoomEntry, depth: number): RoomEntry {
    let walk = from
    while (walk.depth > depth) {
      const { down, skip } = this.#line.get(walk)!
      const at = skipDepth(walk.depth)
      const next = skipDepth(walk.depth - 1)
      walk = at === depth || (at > depth && !(next < at - 2 && next >= depth)) ? skip : down
    }
    return walk
  }
}
