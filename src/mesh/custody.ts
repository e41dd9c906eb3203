/**
 * Custody: what a node does with an envelope a neighbour hands it, and with the neighbour's answer
 * to one it handed on.
 *
 * - An envelope for this node is delivered (deliveries.ts) and acknowledged once it is stored.
 * - One for someone else is taken into custody (persisted, then acknowledged), unless it is dead
 *   (expired, out of hops, or proven delivered), a duplicate, or over a quota: a count of
 *   envelopes per neighbour and in all (the fullest neighbour giving way to one holding less), and
 *   a byte quota for datagrams, which are held in memory only.
 * - A second copy of one held merges its copy budget into ours.
 * - A hop acknowledgement settles a copy handed on: taken (the budget moves), already had,
 *   refused for now, or dead.
 *
 * The mesh core owns the held envelopes, the links and the store transaction; this part reaches
 * them through {@link CustodyIo}.
 */
import { isStorageFailure, isTalkenError } from '../errors.ts'
import type { DeliveryState, Store } from '../store/store.ts'
import { bytesEqual } from '../wire/cbor.ts'
import { decodeEnvelope, type Envelope, EnvelopeFlags, messageIdHex } from '../wire/envelope.ts'
import { MAX_COPIES } from '../wire/limits.ts'
import type { BoundedMap } from './bounded-map.ts'
import type { MeshConfig } from './config.ts'
import type { Deliveries, Seen } from './deliveries.ts'
import { HopAckStatus, type HopAckStatusCode, idPrefix } from './frames.ts'
import { datagramCharge, type Held, type HeldSet, makeHeld, persistHeld } from './held.ts'
import type { Neighbour, NeighbourTable } from './neighbour-table.ts'
import type { NeighbourId, RouterHost } from './router.ts'
import { tagKey } from './routing-table.ts'

/** What {@link Custody} asks of the mesh core. */
export interface CustodyIo {
  /** Links this node has had (its centrality, as its Hello says). */
  encounters(): number
  /** The next hop of the selected route to the destination whose hex tag is `destKey`, if any. */
  nextHopByKey(destKey: string): NeighbourId | undefined
  hopAck(neighbour: NeighbourId, id: Uint8Array, status: HopAckStatusCode): void
  sendProofs(neighbour: NeighbourId, secrets: Uint8Array[]): void
  /** Takes an envelope (already persisted) into the held set. */
  hold(h: Held): void
  /** Drops a held envelope from memory only. */
  forget(h: Held): void
  /** Drops a held envelope, in memory and in the store. */
  remove(h: Held): void
  /** Moves one of our own messages to `state`. */
  setState(h: Held, state: DeliveryState): void
  /** Something the pump depends on changed: held envelopes, their budgets or flights. */
  pumpDue(): void
}

/** Counters {@link Custody} keeps (a part of the core's stats). */
export interface CustodyStats {
  duplicatesSuppressed: number
  custodyRefused: number
  custodyEvicted: number
  deliveriesRefused: number
}

/** Custody of the envelopes neighbours hand one mesh core. */
export class Custody {
  readonly #self: Uint8Array
  readonly #host: RouterHost
  readonly #store: Store
  readonly #cfg: MeshConfig
  readonly #stats: CustodyStats
  readonly #held: HeldSet
  /** Message ID → where and when it came, shared with the core and its deliveries. */
  readonly #seen: BoundedMap<string, Seen>
  readonly #deliveries: Deliveries
  readonly #neighbours: NeighbourTable
  readonly #io: CustodyIo

  constructor(init: {
    self: Uint8Array
    host: RouterHost
    store: Store
    cfg: MeshConfig
    stats: CustodyStats
    held: HeldSet
    seen: BoundedMap<string, Seen>
    deliveries: Deliveries
    neighbours: NeighbourTable
    io: CustodyIo
  }) {
    this.#self = init.self
    this.#host = init.host
    this.#store = init.store
    this.#cfg = init.cfg
    this.#stats = init.stats
    this.#held = init.held
    this.#seen = init.seen
    this.#deliveries = init.deliveries
    this.#neighbours = init.neighbours
    this.#io = init.io
  }

