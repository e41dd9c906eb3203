/**
 * The forwarding decision, as a pure function: how many of a held envelope's copies to hand to
 * one neighbour right now. No I/O and no state of its own; the mesh core gathers the facts.
 *
 * 1. The neighbour is the destination: hand it every copy (delivery).
 * 2. The destination is another neighbour: wait for that one.
 * 3. A route is selected: hand every copy to its next hop (single-copy routing, custody moves
 *    with it), unless that next hop is refusing, in which case fall through to spraying.
 * 4. No route: spray-and-wait (Spyropoulos et al., 2005) towards well-connected nodes, with
 *    delegation (Erramilli et al., 2008): each copy carries a threshold, the most encounters of
 *    any node it was at or handed to (the encounter count, a cheap centrality as in BUBBLE Rap,
 *    Hui et al., 2008); copies go only to a neighbour that has met at least `sprayCentrality`
 *    times that many nodes, and the threshold rises to the neighbour's count, so that copies keep
 *    climbing towards the nodes most likely to meet the destination. The copies are split in
 *    proportion to the two encounter counts. The last copy waits for the destination or a route.
 */
import { EnvelopeFlags } from '../wire/envelope.ts'
import { type Held, reservedCopies } from './held.ts'
import type { NeighbourId } from './router.ts'

/** What the core knows about the neighbour and the way to the destination. */
export interface ForwardingFacts {
  readonly neighbour: NeighbourId
  /** The neighbour's destination tag (hex), once its Hello arrived. */
  readonly neighbourTag: string
  /** The neighbour said (in its Summary) that it holds this ID prefix. */
  readonly neighbourHasIt: boolean
  /** The destination is a direct neighbour (through some link). */
  readonly destinationIsNeighbour: boolean
  /** Next hop of the selected route to the destination, if any. */
  readonly routeNextHop: NeighbourId | undefined
  /** How many encounters the neighbour reported (in its Hello); 0 until it did. */
  readonly neighbourEncounters: number
  /** How many encounters we had. */
  readonly ourEncounters: number
  /** The neighbour needs at least this share of our encounters to receive sprayed copies. */
  readonly sprayCentrality: number
  readonly now: number
}

function isAck(h: Held): boolean {
  return (h.envelope.flags & EnvelopeFlags.ack) !== 0
}

function refusing(h: Held, neighbour: NeighbourId, now: number): boolean {
  const until = h.refusedUntil.get(neighbour)
  return until !== undefined && until > now
}

/** Whether `h` has a copy it could hand to anyone now: when not, {@link copiesToHand} is 0 for every neighbour. */
export function hasCopyToHand(h: Held): boolean {
  return h.copies - reservedCopies(h) > 0 && h.envelope.hopLimit > 0
}

/** How many copies of `h` to hand to the neighbour now (0: none). */
export function copiesToHand(h: Held, f: ForwardingFacts): number {
  const available = h.copies - reservedCopies(h)
  if (available <= 0 || h.envelope.hopLimit === 0) return 0
  if (h.inflight.has(f.neighbour) || f.neighbourHasIt) return 0
  // A holder gets no second copy. One exception: an acknowledgement whose route now leads back
  // through the neighbour that handed it to us (the path reversed). Nobody would send it again,
  // unlike a message, whose source retries; the neighbour takes it back only if its own route
  // leads elsewhere, so this cannot ping-pong.
  if (
    h.holders.has(f.neighbour) &&
    !(isAck(h) && h.origin === f.neighbour && f.routeNextHop === f.neighbour)
  ) {
    return 0
  }
  if (refusing(h, f.neighbour, f.now)) return 0
  if (f.neighbourTag === h.destKey) return available
  if (f.destinationIsNeighbour) return 0
  if (f.routeNextHop !== undefined) {
    if (f.routeNextHop === f.neighbour) return available
    if (!refusing(h, f.routeNextHop, f.now)) return 0
  }
  const threshold = h.threshold ?? f.ourEncounters
  if (available < 2 || f.neighbourEncounters < threshold * f.sprayCentrality) return 0
  const total = f.ourEncounters + f.neighbourEncounters
  const share = total > 0 ? Math.round((available * f.neighbourEncounters) / total) : 1
  return Math.max(1, Math.min(available - 1, share))
}

/**
 * The order in which to hand envelopes to one neighbour, at most `room` of them: each held
 * envelope with copies for it (`copiesFor`, 0 for none), taken round-robin across the origins
 * they came from (the neighbour that handed each over, or this node), so that one origin's flood
 * cannot crowd out the others. Within an origin, in the order given.
 */
export function fairHandoffs(
  held: Iterable<Held>,
  copiesFor: (h: Held) => number,
  room: number,
): Array<[Held, number]> {
  const buckets = new Map<string, Array<[Held, number]>>()
  for (const h of held) {
    const k = copiesFor(h)
    if (k === 0) continue
    let b = buckets.get(h.origin)
    if (b === undefined) {
      b = []
      buckets.set(h.origin, b)
    }
    b.push([h, k])
  }
  const queues = [...buckets.values()]
  const out: Array<[Held, number]> = []
  for (let i = 0; out.length < room && queues.some((q) => q.length > 0); i++) {
    const next = queues[i % queues.length]!.shift()
    if (next) out.push(next)
  }
  return out
}
