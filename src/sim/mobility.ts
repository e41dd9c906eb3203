/**
 * Random waypoint mobility (Johnson and Maltz, 1996; the model of The ONE's `RandomWaypoint`):
 * each node picks a uniformly random point in the area and a speed in [min, max), walks there in
 * a straight line, pauses for a time in [min, max), and repeats.
 *
 * Positions are advanced in fixed steps (1 s by default); after each step a spatial hash finds
 * the pairs within radio range, and the difference with the previous step's pairs becomes
 * link-down and link-up events. Each step costs O(n) for a bounded density, so 10,000 nodes are
 * cheap. A contact shorter than a step may be missed; contact times have the step's resolution.
 */
import type { Rng } from './rng.ts'
import { InputKind, type ScheduleBuilder } from './schedule.ts'
import { SpatialHash } from './spatial-hash.ts'

/** Parameters of {@link randomWaypoint}. */
export interface RandomWaypointOptions {
  readonly nodes: number
  /** Metres. */
  readonly width: number
  readonly height: number
  /** Radio range, metres. */
  readonly radius: number
  /** Metres per second. */
  readonly speedMin: number
  readonly speedMax: number
  readonly pauseMinMs: number
  readonly pauseMaxMs: number
  readonly durationMs: number
  /** Default 1000 ms. */
  readonly stepMs?: number
}

/** What the mobility run produced, for the scenario report. */
export interface MobilityStats {
  readonly contacts: number
  /** Neighbours per node, averaged over nodes and steps. */
  readonly meanDegree: number
}

/** Simulates the movement and appends the resulting contact events to `out`. */
export function randomWaypoint(rng: Rng, o: RandomWaypointOptions, out: ScheduleBuilder): MobilityStats {
  const n = o.nodes
  const step = o.stepMs ?? 1000
  const x = new Float64Array(n)
  const y = new Float64Array(n)
  const tx = new Float64Array(n)
  const ty = new Float64Array(n)
  const speed = new Float64Array(n)
  const pause = new Float64Array(n) // milliseconds left
  const leg = (i: number) => {
    tx[i] = rng.range(0, o.width)
    ty[i] = rng.range(0, o.height)
    speed[i] = rng.range(o.speedMin, o.speedMax)
  }
  for (let i = 0; i < n; i++) {
    x[i] = rng.range(0, o.width)
    y[i] = rng.range(0, o.height)
    leg(i)
  }
  const hash = new SpatialHash(o.width, o.height, o.radius)
  let prev = new Float64Array(0)
  let contacts = 0
  let degreeSum = 0
  let steps = 0
  for (let t = 0; t <= o.durationMs; t += step) {
    if (t > 0) {
      const dt = step / 1000
      for (let i = 0; i < n; i++) {
        if (pause[i]! > 0) {
          pause[i] = pause[i]! - step
          continue
        }
        const dx = tx[i]! - x[i]!
        const dy = ty[i]! - y[i]!
        const dist = Math.sqrt(dx * dx + dy * dy)
        const move = speed[i]! * dt
        if (move >= dist) {
          x[i] = tx[i]!
          y[i] = ty[i]!
          pause[i] = rng.range(o.pauseMinMs, o.pauseMaxMs)
          leg(i)
        } else {
          x[i] = x[i]! + (dx / dist) * move
          y[i] = y[i]! + (dy / dist) * move
        }
      }
    }
    const cur = hash.pairKeys(x, y, n, o.radius)
    // Both lists are sorted: merge them, emitting downs for pairs gone and ups for pairs new.
    let i = 0
    let j = 0
    while (i < prev.length || j < cur.length) {
      const p = i < prev.length ? prev[i]! : Number.POSITIVE_INFINITY
      const c = j < cur.length ? cur[j]! : Number.POSITIVE_INFINITY
      if (p === c) {
        i++
        j++
      } else if (p < c) {
        const a = Math.floor(p / n)
        out.add(t, InputKind.linkDown, a, p - a * n)
        i++
      } else {
        const a = Math.floor(c / n)
        out.add(t, InputKind.linkUp, a, c - a * n)
        contacts++
        j++
      }
    }
    degreeSum += (2 * cur.length) / n
    steps++
    prev = cur.slice()
  }
  return { contacts, meanDegree: steps === 0 ? 0 : degreeSum / steps }
}
