/**
 * A baseline router's view of its {@link BaselineStore}: the drop-oldest message buffer (as The
 * ONE's `ActiveRouter.makeRoomForMessage`), an index of held messages by destination (to find
 * deliverable ones at each encounter without scanning), the set of messages the policy would
 * relay now (so an encounter shuffles only those, not every message held), the record of
 * messages delivered here, and the summary vector listing both. Everything it derives is rebuilt from the store, so a
 * router created after churn picks up where the last one stopped.
 */
import { type BaselineStore, type HeldMessage, payloadSize } from './baseline-store.ts'
import { SummaryVector } from './summary-vector.ts'

/** Held and delivered messages of one node. */
export class MessageBuffer {
  readonly store: BaselineStore
  private readonly summaryVector = new SummaryVector()
  private readonly byDest = new Map<string, Set<string>>()
  private readonly relayable = new Set<string>()
  private readonly isRelayable: (m: HeldMessage) => boolean

  /** `isRelayable` says whether a held message may be handed to a non-destination neighbour now. */
  constructor(store: BaselineStore, isRelayable: (m: HeldMessage) => boolean) {
    this.store = store
    this.isRelayable = isRelayable
    for (const m of store.messages.values()) this.index(m)
  }

  /** Messages held. */
  get size(): number {
    return this.store.messages.size
  }

  /** True when nothing is held and nothing remembered as delivered. */
  get empty(): boolean {
    return this.store.messages.size === 0 && this.store.delivered.size === 0
  }

  get(key: string): HeldMessage | undefined {
    return this.store.messages.get(key)
  }

  /** Held here, or delivered here. */
  knows(key: string): boolean {
    return this.store.messages.has(key) || this.store.delivered.has(key)
  }

  wasDelivered(key: string): boolean {
    return this.store.delivered.has(key)
  }

  /** The keys of held messages that may be relayed now, oldest first (a copy). */
  relayableKeys(): string[] {
    return [...this.relayable]
  }

  /** Re-evaluates whether `m` may be relayed (after its copy count changed). */
  refresh(m: HeldMessage): void {
    if (this.store.messages.get(m.key) !== m) return
    if (this.isRelayable(m)) this.relayable.add(m.key)
    else this.relayable.delete(m.key)
  }

  /** Keys of held messages destined to the node whose tag key is `tag`. */
  forDestination(tag: string): ReadonlySet<string> | undefined {
    return this.byDest.get(tag)
  }

  /** Stores `m`, dropping the oldest messages to make room; false when it exceeds the whole buffer. */
  add(m: HeldMessage): boolean {
    const store = this.store
    const size = payloadSize(m)
    if (size > store.capacityBytes) return false
    for (const old of store.messages.values()) {
      if (store.bytes + size <= store.capacityBytes) break
      this.remove(old)
    }
    store.messages.set(m.key, m)
    store.bytes += size
    this.index(m)
    this.summaryVector.append(m.record, 0)
    return true
  }

  remove(m: HeldMessage): void {
    if (!this.store.messages.delete(m.key)) return
    this.store.bytes -= payloadSize(m)
    this.summaryVector.invalidate()
    this.relayable.delete(m.key)
    const set = this.byDest.get(m.destKey)
    if (set !== undefined) {
      set.delete(m.key)
      if (set.size === 0) this.byDest.delete(m.destKey)
    }
  }

  /** Records that message `key` (ID bytes `id`, kept) was delivered here. */
  markDelivered(key: string, id: Uint8Array, expiresAt: number): void {
    this.store.delivered.set(key, { id, expiresAt })
    this.summaryVector.append(id, 0)
  }

  /** The summary vector: prefixes of the IDs held and delivered, 8 bytes each (valid until the next change). */
  summary(): Uint8Array {
    return this.summaryVector.bytes(this.store)
  }

  /**
   * Drops expired messages (telling `onExpired` about each) and delivered records older than
   * their lifetime plus `graceMs`; returns when the next of the rest expires (Infinity if never).
   */
  purge(now: number, graceMs: number, onExpired: (m: HeldMessage) => void): number {
    let next = Number.POSITIVE_INFINITY
    for (const m of this.store.messages.values()) {
      if (m.expiresAt <= now) {
        this.remove(m)
        onExpired(m)
      } else if (m.expiresAt < next) next = m.expiresAt
    }
    for (const [key, d] of this.store.delivered) {
      const until = d.expiresAt + graceMs
      if (until <= now) {
        this.store.delivered.delete(key)
        this.summaryVector.invalidate()
      } else if (until < next) next = until
    }
    return next
  }

  private index(m: HeldMessage): void {
    let set = this.byDest.get(m.destKey)
    if (set === undefined) {
      set = new Set()
      this.byDest.set(m.destKey, set)
    }
    set.add(m.key)
    if (this.isRelayable(m)) this.relayable.add(m.key)
  }
}
