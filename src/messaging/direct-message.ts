/**
 * A direct message between two accounts: what the mesh carries as a message body.
 *
 * ```
 * [ version=2, kind=1 (text), senderCard: bytes, sentAt: uint (Unix ms), text: string ]
 * [ version=2, kind=2 (read receipt), senderCard, sentAt, ids: [bytes(16)…] (1–64) ]
 * [ version=2, kind=3 (resend request), senderCard, sentAt, ids: [bytes(16)…] (1–64) ]
 * ```
 * A read receipt names messages of the recipient's that the sender has read (by envelope ID). A
 * resend request names messages of the recipient's that the sender received and could not open
 * because their first-contact prekey was used up already (a contact link shown to several people
 * hands them the same one-time prekeys): it travels in a session that works, and the recipient
 * sends those messages again in it.
 *
 * The sender's signed contact card rides along until the recipient has it (then the field is
 * empty, and the recipient uses the card it holds for the sending device), so a recipient who
 * has not added the sender yet still learns who wrote, and contacts learn a re-signed card
 * (new addresses, fresh prekeys) with the next message.
 *
 * There is no signature: the end-to-end session authenticates the message instead, as in
 * Signal. The node seals this body (src/e2e/session-store.ts) in a session whose X3DH bound the
 * sending device's identity key and ours, and accepts it only if that device is one the card
 * certifies (src/node/direct-messages.ts). So a message can be neither forged, altered nor
 * re-addressed, and yet the recipient holds no proof of authorship that would convince anyone
 * else: the session's keys are the recipient's too (docs/threat-model.md, deniability). Version 1
 * carried an Ed25519 signature by the account key and is refused.
 */
import { TalkenError } from '../errors.ts'
import { type ContactCard, decodeContactCard } from '../identity/contact-card.ts'
import { MAX_BODY_BYTES } from '../mesh/mesh-payload.ts'
import { decodeCbor, encodeCbor, FieldReader, textProblem } from '../wire/cbor.ts'
import { MAX_CARD_BYTES } from '../wire/limits.ts'

const VERSION = 2
const KIND_TEXT = 1
const KIND_RECEIPT = 2
const KIND_RESEND = 3
/** Most message IDs one read receipt names. */
export const MAX_RECEIPT_IDS = 64
const MESSAGE_ID_BYTES = 16

/** Longest text of one message, in UTF-8 bytes. */
export const MAX_TEXT_BYTES = 16 * 1024

/** A decoded direct message: whether its session may speak for `sender` is the caller's check. */
export interface DirectMessage {
  readonly sender: ContactCard
  /** Unix milliseconds, as the sender's clock said. */
  readonly sentAt: number
  /** The text; empty for a read receipt. */
  readonly text: string
  /** For a read receipt: the IDs (hex) of the recipient's messages the sender has read. */
  readonly readIds?: readonly string[]
  /** For a resend request: the IDs (hex) of the recipient's messages the sender could not open. */
  readonly resendIds?: readonly string[]
}

/** What a list of message IDs says: read (a read receipt) or could not be opened (a resend request). */
export type IdListKind = 'read' | 'resend'

/** Encodes a read receipt for 1–64 message IDs (hex) of the recipient's. */
export function encodeReadReceipt(
  senderCard: Uint8Array,
  ids: readonly string[],
  sentAt: number,
): Uint8Array {
  return encodeIdList('read', senderCard, ids, sentAt)
}

/** Encodes a read receipt (`read`) or a resend request (`resend`) for 1–64 message IDs (hex) of the recipient's. */
export function encodeIdList(
  list: IdListKind,
  senderCard: Uint8Array,
  ids: readonly string[],
  sentAt: number,
): Uint8Array {
  if (ids.length === 0 || ids.length > MAX_RECEIPT_IDS) {
    throw new TalkenError('invalid_argument', `a receipt or request names 1 to ${MAX_RECEIPT_IDS} messages`)
  }
  const raw = ids.map((id) => {
    const b = Buffer.from(id, 'hex')
    if (b.length !== MESSAGE_ID_BYTES)
      throw new TalkenError('invalid_argument', 'a message ID is 16 bytes of hex')
    return new Uint8Array(b)
  })
  return encodeCbor([VERSION, list === 'read' ? KIND_RECEIPT : KIND_RESEND, senderCard, sentAt, raw])
}

