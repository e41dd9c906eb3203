/**
 * What a node knows of deliveries: the proofs of messages known delivered, by ID prefix (so that
 * a copy met later is dropped, and a neighbour that lists it in its Summary is told), and which
 * messages were delivered here (listed in our own Summary, so that nobody hands them over again).
 * Both are exact and bounded, in memory: forgetting costs at most a transmission, never a message.
 */
import { BoundedMap } from './bounded-map.ts'

/**
 * Messages delivered here that our Summary lists (the most recent): enough for the copies still
 * travelling towards us (a copy budget's worth per message, for the messages of the last hours),
 * small beside the 1,024 IDs a Summary carries.
 */
const RECEIVED_IN_SUMMARY = 128

/** Delivery proofs known to one node, and the messages delivered to it. */
export class ProofBook {
  /** ID prefix → ack secret of messages known delivered. */
  readonly #proofs: BoundedMap<string, Uint8Array>
  /**
   * The messages most recently delivered here: ID prefix (hex) → the prefix's bytes, as a Summary
   * lists them, and the proof, which a neighbour still holding the message gets however many
   * proofs we have learned since.
   */
  readonly #receivedHere = new BoundedMap<string, { readonly bytes: Uint8Array; readonly proof: Uint8Array }>(
    RECEIVED_IN_SUMMARY,
  )

  /** Remembers at most `capacity` proofs, forgetting the oldest first. */
  constructor(capacity: number) {
    this.#proofs = new BoundedMap(capacity)
  }

  /** The proof of the message whose ID has `prefix`, if known. */
  get(prefix: string): Uint8Array | undefined {
    return this.#proofs.get(prefix) ?? this.#receivedHere.get(prefix)?.proof
  }

  has(prefix: string): boolean {
    return this.#proofs.has(prefix) || this.#receivedHere.has(prefix)
  }

  /** Records a proof; false when it was known already. */
  add(prefix: string, ackSecret: Uint8Array): boolean {
    if (this.#proofs.has(prefix)) return false
    this.#proofs.set(prefix, new Uint8Array(ackSecret))
    return true
  }

  /** Forgets a proof (one learned in writes that were undone). */
  forget(prefix: string): void {
    this.#proofs.delete(prefix)
  }

  /**
   * The message whose ID has `prefix` was delivered here, with proof `proof`. Returns how to take
   * that back (a step undone: the delivery did not happen).
   */
  receivedHere(prefix: string, proof: Uint8Array): () => void {
    return this.#receivedHere.setUndoably(prefix, {
      bytes: Buffer.from(prefix, 'hex'),
      proof: new Uint8Array(proof),
    })
  }

  /** The proofs we know among `prefixes` (what a neighbour's Summary lists). */
  proofsFor(prefixes: Iterable<string>): Uint8Array[] {
    const secrets: Uint8Array[] = []
    for (const p of prefixes) {
      const s = this.get(p)
      if (s) secrets.push(s)
    }
    return secrets
  }

  /** Prefixes (bytes) of the messages most recently delivered here, newest first. */
  *recentlyReceived(): Generator<Uint8Array> {
    const received = [...this.#receivedHere.entries()]
    for (let i = received.length - 1; i >= 0; i--) yield received[i]![1].bytes
  }
}
