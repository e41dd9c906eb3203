/**
 * Envelopes a mesh node holds, and how they are kept in the store: its own outgoing messages in
 * the outbox (until delivered or expired), custody for others in the custody table. The store
 * is the truth; the in-memory record adds what only matters while running (who has a copy,
 * what is in flight).
 */
import type { DeliveryState, Store } from '../store/store.ts'
import {
  decodeEnvelope,
  type Envelope,
  EnvelopeFlags,
  encodeEnvelope,
  messageIdHex,
} from '../wire/envelope.ts'
import { MAX_COPIES } from '../wire/limits.ts'
import { idPrefix } from './frames.ts'
import type { NeighbourId } from './router.ts'
import { tagKey } from './routing-table.ts'

/** Custody origin of envelopes this node originated itself (acknowledgements). */
export const LOCAL_ORIGIN = '.local'

/** Copies handed to a neighbour and not yet acknowledged by it. */
export interface Inflight {
  readonly copies: number
  readonly sentAt: number
}

/** An envelope this node holds: its own outgoing message, or custody for someone else. */
export interface Held {
  /** Message ID, hex. */
  readonly key: string
  /** The first 8 bytes of the ID, hex (as in Summary frames). */
  readonly prefix: string
  readonly envelope: Envelope
  readonly destKey: string
  /** Our copy budget. */
  copies: number
  /** True for our own data messages (kept in the outbox until delivered). */
  readonly own: boolean
  /**
   * A datagram (neither an ack nor asking for one): carried best-effort, held in memory only,
   * forgotten by each holder once the next hop took it. Never persisted, never acknowledged.
   */
  readonly datagram: boolean
  /** Fairness and quota key: LOCAL_ORIGIN or the neighbour it came from. */
  readonly origin: string
  readonly expiresAtMs: number
  readonly receivedAt: number
  /** Neighbours known to have a copy. */
  readonly holders: Set<NeighbourId>
  readonly inflight: Map<NeighbourId, Inflight>
  /** Neighbours that refused it (quota), until when. */
  readonly refusedUntil: Map<NeighbourId, number>
  attempts: number
  nextRetryAt: number
  state: DeliveryState | undefined
  /**
   * Delegation threshold: the most encounters of any node this copy was at or was handed to
   * (unset: our own count at the time of the decision). Kept in memory only: after a restart it
   * starts again from our count.
   */
  threshold?: number
  /** For our own opaque messages: the ack tag (hex) their acknowledgement will carry. */
  ackTag?: string
  /** …and the ack secret, while in memory (not stored: the body holds it, sealed). */
  ackSecret?: Uint8Array
  /**
   * Set by a pump that found nothing to hand any neighbour and nothing to ask for: what that
   * depended on, so that later pumps skip the envelope until some of it changes (mesh-core.ts).
   */
  parked?: Parked
}

/**
 * The core's generations: counted up whenever what its pump reads of the neighbours (who they
 * are, their tags, Summaries and encounter counts, our own count) or of the routes to held
 * destinations changes.
 */
export interface Generations {
  neighbourhood: number
  routes: number
}

/** What a pump's verdict "nothing to do" for one envelope depended on. */
export interface Parked extends Readonly<Generations> {
  readonly copies: number
  readonly holders: number
  readonly threshold: number | undefined
}

/**
 * Parks `h`, which a pump found nothing to do for, under the generations `g`: later pumps skip it
 * until some of what that depended on changes. Not while a flight or a refusal is under way,
 * whose end changes the answer.
 */
export function park(h: Held, g: Generations): void {
  if (h.inflight.size > 0 || h.refusedUntil.size > 0) return
  const { neighbourhood, routes } = g
  h.parked = { neighbourhood, routes, copies: h.copies, holders: h.holders.size, threshold: h.threshold }
}

/** True when `h` was parked and nothing it depended on has changed since (see {@link park}). */
export function isParked(h: Held, g: Generations): boolean {
  const p = h.parked
  return (
    p !== undefined &&
    p.neighbourhood === g.neighbourhood &&
    p.routes === g.routes &&
    p.copies === h.copies &&
    p.holders === h.holders.size &&
    p.threshold === h.threshold &&
    h.inflight.size === 0 &&
    h.refusedUntil.size === 0
  )
}

