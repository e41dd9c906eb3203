/**
 * Messages in flight that carry something whose delivery matters beyond the message itself: our
 * card (once delivered, the contact has it and later messages leave it out), or a prekey header
 * (once delivered, the peer holds the session and later messages can be plain ratchet messages).
 * Kept in memory for the state changes to look up, and in the store, so that a restart between
 * sending and delivery does not forget them (every later message would carry the card and the
 * prekey header again, until the peer happened to write).
 */
import type { Store } from '../store/store.ts'

/** What one kind of carrier remembers about a message, as stored bytes. */
export interface CarrierCodec<V> {
  readonly encode: (value: V) => Uint8Array
  readonly decode: (bytes: Uint8Array) => V
}

/** Carriers of one kind by message ID, persisted in the kv namespace `namespace`. */
export class Carriers<V> {
  readonly #store: Store
  readonly #namespace: string
  readonly #codec: CarrierCodec<V>
  readonly #byId = new Map<string, V>()

  constructor(store: Store, namespace: string, codec: CarrierCodec<V>) {
    this.#store = store
    this.#namespace = namespace
    this.#codec = codec
    for (const [id, bytes] of store.kvList(namespace)) {
      try {
        this.#byId.set(id, codec.decode(bytes))
      } catch {
        // A record this version cannot read: the message is sent as if it carried nothing.
      }
    }
  }

  get(id: string): V | undefined {
    return this.#byId.get(id)
  }

  /** Records `id` as a carrier, with the step under way (undone with it). */
  set(id: string, value: V): void {
    this.#store.kvSet(this.#namespace, id, this.#codec.encode(value))
    this.#byId.set(id, value)
    this.#store.onRollback(() => this.#byId.delete(id))
  }

  /** Forgets `id` (its message reached a final state), with the step under way. */
  forget(id: string): void {
    const value = this.#byId.get(id)
    if (value === undefined) return
    this.#store.kvDelete(this.#namespace, id)
    this.#byId.delete(id)
    this.#store.onRollback(() => this.#byId.set(id, value))
  }
}
