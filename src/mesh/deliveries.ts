/**
 * The end of a message's journey, and the news of it travelling back.
 *
 * - A message addressed to this node is handed to the application once (filed in the store by
 *   local-delivery.ts, so also once across restarts); a datagram once while its ID is remembered.
 * - Its proof (the ack secret its ID commits to, which only the recipient could read) goes back
 *   to the neighbour that brought it, to every neighbour known to hold a copy, and in an
 *   acknowledgement envelope across the mesh to the source (carrying the ack tag instead, for an
 *   opaque message, so that relays cannot link the two).
 * - A node that learns a proof drops its copy, tells the holders it handed copies to, and, when the
 *   message is its own, marks it delivered.
 *
 * The mesh core owns the held envelopes, the links and the store transaction; this part reaches
 * them through {@link DeliveriesIo}.
 */
import { isTalkenError } from '../errors.ts'
import type { DeliveryState, Store } from '../store/store.ts'
import { bytesEqual } from '../wire/cbor.ts'
import { type Envelope, EnvelopeFlags, messageIdHex } from '../wire/envelope.ts'
import { MESSAGE_ID_LENGTH } from '../wire/limits.ts'
import type { AckTags } from './ack-tags.ts'
import type { BoundedMap } from './bounded-map.ts'
import type { MeshConfig } from './config.ts'
import { idPrefix } from './frames.ts'
import { type Held, LOCAL_ORIGIN, makeHeld, persistHeld } from './held.ts'
import { fileDelivery } from './local-delivery.ts'
import { decodeMeshPayload, encodeMeshPayload, type MeshPayload, proofId } from './mesh-payload.ts'
import type { NeighbourTable } from './neighbour-table.ts'
import { ProofBook } from './proof-book.ts'
import type { NeighbourId, RouterHost } from './router.ts'
import { tagKey } from './routing-table.ts'

/** An envelope seen here: the neighbour it came from ('' for none) and when (host time, ms). */
export interface Seen {
  readonly from: NeighbourId
  readonly at: number
}

/** What {@link Deliveries} asks of the mesh core. */
export interface DeliveriesIo {
  /** The envelope held under `key` (message ID, hex), if any. */
  held(key: string): Held | undefined
  /** Takes an envelope (already persisted) into the held set. */
  hold(h: Held): void
  /** Drops a held envelope from memory only (its stored copy was undone with its step). */
  forget(h: Held): void
  /** Drops a held envelope, in memory and in the store. */
  remove(h: Held): void
  /** Moves one of our own messages to `state`. */
  setState(h: Held, state: DeliveryState): void
  sendProofs(neighbour: NeighbourId, secrets: Uint8Array[]): void
  randomBytes(length: number): Uint8Array
  /** The next hop of our selected route to the destination whose hex tag is `destKey`, if any. */
  nextHopByKey(destKey: string): NeighbourId | undefined
}

/** Counters {@link Deliveries} keeps (a part of the core's stats). */
export interface DeliveriesStats {
  malformed: number
  delivered: number
  /** Messages for us the application could not open or verify: never acknowledged, not kept. */
  deliveriesUnopened: number
  duplicatesSuppressed: number
  proofsLearned: number
}

/** Local delivery and delivery proofs of one mesh core. */
export class Deliveries {
  /** Proofs known, and the messages delivered here (our Summary lists them). */
  readonly proofs: ProofBook
  readonly #self: Uint8Array
  readonly #host: RouterHost
  readonly #store: Store
  readonly #cfg: MeshConfig
  readonly #stats: DeliveriesStats
  /** Message ID → where and when it came, shared with the core's duplicate suppression. */
  readonly #seen: BoundedMap<string, Seen>
  readonly #neighbours: NeighbourTable
  readonly #ackTags: AckTags
  readonly #io: DeliveriesIo