/** Whether `h` may be due before it expires (see {@link HeldSet.nextDue}). */
function isTimed(h: Held): boolean {
  return h.inflight.size > 0 || h.refusedUntil.size > 0 || retries(h)
}

/**
 * Whether `h` is one of our own messages whose retry time matters: it handed copies out (all, or
 * some), so one may have been lost on the way. One that handed nothing yet waits for a neighbour,
 * not for time: a long offline outbox is not looked at on every wake-up.
 */
export function retries(h: Held): boolean {
  return h.own && Number.isFinite(h.nextRetryAt) && (h.copies === 0 || h.holders.size > 0)
}

/** A new in-memory record for an envelope. */
export function makeHeld(
  envelope: Envelope,
  o: { own: boolean; origin: string; receivedAt: number; nextRetryAt: number },
): Held {
  const key = messageIdHex(envelope.id)
  return {
    key,
    prefix: idPrefix(key),
    envelope,
    destKey: tagKey(envelope.destination),
    copies: envelope.copies,
    own: o.own,
    datagram: (envelope.flags & (EnvelopeFlags.ack | EnvelopeFlags.ackRequested)) === 0,
    origin: o.origin,
    expiresAtMs: envelope.expires * 1000,
    receivedAt: o.receivedAt,
    holders: new Set(),
    inflight: new Map(),
    refusedUntil: new Map(),
    attempts: 0,
    nextRetryAt: o.nextRetryAt,
    state: undefined,
  }
}

/**
 * What a datagram held for another node costs against the datagram quota: its payload and what
 * its record costs in memory besides (measured: about 1.5 KiB for an empty one), so that
 * datagrams with nothing in them are bounded too.
 */
export const DATAGRAM_RECORD_BYTES = 1536

/** A held datagram's charge against the datagram quota (see {@link DATAGRAM_RECORD_BYTES}). */
export function datagramCharge(payloadBytes: number): number {
  return payloadBytes + DATAGRAM_RECORD_BYTES
}

/** Copies promised to neighbours and not yet acknowledged. */
export function reservedCopies(h: Held): number {
  let r = 0
  for (const f of h.inflight.values()) r += f.copies
  return r
}

/** Writes the record's durable part (throws `quota_exceeded` or `storage_full` for custody). */
export function persistHeld(store: Store, h: Held): void {
  if (h.datagram) return
  const envelope = encodeEnvelope({ ...h.envelope, copies: Math.min(MAX_COPIES, Math.max(1, h.copies)) })
  if (h.own) {
    store.putOutbox({
      messageId: h.key,
      envelope,
      attempts: h.attempts,
      nextAttemptAt: h.nextRetryAt,
      expiresAt: h.expiresAtMs,
    })
  } else {
    store.putCustody({
      messageId: h.key,
      origin: h.origin,
      destination: h.envelope.destination,
      envelope,
      copies: h.copies,
      expiresAt: h.expiresAtMs,
      receivedAt: h.receivedAt,
    })
  }
}

/** Deletes the record's durable part. */
export function unpersistHeld(store: Store, h: Held): void {
  if (h.datagram) return
  if (h.own) store.removeOutbox(h.key)
  else store.removeCustody(h.key)
}

/** A stored envelope that could not be read back (see {@link restoreHeld}). */
export interface UnreadableHeld {
  /** One of our own messages (its outbox entry), or a copy in our custody. */
  readonly own: boolean
  /** The message ID (hex). */
  readonly key: string
  readonly error: unknown
}

/** Why an own message whose stored envelope could not be read is given up. */
export const UNREADABLE_ENVELOPE_REASON = 'its stored envelope could not be read'

/**
 * Everything the store holds for the mesh, as in-memory records (after a restart). A row whose
 * envelope does not decode (damaged on disk, or written by a version with a defect) must not keep
 * the node from starting: it is removed, and an own message of it is given up as `failed` (both
 * in one transaction; if that cannot be written, the rows stay for the next start), and listed
 * in `unreadable`.
 */