/**
 * Encodes a text message; `senderCard` is the sender's card, or empty when the recipient has it
 * already.
 */
export function encodeDirectMessage(senderCard: Uint8Array, text: string, sentAt: number): Uint8Array {
  const bytes = Buffer.byteLength(text, 'utf8')
  if (bytes === 0) throw new TalkenError('invalid_argument', 'a message needs some text')
  if (bytes > MAX_TEXT_BYTES) {
    throw new TalkenError('too_large', `a message is at most ${MAX_TEXT_BYTES} bytes of text, not ${bytes}`)
  }
  // The decoder refuses these, so never send them.
  const problem = textProblem(text, true)
  if (problem !== undefined) {
    throw new TalkenError('invalid_argument', `a message ${problem} (only newlines and tabs may be in it)`)
  }
  if (!Number.isSafeInteger(sentAt) || sentAt < 0)
    throw new TalkenError('invalid_argument', 'sentAt is Unix ms')
  const body = encodeCbor([VERSION, KIND_TEXT, senderCard, sentAt, text])
  if (body.length > MAX_BODY_BYTES) throw new TalkenError('too_large', 'message body too large')
  return body
}

/**
 * Decodes a message and its sender's card; `decodeCard` may be a cache in front of
 * {@link decodeContactCard} (a card's bytes verify the same way every time). Throws `malformed`,
 * `too_large`, `non_canonical`, `unsupported_version`, or `bad_signature` for a card that does
 * not verify.
 */
export function decodeDirectMessage(
  bytes: Uint8Array,
  decodeCard: (bytes: Uint8Array) => ContactCard = decodeContactCard,
): DirectMessage {
  const value = decodeCbor(bytes, MAX_BODY_BYTES, 'direct message')
  // The version first: another version may have another number of fields.
  const version = Array.isArray(value) ? value[0] : undefined
  if (typeof version === 'number' && version !== VERSION) {
    throw new TalkenError('unsupported_version', `direct message version ${version}, expected ${VERSION}`)
  }
  const r = new FieldReader(value, 'direct message', 5)
  r.uint('version', VERSION, VERSION)
  const kind = r.uint('kind', 255)
  if (kind !== KIND_TEXT && kind !== KIND_RECEIPT && kind !== KIND_RESEND) {
    throw new TalkenError('unsupported_version', `direct message kind ${kind}`)
  }
  // An empty card means "the card you have for the device this came from": decodeCard resolves it.
  const sender = decodeCard(r.bytes('senderCard', 0, MAX_CARD_BYTES))
  const sentAt = r.uint('sentAt')
  const content =
    kind === KIND_TEXT
      ? r.text('text', MAX_TEXT_BYTES, 1, true)
      : r.array('ids', MAX_RECEIPT_IDS, (v) => {
          if (!(v instanceof Uint8Array) || v.length !== MESSAGE_ID_BYTES) {
            throw new TalkenError('malformed', 'direct message: a message ID is 16 bytes')
          }
          return v
        })
  if (typeof content !== 'string' && content.length === 0) {
    throw new TalkenError('malformed', 'direct message: no message IDs')
  }
  if (typeof content === 'string') return { sender, sentAt, text: content }
  const ids = content.map((b) => Buffer.from(b).toString('hex'))
  return kind === KIND_RECEIPT
    ? { sender, sentAt, text: '', readIds: ids }
    : { sender, sentAt, text: '', resendIds: ids }
}
