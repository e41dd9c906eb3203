/**
 * The delivery contract at the destination: a message is handed to the application exactly once,
 * also across restarts, and acknowledged only with a proof the application vouches for.
 *
 * - The received record (in the store's messages) is the memory of what was delivered; it is
 *   written in the same transaction as whatever the application stored on delivery.
 * - A message the application refused (it could not open or verify it) is never acknowledged
 *   (its sender must not be told it was delivered) and leaves no record: an envelope's ID is not
 *   bound to its payload, so a copy altered on the way, or junk sent under a real message's ID,
 *   must not stop the genuine copy that comes later, by another path or as a retry, nor can
 *   junk fill the store.
 * - An opaque message (payload kind 3) proves delivery only with the secret the application found
 *   inside it, which must hash to the envelope's ID; when it does not, what the application wrote
 *   on delivery (a session advanced, the message filed) is undone with it. That secret, and the
 *   sender's tag and the ack tag (ack-tags.ts) when known, are kept (kv {@link PROOF_NAMESPACE})
 *   so that a repeat, whose body cannot be opened twice, is acknowledged again, also after a
 *   restart.
 */
import type { Store } from '../store/store.ts'
import { bytesEqual } from '../wire/cbor.ts'
import type { Envelope } from '../wire/envelope.ts'
import { DESTINATION_LENGTH } from '../wire/limits.ts'
import { ACK_SECRET_LENGTH, ACK_TAG_LENGTH, type MeshPayload, proofId } from './mesh-payload.ts'
import type { RouterHost } from './router.ts'
import { tagKey } from './routing-table.ts'

/**
 * kv namespace of the delivery proofs of opaque messages received (message ID in hex → ack
 * secret, then the source tag when known, then the ack tag when known too).
 */
const PROOF_NAMESPACE = 'mesh-proof'

/** Where a received message is filed when neither the application nor the payload names its sender. */
const UNKNOWN_CONVERSATION = 'unknown'

/** What filing one received message came to. */
export interface FiledDelivery {
  /** False for a repeat of a message received before, or one refused (nothing kept). */
  readonly fresh: boolean
  /** The application refused it (it could not open or verify it), or it held no proof of its ID. */
  readonly refused: boolean
  /** The secret to acknowledge with; undefined when the message must not be acknowledged. */
  readonly proof: Uint8Array | undefined
  /** Where the acknowledgement envelope goes (the sender's tag), when known. */
  readonly source: Uint8Array | undefined
  /** What the acknowledgement envelope carries instead of the proof, when known (ack-tags.ts). */
  readonly ackTag: Uint8Array | undefined
}

/** A message's payload: clear (kind 1) or opaque (kind 3). */
export type MessagePayload = Extract<MeshPayload, { kind: 1 | 3 }>

/**
 * Records a message addressed to us (`key`: its ID in hex), handing it to `deliver` unless it is a
 * repeat, all in one store transaction.
 */
export function fileDelivery(
  store: Store,
  deliver: RouterHost['deliver'],
  o: { key: string; envelope: Envelope; payload: MessagePayload; hops: number; now: number },
): FiledDelivery {
  const { key, envelope, payload, now } = o
  let proof: Uint8Array | undefined = payload.kind === 1 ? payload.ackSecret : undefined
  let source: Uint8Array | undefined = payload.kind === 1 ? payload.source : undefined
  let ackTag: Uint8Array | undefined
  let refused = false
  const fresh = store.transaction(() => {
    const existing = store.getMessage(key)
    if (existing !== undefined) {
      // A repeat: acknowledge again (the first acknowledgement may have been lost), with the
      // secret and source the application found in the body, which cannot be opened twice.
      if (proof === undefined) {
        const kept = store.kvGet(PROOF_NAMESPACE, key)
        if (kept !== undefined && kept.length >= ACK_SECRET_LENGTH) {
          proof = kept.slice(0, ACK_SECRET_LENGTH)
          const rest = kept.subarray(ACK_SECRET_LENGTH)
          if (rest.length >= DESTINATION_LENGTH) source = rest.slice(0, DESTINATION_LENGTH)
          if (rest.length === DESTINATION_LENGTH + ACK_TAG_LENGTH) ackTag = rest.slice(DESTINATION_LENGTH)
        }
      }
      return false
    }
    try {
      // Its own transaction: a message that turns out to hold no proof of its ID takes back what
      // the application wrote when it opened it (the genuine copy must still open later).
      return store.transaction(() => {
        const filing = deliver({ id: key, payload: payload.body, hops: o.hops })
        if (filing?.refused !== undefined) {
          // The application undid its own writes; its ask for the message again (a first contact
          // whose one-time prekey is gone) stays.
          refused = true
          return false
        }
        if (payload.kind === 3) {
          const secret = filing?.ackSecret
          if (
            secret === undefined ||
            secret.length !== ACK_SECRET_LENGTH ||
            !bytesEqual(proofId(secret), envelope.id)
          ) {
            throw NO_PROOF
          }
          proof = secret
          if (filing?.source?.length === DESTINATION_LENGTH) {
            source = filing.source
            if (filing.ackTag?.length === ACK_TAG_LENGTH) ackTag = filing.ackTag
          }
          const kept = [secret, ...(source ? [source] : []), ...(ackTag ? [ackTag] : [])]
          store.kvSet(PROOF_NAMESPACE, key, Buffer.concat(kept))
        }
        return store.addMessage({
          id: key,
          conversation: filing?.conversation ?? (source ? tagKey(source) : UNKNOWN_CONVERSATION),
          direction: 'in',
          body: filing?.body ?? payload.body,
          createdAt: now,
          state: 'received',
          updatedAt: now,
        })
      })
    } catch (err) {
      if (err !== NO_PROOF) throw err
      refused = true
      return false
    }
  })
  if (refused) return { fresh: false, refused, proof: undefined, source: undefined, ackTag: undefined }
  return { fresh, refused, proof, source, ackTag }
}

/** Thrown to undo a delivery whose body held no proof of its envelope's ID. */
const NO_PROOF = new Error('the message holds no delivery proof for its ID')
