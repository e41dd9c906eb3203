/**
 * A uniform grid over the plane for finding every pair of points closer than a radius in time
 * linear in the number of points (for a bounded density). Points are bucketed by cell with a
 * counting sort; each non-empty cell is compared with itself and its four "forward" neighbours
 * (east, south-west, south, south-east), so every close pair is examined exactly once. Pairs come
 * out as sorted keys `a·n + b` (a < b) in a reused typed array: nothing is allocated per call once
 * the buffers have grown.
 */

/** Finds close pairs among points in a `width` × `height` area. */
export class SpatialHash {
  private readonly cols: number
  private readonly rows: number
  private readonly cell: number
  private readonly cellStart: Int32Array
  private readonly fillAt: Int32Array
  private items = new Int32Array(0)
  private cellOf = new Int32Array(0)
  private nonEmpty = new Int32Array(0)
  private keys = new Float64Array(1024)
  private spare = new Float64Array(1024)
  private readonly buckets = new Int32Array(RADIX)

  /** `radius` is the largest distance that will be asked; cells are at least that wide. */
  constructor(width: number, height: number, radius: number, maxCells = 1 << 22) {
    let cell = Math.max(radius, 1e-9)
    while (Math.ceil(width / cell) * Math.ceil(height / cell) > maxCells) cell *= 2
    this.cell = cell
    this.cols = Math.max(1, Math.ceil(width / cell))
    this.rows = Math.max(1, Math.ceil(height / cell))
    this.cellStart = new Int32Array(this.cols * this.rows + 1)
    this.fillAt = new Int32Array(this.cols * this.rows)
  }

  /**
   * The keys `a·n + b` of all pairs a < b at most `radius` apart, ascending. The returned view is
   * valid until the next call.
   */
  pairKeys(x: Float64Array, y: Float64Array, n: number, radius: number): Float64Array {
    const { cols, rows, cell, cellStart, fillAt } = this
    const cells = cols * rows
    if (this.items.length < n) {
      this.items = new Int32Array(n)
      this.cellOf = new Int32Array(n)
      this.nonEmpty = new Int32Array(n)
    }
    const items = this.items
    const cellOf = this.cellOf
    cellStart.fill(0)
    for (let i = 0; i < n; i++) {
      let cx = Math.floor(x[i]! / cell)
      let cy = Math.floor(y[i]! / cell)
      cx = cx < 0 ? 0 : cx >= cols ? cols - 1 : cx
      cy = cy < 0 ? 0 : cy >= rows ? rows - 1 : cy
      const c = cy * cols + cx
      cellOf[i] = c
      cellStart[c + 1]!++
    }
    let filled = 0
    for (let c = 0; c < cells; c++) {
      if (cellStart[c + 1]! > 0) this.nonEmpty[filled++] = c
      cellStart[c + 1]! += cellStart[c]!
      fillAt[c] = cellStart[c]!
    }
    for (let i = 0; i < n; i++) items[fillAt[cellOf[i]!]!++] = i
    const r2 = radius * radius
    const nonEmpty = this.nonEmpty
    // At most this many pairs per cell visit; grow the key buffer before each cell, not per pair.
    let keys = this.keys
    let count = 0
    for (let k = 0; k < filled; k++) {
      const c = nonEmpty[k]!
      const s = cellStart[c]!
      const e = cellStart[c + 1]!
      const cx = c % cols
      const cy = (c - cx) / cols
      for (let f = -1; f < 4; f++) {
        // f = -1: the cell itself; 0: east; 1..3: south-west, south, south-east.
        const nx = f <= 0 ? cx + f + 1 : cx + f - 2
        const ny = f <= 0 ? cy : cy + 1
        if (f === -1) {
          if (e - s < 2) continue
        } else if (nx < 0 || nx >= cols || ny >= rows) continue
        const cc = f === -1 ? c : ny * cols + nx
        const s2 = cellStart[cc]!
        const e2 = cellStart[cc + 1]!
        if (s2 === e2) continue
        const most = count + (e - s) * (e2 - s2)
        if (most > keys.length) {
          const bigger = new Float64Array(Math.max(most, keys.length * 2))
          bigger.set(keys.subarray(0, count))
          keys = bigger
          this.keys = keys
        }
        for (let i = s; i < e; i++) {
          const a = items[i]!
          const xa = x[a]!
          const ya = y[a]!
          for (let j = f === -1 ? i + 1 : s2; j < e2; j++) {
            const b = items[j]!
            const dx = x[b]! - xa
            const dy = y[b]! - ya
            if (dx * dx + dy * dy <= r2) keys[count++] = a < b ? a * n + b : b * n + a
          }
        }
      }
    }
    return this.sortKeys(count, n * n)
  }

  /**
   * LSD radix sort of keys[0, count) (integers below `bound`), 11 bits a pass: a few linear
   * passes instead of a comparison sort, which dominated the cost of a step.
   */
  private sortKeys(count: number, bound: number): Float64Array {
    if (this.spare.length < this.keys.length) this.spare = new Float64Array(this.keys.length)
    let src = this.keys
    let dst = this.spare
    const buckets = this.buckets
    for (let div = 1; div < bound; div *= RADIX) {
      buckets.fill(0)
      for (let i = 0; i < count; i++) buckets[Math.floor(src[i]! / div) % RADIX]!++
      let sum = 0
      for (let d = 0; d < RADIX; d++) {
        const c = buckets[d]!
        buckets[d] = sum
        sum += c
      }
      for (let i = 0; i < count; i++) {
        const k = src[i]!
        dst[buckets[Math.floor(k / div) % RADIX]!++] = k
      }
      const t = src
      src = dst
      dst = t
    }
    this.keys = src
    this.spare = dst
    return src.subarray(0, count)
  }
}

/** Radix of {@link SpatialHash}'s key sort: 2^11. */
const RADIX = 2048