  constructor(init: {
    self: Uint8Array
    host: RouterHost
    store: Store
    cfg: MeshConfig
    stats: DeliveriesStats
    seen: BoundedMap<string, Seen>
    neighbours: NeighbourTable
    ackTags: AckTags
    io: DeliveriesIo
  }) {
    this.#self = init.self
    this.#host = init.host
    this.#store = init.store
    this.#cfg = init.cfg
    this.#stats = init.stats
    this.#seen = init.seen
    this.#neighbours = init.neighbours
    this.#ackTags = init.ackTags
    this.#io = init.io
    this.proofs = new ProofBook(init.cfg.proofCapacity)
  }

  /**
   * An envelope addressed to this node, from neighbour `from` (undefined: sent to ourselves).
   * Returns true when its proof of delivery went back to `from`: that ends the envelope's flight
   * on the link as a hop acknowledgement would, so none is needed. Throws what the store throws
   * (a full disk): the caller refuses the envelope, and it comes again.
   */
  deliver(envelope: Envelope, from: NeighbourId | undefined): boolean {
    const key = messageIdHex(envelope.id)
    const payload = decodeMeshPayload(envelope.payload)
    if (payload.kind === 2) {
      this.learn(payload.ackSecret, from)
      return false
    }
    if (payload.kind === 4) {
      this.#onSealedAck(payload.ackTag)
      return false
    }
    const acked = (envelope.flags & EnvelopeFlags.ackRequested) !== 0
    // A clear ack secret must match the ID.
    if (payload.kind === 1 && !bytesEqual(proofId(payload.ackSecret), envelope.id)) {
      this.#stats.malformed++
      return false
    }
    if (!acked) {
      // A datagram: handed over at most once while its ID is remembered, recorded nowhere, never acked.
      if (this.#seen.has(key)) {
        this.#stats.duplicatesSuppressed++
        return false
      }
      // Forgotten again if the step it came in is undone (what it carried was not kept): a copy
      // that comes again is taken then.
      this.#store.onRollback(this.#seen.setUndoably(key, { from: from ?? '', at: this.#host.now() }))
      this.#stats.delivered++
      this.#host.deliver({
        id: key,
        payload: payload.body,
        hops: this.#cfg.hopLimit - envelope.hopLimit,
        datagram: true,
      })
      return false
    }
    const { fresh, refused, proof, source, ackTag } = fileDelivery(
      this.#store,
      (d) => this.#host.deliver(d),
      { key, envelope, payload, hops: this.#cfg.hopLimit - envelope.hopLimit, now: this.#host.now() },
    )
    if (refused) {
      // Never acknowledged (its sender must not be told it was delivered), and not remembered
      // as seen: the genuine copy of a message sent under this ID must still get in.
      this.#stats.deliveriesUnopened++
      return false
    }
    if (fresh) this.#stats.delivered++
    else this.#stats.duplicatesSuppressed++
    if (from !== undefined)
      this.#store.onRollback(this.#seen.setUndoably(key, { from, at: this.#host.now() }))
    // A repeat whose proof is gone.
    if (proof === undefined) return false
    const prefix = idPrefix(key)
    const known = this.proofs.has(prefix)
    // Undone with the step (a commit that failed): the message is not here after all.
    this.#store.onRollback(this.proofs.receivedHere(prefix, proof))
    // Once to the neighbour that brought it (not again by `learn`, which skips `from`).
    this.learn(proof, from)
    const proved = from !== undefined
    if (proved) this.#io.sendProofs(from, [proof])
    // The acknowledgement envelope carries the proof to the source across the mesh, also when the
    // path back is broken. When the source itself handed us the message, the proof just sent on
    // that link is all it needs (were it lost, its retry is acknowledged again). Without a known
    // source the proof goes back only along the paths the message came.
    if (source === undefined || known || bytesEqual(source, this.#self)) return proved
    const sourceKey = tagKey(source)
    if (from !== undefined && this.#neighbours.get(from)?.tagKey === sourceKey) return proved
    // Came along our route to its source: the proof walks back that way, each relay passing it to
    // the neighbour that handed it the message, so an acknowledgement envelope would only follow
    // it (were a link on the way gone meanwhile, the source's retry is answered again).
    if (from !== undefined && this.#io.nextHopByKey(sourceKey) === from) return proved
    this.#sendAck(
      source,
      ackTag === undefined ? { kind: 2, ackSecret: proof } : { kind: 4, ackTag },
      envelope.expires,
    )
    return proved
  }

  /** Relays read the proof in an acknowledgement as it passes, and drop their copies of the message. */
  peek(envelope: Envelope): void {
    try {
      const p = decodeMeshPayload(envelope.payload)
      if (p.kind === 2) this.learn(p.ackSecret, undefined)
    } catch (err) {
      if (!isTalkenError(err)) throw err
    }
  }

  /**
   * A proof of delivery, from neighbour `from` (undefined: found here): the copy held is dropped,
   * and the proof goes to whoever may still hold one (not back to `from`).
   */
  learn(ackSecret: Uint8Array, from: NeighbourId | undefined): void {
    const key = messageIdHex(proofId(ackSecret))
    const prefix = idPrefix(key)
    if (!this.proofs.add(prefix, ackSecret)) return
    // Learned in a step that is undone: as if it never came (the store still holds the message).
    this.#store.onRollback(() => this.proofs.forget(prefix))
    this.#stats.proofsLearned++
    const targets = new Set<NeighbourId>()
    const back = this.#seen.get(key)?.from
    if (back) targets.add(back)
    const h = this.#io.held(key)
    if (h !== undefined) {
      for (const holder of h.holders) targets.add(holder)
      if (h.own) this.#io.setState(h, 'delivered')
      this.#io.remove(h)
    }
    for (const n of this.#neighbours.values()) if (n.has.has(prefix)) targets.add(n.id)
    if (from !== undefined) targets.delete(from)
    for (const t of targets) if (this.#neighbours.has(t)) this.#io.sendProofs(t, [ackSecret])
  }

  /** An acknowledgement of one of our opaque messages, by its ack tag (ack-tags.ts). */
  #onSealedAck(tag: Uint8Array): void {
    const key = this.#ackTags.messageOf(tag)
    const h = key === undefined ? undefined : this.#io.held(key)
    if (h === undefined) return // not ours, or known delivered already
    // The neighbour that brought the tag does not know the proof: it may be told too.
    if (h.ackSecret !== undefined) {
      this.learn(h.ackSecret, undefined)
      return
    }
    // Restarted since sending: the secret is only in the sealed body. The recipient spreads the
    // proof itself; here the message is done.
    this.#io.setState(h, 'delivered')
    this.#io.remove(h)
  }

  /** Sends the proof (or the ack tag) to the source in an acknowledgement envelope of our own. */
  #sendAck(source: Uint8Array, payload: Extract<MeshPayload, { kind: 2 | 4 }>, expires: number): void {
    const envelope: Envelope = {
      id: this.#io.randomBytes(MESSAGE_ID_LENGTH),
      destination: source,
      hopLimit: this.#cfg.hopLimit,
      expires,
      copies: this.#cfg.ackCopies,
      flags: EnvelopeFlags.ack,
      payload: encodeMeshPayload(payload),
    }
    const h = makeHeld(envelope, {
      own: false,
      origin: LOCAL_ORIGIN,
      receivedAt: this.#host.now(),
      nextRetryAt: Number.POSITIVE_INFINITY,
    })
    try {
      persistHeld(this.#store, h)
    } catch (err) {
      if (!isTalkenError(err, 'quota_exceeded') && !isTalkenError(err, 'storage_full')) throw err
      return // the proof still travels back along the path and to every holder met
    }
    this.#io.hold(h)
    const unsee = this.#seen.setUndoably(h.key, { from: '', at: this.#host.now() })
    // Undone with the step (the delivery it acknowledges was undone too): it must not go out
    // later from memory, telling the source of a delivery that the store does not hold.
    this.#store.onRollback(() => {
      this.#io.forget(h)
      unsee()
    })
  }
}