export function restoreHeld(store: Store, now: number): { held: Held[]; unreadable: UnreadableHeld[] } {
  const held: Held[] = []
  const unreadable: UnreadableHeld[] = []
  /** The row's envelope, decoded; undefined, and listed as unreadable, when it does not decode. */
  const decoded = (own: boolean, key: string, bytes: Uint8Array): Envelope | undefined => {
    try {
      return decodeEnvelope(bytes)
    } catch (error) {
      unreadable.push({ own, key, error })
      return undefined
    }
  }
  for (const entry of store.listOutboxDue(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)) {
    const envelope = decoded(true, entry.messageId, entry.envelope)
    if (envelope === undefined) continue
    const message = store.getMessage(entry.messageId)
    const h = makeHeld(envelope, {
      own: true,
      origin: LOCAL_ORIGIN,
      receivedAt: message?.createdAt ?? 0,
      nextRetryAt: entry.nextAttemptAt,
    })
    h.attempts = entry.attempts
    h.state = message?.state
    held.push(h)
  }
  for (const entry of store.listCustody()) {
    const envelope = decoded(false, entry.messageId, entry.envelope)
    if (envelope === undefined) continue
    const h = makeHeld(envelope, {
      own: false,
      origin: entry.origin,
      receivedAt: entry.receivedAt,
      nextRetryAt: Number.POSITIVE_INFINITY,
    })
    h.copies = entry.copies
    held.push(h)
  }
  if (unreadable.length > 0) {
    try {
      store.transaction(() => {
        for (const u of unreadable) {
          if (!u.own) {
            store.removeCustody(u.key)
            continue
          }
          store.removeOutbox(u.key)
          if (store.getMessage(u.key) !== undefined) {
            store.setMessageState(u.key, 'failed', now, UNREADABLE_ENVELOPE_REASON)
          }
        }
      })
    } catch {
      // A full disk, say: the rows stay, and are looked at again at the next start.
    }
  }
  return { held, unreadable }
}

/**
 * The envelopes one node holds, in memory, by message ID; with their payload bytes and how many
 * go to each destination kept as they come and go (both asked for on hot paths).
 */
export class HeldSet {
  readonly #byKey = new Map<string, Held>()
  #bytes = 0
  /** Destination (hex) → how many held envelopes go there. */
  readonly #dests = new Map<string, number>()
  /**
   * Envelopes that may be due before they expire (a flight, a refusal, or our own message waiting
   * for a retry): {@link markTimed} adds them, {@link nextDue} drops those with nothing left.
   */
  readonly #timed = new Set<Held>()
  /** The earliest expiry held (stale: recomputed by {@link nextDue}). */
  #firstExpiry = Number.POSITIVE_INFINITY
  #firstExpiryStale = false
  /** Payload bytes of other nodes' datagrams held, by the neighbour that handed them over, and in all. */
  readonly #datagramBytes = new Map<string, number>()
  #datagramTotal = 0
  #ownDatagramBytes = 0
  /** Other nodes' envelopes in custody (stored, not datagrams), by origin and in all. */
  readonly #custodyCounts = new Map<string, number>()
  #custodyTotal = 0

  get size(): number {
    return this.#byKey.size
  }

  /** Payload bytes of the envelopes held. */
  get bytes(): number {
    return this.#bytes
  }

  get(key: string): Held | undefined {
    return this.#byKey.get(key)
  }

  keys(): IterableIterator<string> {
    return this.#byKey.keys()
  }

  values(): IterableIterator<Held> {
    return this.#byKey.values()
  }

