/**
 * Ack tags: how the source of an opaque message recognises its acknowledgement without the
 * acknowledgement naming the message.
 *
 * The source seals the tag inside the body, beside the ack secret; the recipient's node puts it,
 * not the secret, into the acknowledgement envelope it sends back (mesh-payload.ts, kind 4). A
 * relay that carries both cannot link them, even once the secret has spread as the proof:
 *
 * ```
 * ackTag = first 16 bytes of HMAC-SHA-256(ackKey, messageId)
 * ```
 *
 * `ackKey` is this node's own secret (kv `mesh` / `ack-key`, 32 random bytes, made on first use),
 * so the source can recompute the tag of every message it still holds after a restart, with
 * nothing stored per message.
 */
import { createHmac } from 'node:crypto'
import type { Store } from '../store/store.ts'
import { bytesEqual } from '../wire/cbor.ts'
import { ACK_TAG_LENGTH } from './mesh-payload.ts'

const KV_NAMESPACE = 'mesh'
const KV_KEY = 'ack-key'
const KEY_LENGTH = 32

/** The tags of this node's own messages still held, and the key they are made with. */
export class AckTags {
  readonly #store: Store
  readonly #randomBytes: (n: number) => Uint8Array
  #key: Uint8Array | undefined
  /** Tag (hex) → message ID (hex), for own messages held. */
  readonly #messages = new Map<string, string>()
  /** The last tag made: a sender asks for it to seal it, then the core again as it sends. */
  #last: { id: Uint8Array; tag: Uint8Array } | undefined

  constructor(store: Store, randomBytes: (n: number) => Uint8Array) {
    this.#store = store
    this.#randomBytes = randomBytes
  }

  /** The ack tag of message `id` (made with this node's key, created on first use). */
  tagOf(id: Uint8Array): Uint8Array {
    const last = this.#last
    if (last !== undefined && this.#key !== undefined && bytesEqual(last.id, id)) return last.tag
    if (this.#key === undefined) {
      const stored = this.#store.kvGet(KV_NAMESPACE, KV_KEY)
      if (stored !== undefined && stored.length === KEY_LENGTH) this.#key = stored
      else {
        const fresh = this.#randomBytes(KEY_LENGTH)
        this.#store.kvSet(KV_NAMESPACE, KV_KEY, fresh)
        this.#key = fresh
        // Kept only if stored: a key the store lost would make tags that a restart cannot remake.
        this.#store.onRollback(() => {
          if (this.#key !== fresh) return
          this.#key = undefined
          this.#last = undefined
        })
      }
    }
    const tag = new Uint8Array(
      createHmac('sha256', this.#key).update(id).digest().subarray(0, ACK_TAG_LENGTH),
    )
    this.#last = { id: new Uint8Array(id), tag }
    return tag
  }

  /** Remembers that `tag` (hex) answers message `key` (hex). */
  remember(tag: string, key: string): void {
    this.#messages.set(tag, key)
  }

  /** The message `tag` answers, if one of ours is still held. */
  messageOf(tag: Uint8Array): string | undefined {
    return this.#messages.get(Buffer.from(tag).toString('hex'))
  }

  forget(tag: string): void {
    this.#messages.delete(tag)
  }
}