  /** A Data frame from `n`: an envelope for us, or one to take into custody (or refuse). */
  onData(n: Neighbour, bytes: Uint8Array): void {
    let envelope = decodeEnvelope(bytes)
    const key = messageIdHex(envelope.id)
    const nowS = this.#host.now() / 1000
    if (bytesEqual(envelope.destination, this.#self)) {
      // Expired by our clock: its source has most likely marked it expired (its user may have
      // sent it again), so it is not delivered late (a relay that met us just after its expiry).
      if (envelope.expires <= nowS) {
        this.#io.hopAck(n.id, envelope.id, HopAckStatus.dead)
        return
      }
      // Taken only once it is stored: when that fails (a full disk) the sender keeps it, tries again.
      let proved: boolean
      try {
        proved = this.#deliveries.deliver(envelope, n.id)
      } catch (err) {
        if (isStorageFailure(err)) {
          this.#stats.deliveriesRefused++
          this.#io.hopAck(n.id, envelope.id, HopAckStatus.refused)
          return
        }
        // Undeliverable (a malformed payload): taken, so that nobody sends it again, and counted.
        this.#io.hopAck(n.id, envelope.id, HopAckStatus.taken)
        throw err
      }
      // Its proof, sent back on this link, says more than a hop acknowledgement would.
      if (!proved) this.#io.hopAck(n.id, envelope.id, HopAckStatus.taken)
      return
    }
    if (envelope.expires <= nowS || envelope.hopLimit === 0) {
      this.#io.hopAck(n.id, envelope.id, HopAckStatus.dead)
      return
    }
    const proof = this.#deliveries.proofs.get(idPrefix(key))
    if (proof) {
      this.#io.hopAck(n.id, envelope.id, HopAckStatus.dead)
      this.#io.sendProofs(n.id, [proof])
      return
    }
    const held = this.#held.get(key)
    if (held !== undefined && this.#handedAgain(held, n.id)) {
      // The handoff we took, sent again because our hop acknowledgement was lost: its copies are
      // counted already (the sender deducts them once, when this acknowledgement arrives).
      this.#stats.duplicatesSuppressed++
      this.#io.hopAck(n.id, envelope.id, HopAckStatus.taken)
      return
    }
    if (held !== undefined) {
      // Another copy of one we hold: take its budget over, so that copies are neither lost nor
      // multiplied (the sender deducts what it handed, as for any taken copy).
      const { copies } = held
      const holder = held.holders.has(n.id)
      held.copies = Math.min(MAX_COPIES, copies + envelope.copies)
      try {
        // The stored envelope may grow by a byte with the count: over its quota, the copy is
        // refused as a new one would be (and the count is as it was).
        persistHeld(this.#store, held)
      } catch (err) {
        held.copies = copies
        if (isTalkenError(err, 'quota_exceeded') || isTalkenError(err, 'storage_full')) {
          this.#stats.custodyRefused++
          this.#io.hopAck(n.id, envelope.id, HopAckStatus.refused)
          return
        }
        throw err
      }
      held.holders.add(n.id)
      this.#store.onRollback(() => {
        held.copies = copies
        if (!holder) held.holders.delete(n.id)
      })
      this.#io.pumpDue()
      this.#stats.duplicatesSuppressed++
      this.#io.hopAck(n.id, envelope.id, HopAckStatus.taken)
      return
    }
    // Seen and passed on already: taking it again could only loop, unless it is an acknowledgement
    // whose path reversed (our route to its destination leads elsewhere than back to the sender),
    // or its source trying again after the copy we passed on was lost further on.
    const seen = this.#seen.get(key)
    if (seen !== undefined && !this.#reversedAck(envelope, n.id) && !this.#retried(seen, n.id)) {
      this.#stats.duplicatesSuppressed++
      this.#io.hopAck(n.id, envelope.id, HopAckStatus.duplicate)
      return
    }
    // Held for no longer than our custody limit, and passed on with the lower expiry.
    const custodyEnd = Math.floor((this.#host.now() + this.#cfg.custodyMaxMs) / 1000)
    if (envelope.expires > custodyEnd) envelope = { ...envelope, expires: custodyEnd }
    const h = makeHeld(envelope, {
      own: false,
      origin: n.id,
      receivedAt: this.#host.now(),
      nextRetryAt: Number.POSITIVE_INFINITY,
    })
    h.holders.add(n.id)
    h.threshold = this.#io.encounters()
    /** The copy given up to make room for this one, if custody is full (see #custodyRoom). */
    let evict: Held | undefined
    if (!h.datagram) {
      const held = this.#held.custodyCount(n.id)
      const limit = this.#cfg.custodyCount
      if (held.total >= limit.total && held.fromOrigin < limit.perOrigin) {
        evict = this.#custodyRoom(held.fromOrigin)
      }
      if (held.fromOrigin >= limit.perOrigin || (held.total >= limit.total && evict === undefined)) {
        this.#stats.custodyRefused++
        this.#io.hopAck(n.id, envelope.id, HopAckStatus.refused)
        return
      }
    } else {
      // Held in memory only, so bounded here rather than by the store's custody quotas.
      const held = this.#held.datagramBytes(n.id)
      const size = datagramCharge(envelope.payload.length)
      const quota = this.#cfg.datagramQuota
      if (held.fromOrigin + size > quota.perOriginBytes || held.total + size > quota.totalBytes) {
        this.#stats.custodyRefused++
        this.#io.hopAck(n.id, envelope.id, HopAckStatus.refused)
        return
      }
    }
    try {
      // One unit: a newcomer the store then refuses (over its byte quota, or a full disk) gives
      // nothing up. The nested transaction undoes the eviction with the insert, in the store and
      // (by the undo #io.remove registers) in memory.
      this.#store.transaction(() => {
        if (evict !== undefined) this.#io.remove(evict)
        persistHeld(this.#store, h)
      })
    } catch (err) {
      if (isTalkenError(err, 'quota_exceeded') || isTalkenError(err, 'storage_full')) {
        this.#stats.custodyRefused++
        this.#io.hopAck(n.id, envelope.id, HopAckStatus.refused)
        return
      }
      throw err
    }
    if (evict !== undefined) this.#stats.custodyEvicted++
    this.#io.hold(h)
    const unsee = this.#seen.setUndoably(key, { from: n.id, at: this.#host.now() })
    // Undone with the step (its commit failed, so the neighbour got no hop acknowledgement and
    // keeps its copy): we hold nothing, as the store says.
    this.#store.onRollback(() => {
      this.#io.forget(h)
      unsee()
    })
    this.#io.hopAck(n.id, envelope.id, HopAckStatus.taken)
    if (envelope.flags & EnvelopeFlags.ack) this.#deliveries.peek(envelope)
  }

  /**
   * The neighbour that handed us an envelope hands it again long after (half the sources' first
   * retry interval): its copies came back to it unacknowledged, so the one we passed on was lost
   * further on (a black hole, a store lost). Only a source tries again that late; a hop
   * acknowledgement lost on the way is resent within seconds, and that is a duplicate.
   */
  #retried(seen: Seen, from: NeighbourId): boolean {
    return seen.from === from && this.#host.now() - seen.at >= this.#cfg.retryBaseMs / 2
  }

  /**
   * Custody is full: the copy to give up to make room for a neighbour holding `mine` envelopes
   * here, the oldest of the neighbour that holds the most, if that is more than `mine` + 1 (else
   * none). So neighbours (real or made up) that filled the count first cannot keep out one that
   * holds less; the copy given up is one of many its sender handed here, and its source retries.
   * The caller gives it up together with storing the newcomer, so that a newcomer the store
   * refuses costs nobody a copy.
   */
  #custodyRoom(mine: number): Held | undefined {
    const largest = this.#held.largestCustodyOrigin()
    if (largest === undefined || largest.count <= mine + 1) return undefined
    let oldest: Held | undefined
    for (const h of this.#held.values()) {
      if (h.own || h.datagram || h.origin !== largest.origin) continue
      if (oldest === undefined || h.receivedAt < oldest.receivedAt) oldest = h
    }
    return oldest
  }

  /**
   * A custody copy we hold, handed again by the neighbour it came from before any retry of its
   * source could make it do so ({@link #retried}): the same handoff, repeated after its hop
   * acknowledgement timed out.
   */
  #handedAgain(held: Held, from: NeighbourId): boolean {
    return !held.own && held.origin === from && this.#host.now() - held.receivedAt < this.#cfg.retryBaseMs / 2
  }

  /** An acknowledgement handed back to us by a neighbour our route to its destination does not lead to. */
  #reversedAck(envelope: Envelope, from: NeighbourId): boolean {
    if ((envelope.flags & EnvelopeFlags.ack) === 0) return false
    const route = this.#io.nextHopByKey(tagKey(envelope.destination))
    return route !== undefined && route !== from
  }

  /** A HopAck from `n` for the envelope held under `key`: what became of the copies handed to it. */
  onHopAck(n: Neighbour, key: string, status: HopAckStatusCode): void {
    const h = this.#held.get(key)
    const f = h?.inflight.get(n.id)
    if (h === undefined || f === undefined) return
    h.inflight.delete(n.id)
    this.#neighbours.settle(n.id)
    this.#io.pumpDue()
    const now = this.#host.now()
    switch (status) {
      case HopAckStatus.taken: {
        h.copies = Math.max(0, h.copies - f.copies)
        // Delegation: a copy handed to a more central node holds out for one at least as central.
        if (n.tagKey !== h.destKey) h.threshold = Math.max(h.threshold ?? 0, n.encounters)
        h.holders.add(n.id)
        if (h.datagram) {
          if (h.copies === 0 && h.inflight.size === 0) this.#io.remove(h)
        } else if (h.own) {
          // Taken by the destination itself: delivered once its proof comes back (a neighbour's
          // claim to be the destination proves nothing).
          if ((h.state === 'queued' || h.state === 'sent') && n.tagKey !== h.destKey) {
            this.#io.setState(h, 'relayed')
          }
          persistHeld(this.#store, h)
        } else if (h.copies === 0 && h.inflight.size === 0) {
          this.#io.remove(h)
        } else {
          persistHeld(this.#store, h)
        }
        return
      }
      case HopAckStatus.duplicate:
        h.holders.add(n.id)
        return
      case HopAckStatus.refused:
        h.refusedUntil.set(n.id, now + this.#cfg.hopAckTimeoutMs * 3)
        this.#held.markTimed(h)
        return
      case HopAckStatus.dead:
        h.holders.add(n.id)
        return
    }
  }
}