  /** Payload bytes of other nodes' datagrams held: from `origin`, and in all. */
  datagramBytes(origin: string): { fromOrigin: number; total: number } {
    return { fromOrigin: this.#datagramBytes.get(origin) ?? 0, total: this.#datagramTotal }
  }

  /** Other nodes' envelopes in custody from `origin`, and in all (see MeshConfig.custodyCount). */
  custodyCount(origin: string): { fromOrigin: number; total: number } {
    return { fromOrigin: this.#custodyCounts.get(origin) ?? 0, total: this.#custodyTotal }
  }

  /** The origin with the most envelopes in custody here, and how many. */
  largestCustodyOrigin(): { origin: string; count: number } | undefined {
    let largest: { origin: string; count: number } | undefined
    for (const [origin, count] of this.#custodyCounts) {
      if (largest === undefined || count > largest.count) largest = { origin, count }
    }
    return largest
  }

  /** What our own datagrams held (waiting to go out) are charged, as {@link datagramBytes} counts. */
  get ownDatagramBytes(): number {
    return this.#ownDatagramBytes
  }

  /** Whether some envelope held goes to the destination whose tag is `destKey` (hex). */
  goesTo(destKey: string): boolean {
    return this.#dests.has(destKey)
  }

  /**
   * The earliest time something held is due (infinity: nothing): an expiry, a hop
   * acknowledgement overdue (`hopAckTimeoutMs` after sending), a refusal that ends (the neighbour
   * is asked again), a retry of one of our own messages whose copies are all handed out (once
   * none of them is in flight: until then the flight's deadline stands for it).
   */
  nextDue(hopAckTimeoutMs: number): number {
    if (this.#firstExpiryStale) {
      this.#firstExpiryStale = false
      this.#firstExpiry = Number.POSITIVE_INFINITY
      for (const h of this.#byKey.values()) this.#firstExpiry = Math.min(this.#firstExpiry, h.expiresAtMs)
    }
    let at = this.#firstExpiry
    for (const h of this.#timed) {
      if (!isTimed(h)) {
        this.#timed.delete(h)
        continue
      }
      for (const f of h.inflight.values()) at = Math.min(at, f.sentAt + hopAckTimeoutMs)
      for (const until of h.refusedUntil.values()) at = Math.min(at, until)
      // A retry waits for the flights to end (mesh-core.ts `#due` retries only with none in the
      // air): while one is, its deadline above is the earliest the retry can be due, and asking
      // for the retry time itself would wake the core again and again to do nothing.
      if (retries(h) && h.inflight.size === 0) at = Math.min(at, h.nextRetryAt)
    }
    return at
  }

  /** `h` (held) now has a flight, a refusal, or no copy left for a retry to restore. */
  markTimed(h: Held): void {
    if (this.#byKey.get(h.key) === h) this.#timed.add(h)
  }

  /** Adds `h`, or replaces the envelope held under its ID. */
  add(h: Held): void {
    const before = this.#byKey.get(h.key)
    if (before !== undefined) {
      this.#bytes -= before.envelope.payload.length
      this.#countOthers(before, -1)
    } else this.#dests.set(h.destKey, (this.#dests.get(h.destKey) ?? 0) + 1)
    this.#byKey.set(h.key, h)
    this.#bytes += h.envelope.payload.length
    this.#countOthers(h, 1)
    if (before !== undefined) this.#timed.delete(before)
    if (isTimed(h)) this.#timed.add(h)
    if (h.expiresAtMs < this.#firstExpiry) this.#firstExpiry = h.expiresAtMs
  }

  /** Removes the envelope held under `h`'s ID (`h` itself, or what replaced it); false when none was. */
  delete(h: Held): boolean {
    const held = this.#byKey.get(h.key)
    if (held === undefined) return false
    this.#byKey.delete(h.key)
    this.#bytes -= held.envelope.payload.length
    this.#countOthers(held, -1)
    this.#timed.delete(held)
    if (held.expiresAtMs <= this.#firstExpiry) this.#firstExpiryStale = true
    const left = (this.#dests.get(held.destKey) ?? 1) - 1
    if (left > 0) this.#dests.set(held.destKey, left)
    else this.#dests.delete(held.destKey)
    return true
  }

  /** Keeps the counts of other nodes' datagrams (bytes) and custody envelopes, and of our datagrams. */
  #countOthers(h: Held, sign: 1 | -1): void {
    if (!h.datagram) {
      // Our own messages, and the acknowledgements we make (held as custody of LOCAL_ORIGIN), are
      // not other nodes' custody.
      if (h.own || h.origin === LOCAL_ORIGIN) return
      const left = (this.#custodyCounts.get(h.origin) ?? 0) + sign
      if (left > 0) this.#custodyCounts.set(h.origin, left)
      else this.#custodyCounts.delete(h.origin)
      this.#custodyTotal += sign
      return
    }
    const bytes = sign * datagramCharge(h.envelope.payload.length)
    if (h.own) {
      this.#ownDatagramBytes += bytes
      return
    }
    const left = (this.#datagramBytes.get(h.origin) ?? 0) + bytes
    if (left > 0) this.#datagramBytes.set(h.origin, left)
    else this.#datagramBytes.delete(h.origin)
    this.#datagramTotal += bytes
  }
}
