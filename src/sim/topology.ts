/**
 * Static topologies as edge lists (flat arrays: a0, b0, a1, b1, …): a line, a grid, and a random
 * geometric graph (nodes uniform in a square, linked when within a radius).
 */
import { TalkenError } from '../errors.ts'
import type { Rng } from './rng.ts'
import { SpatialHash } from './spatial-hash.ts'

/** Node i linked to i + 1. */
export function lineEdges(n: number): number[] {
  const edges: number[] = []
  for (let i = 0; i + 1 < n; i++) edges.push(i, i + 1)
  return edges
}

/** Width of the grid {@link gridEdges} lays `n` nodes on: ⌈√n⌉. */
export function gridWidth(n: number): number {
  return Math.ceil(Math.sqrt(n))
}

/** Nodes in rows of ⌈√n⌉ (the last row possibly short), each linked to its 4 neighbours. */
export function gridEdges(n: number): number[] {
  const w = gridWidth(n)
  const edges: number[] = []
  for (let i = 0; i < n; i++) {
    if ((i + 1) % w !== 0 && i + 1 < n) edges.push(i, i + 1)
    if (i + w < n) edges.push(i, i + w)
  }
  return edges
}

/** A random geometric graph and the positions it came from. */
export interface GeometricGraph {
  readonly x: Float64Array
  readonly y: Float64Array
  readonly edges: number[]
}

/** `n` nodes uniform in a `side` × `side` square, linked when at most `radius` apart. */
export function geometricEdges(rng: Rng, n: number, side: number, radius: number): GeometricGraph {
  if (!(side > 0) || !(radius > 0)) throw new TalkenError('invalid_argument', 'side and radius must be > 0')
  const x = new Float64Array(n)
  const y = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    x[i] = rng.range(0, side)
    y[i] = rng.range(0, side)
  }
  const edges: number[] = []
  for (const key of new SpatialHash(side, side, radius).pairKeys(x, y, n, radius)) {
    const a = Math.floor(key / n)
    edges.push(a, key - a * n)
  }
  return { x, y, edges }
}

/** The side of the square in which `n` nodes with link `radius` have `degree` neighbours on average. */
export function sideForDegree(n: number, radius: number, degree: number): number {
  return radius * Math.sqrt((Math.PI * Math.max(1, n - 1)) / degree)
}

/** Each node's component representative (union–find over `edges`). */
export function componentRoots(n: number, edges: readonly number[]): Int32Array {
  const parent = new Int32Array(n)
  for (let i = 0; i < n; i++) parent[i] = i
  const find = (v: number): number => {
    let r = v
    while (parent[r] !== r) r = parent[r]!
    while (parent[v] !== r) {
      const next = parent[v]!
      parent[v] = r
      v = next
    }
    return r
  }
  for (let i = 0; i < edges.length; i += 2) {
    const ra = find(edges[i]!)
    const rb = find(edges[i + 1]!)
    if (ra !== rb) parent[ra] = rb
  }
  for (let v = 0; v < n; v++) parent[v] = find(v)
  return parent
}

/** Number of connected components of the graph. */
export function components(n: number, edges: readonly number[]): number {
  const roots = componentRoots(n, edges)
  let count = 0
  for (let v = 0; v < n; v++) if (roots[v] === v) count++
  return count
}

/** The nodes of the largest connected component, ascending (ties: the lowest root). */
export function largestComponent(n: number, edges: readonly number[]): number[] {
  const roots = componentRoots(n, edges)
  const sizes = new Map<number, number>()
  for (let v = 0; v < n; v++) sizes.set(roots[v]!, (sizes.get(roots[v]!) ?? 0) + 1)
  let best = -1
  let bestSize = 0
  for (const [root, size] of [...sizes].sort((a, b) => a[0] - b[0])) {
    if (size > bestSize) {
      best = root
      bestSize = size
    }
  }
  const out: number[] = []
  for (let v = 0; v < n; v++) if (roots[v] === best) out.push(v)
  return out
}
