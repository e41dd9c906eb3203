/**
 * An exact map with a fixed capacity, forgetting its oldest entries first. Used for duplicate
 * suppression (no false positives, unlike a Bloom filter: a genuinely new message is never
 * taken for a duplicate) and for short-lived protocol state.
 */
export class BoundedMap<K, V> {
  readonly #map = new Map<K, V>()
  readonly #capacity: number

  /** `capacity` ≥ 1 entries at most. */
  constructor(capacity: number) {
    this.#capacity = Math.max(1, capacity)
  }

  get size(): number {
    return this.#map.size
  }

  get(key: K): V | undefined {
    return this.#map.get(key)
  }

  has(key: K): boolean {
    return this.#map.has(key)
  }

  /** Inserts or refreshes `key` as the newest entry, evicting the oldest when full. */
  set(key: K, value: V): void {
    this.#map.delete(key)
    this.#map.set(key, value)
    if (this.#map.size > this.#capacity) {
      const oldest = this.#map.keys().next()
      if (!oldest.done) this.#map.delete(oldest.value)
    }
  }

  /**
   * {@link set}, returning how to put back what `key` held before (for writes that are undone:
   * `store.onRollback(map.setUndoably(key, value))`).
   */
  setUndoably(key: K, value: V): () => void {
    const before = this.#map.get(key)
    this.set(key, value)
    return () => {
      if (before === undefined) this.#map.delete(key)
      else this.set(key, before)
    }
  }

  delete(key: K): boolean {
    return this.#map.delete(key)
  }

  /** Removes entries for which `dead` returns true. */
  sweep(dead: (value: V, key: K) => boolean): void {
    for (const [k, v] of this.#map) if (dead(v, k)) this.#map.delete(k)
  }

  entries(): IterableIterator<[K, V]> {
    return this.#map.entries()
  }
}
