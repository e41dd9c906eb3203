/**
 * A direct message between two accounts: what the mesh carries as a message body.
 *
 * ```
 * [ version=1, kind=1 (text), senderCard: bytes, sentAt: uint (Unix ms), text: string, signature: bytes(64) ]
 * [ version=1, kind=2 (read receipt), senderCard, sentAt, ids: [bytes(16)…] (1–64), signature ]
 * [ version=1, kind=3 (resend request), senderCard, sentAt, ids: [bytes(16)…] (1–64), signature ]
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
 * (new addresses, fresh prekeys) with the next message. The signature is the
 * sender's account key over `"talken/direct-message/v1" ‖ 0 ‖ CBOR([recipientKey, kind, sentAt,
 * text])`: bound to the recipient, so a message cannot be re-addressed to someone else.
 *
 * The node seals this body end to end (src/e2e/session-store.ts) before the mesh carries it, so
 * relays see neither the card, the text nor the signature (docs/threat-model.md).
 */
import { TalkenError } from '../errors.ts'
import { type ContactCard, decodeContactCard } from '../identity/contact-card.ts'
import { domainSeparated, PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH, verifySignature } from '../identity/ed25519.ts'
import type { Identity } from '../identity/identity.ts'
import { MAX_BODY_BYTES } from '../mesh/mesh-payload.ts'
import { decodeCbor, encodeCbor, FieldReader } from '../wire/cbor.ts'
import { MAX_CARD_BYTES } from '../wire/limits.ts'

const VERSION = 1
const KIND_TEXT = 1
const KIND_RECEIPT = 2
const KIND_RESEND = 3
/** Most message IDs one read receipt names. */
export const MAX_RECEIPT_IDS = 64
const MESSAGE_ID_BYTES = 16
const DOMAIN = 'talken/direct-message/v1'

/** Longest text of one message, in UTF-8 bytes. */
export const MAX_TEXT_BYTES = 16 * 1024

/** A verified direct message. */
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

function signedPart(
  recipientKey: Uint8Array,
  kind: number,
  sentAt: number,
  content: string | Uint8Array[],
): Uint8Array {
  return domainSeparated(DOMAIN, encodeCbor([recipientKey, kind, sentAt, content]))
}

/** What a list of message IDs says: read (a read receipt) or could not be opened (a resend request). */
export type IdListKind = 'read' | 'resend'

/** Encodes and signs a read receipt for 1–64 message IDs (hex) of `recipientKey`'s. */
export function encodeReadReceipt(
  sender: Identity,
  senderCard: Uint8Array,
  recipientKey: Uint8Array,
  ids: readonly string[],
  sentAt: number,
): Uint8Array {
  return encodeIdList('read', sender, senderCard, recipientKey, ids, sentAt)
}

/** Encodes and signs a read receipt (`read`) or a resend request (`resend`) for 1–64 message IDs (hex) of `recipientKey`'s. */
export function encodeIdList(
  list: IdListKind,
  sender: Identity,
  senderCard: Uint8Array,
  recipientKey: Uint8Array,
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
  const kind = list === 'read' ? KIND_RECEIPT : KIND_RESEND
  const signature = sender.account.sign(signedPart(recipientKey, kind, sentAt, raw))
  return encodeCbor([VERSION, kind, senderCard, sentAt, raw, signature])
}

/**
 * Encodes and signs a text message from `sender` to `recipientKey`; `senderCard` is the sender's
 * card, or empty when the recipient has it already.
 */
export function encodeDirectMessage(
  sender: Identity,
  senderCard: Uint8Array,
  recipientKey: Uint8Array,
  text: string,
  sentAt: number,
): Uint8Array {
  if (recipientKey.length !== PUBLIC_KEY_LENGTH)
    throw new TalkenError('invalid_argument', 'recipient key is 32 bytes')
  const bytes = Buffer.byteLength(text, 'utf8')
  if (bytes === 0) throw new TalkenError('invalid_argument', 'a message needs some text')
  if (bytes > MAX_TEXT_BYTES) {
    throw new TalkenError('too_large', `a message is at most ${MAX_TEXT_BYTES} bytes of text, not ${bytes}`)
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the decoder refuses these, so never send them
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(text)) {
    throw new TalkenError(
      'invalid_argument',
      'a message may not contain control characters other than newlines and tabs',
    )
  }
  if (!Number.isSafeInteger(sentAt) || sentAt < 0)
    throw new TalkenError('invalid_argument', 'sentAt is Unix ms')
  const signature = sender.account.sign(signedPart(recipientKey, KIND_TEXT, sentAt, text))
  const body = encodeCbor([VERSION, KIND_TEXT, senderCard, sentAt, text, signature])
  if (body.length > MAX_BODY_BYTES) throw new TalkenError('too_large', 'message body too large')
  return body
}

/**
 * Decodes and verifies a message addressed to `recipientKey`; `decodeCard` may be a cache in
 * front of {@link decodeContactCard} (a card's bytes verify the same way every time). Throws `malformed`, `too_large`,
 * `non_canonical`, `unsupported_version` or `bad_signature`.
 */
export function decodeDirectMessage(
  bytes: Uint8Array,
  recipientKey: Uint8Array,
  decodeCard: (bytes: Uint8Array) => ContactCard = decodeContactCard,
): DirectMessage {
  const r = new FieldReader(decodeCbor(bytes, MAX_BODY_BYTES, 'direct message'), 'direct message', 6)
  const version = r.uint('version', 255)
  if (version !== VERSION) throw new TalkenError('unsupported_version', `direct message version ${version}`)
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
  const signature = r.bytes('signature', SIGNATURE_LENGTH)
  if (!verifySignature(sender.accountKey, signedPart(recipientKey, kind, sentAt, content), signature)) {
    throw new TalkenError('bad_signature', 'direct message signature does not verify')
  }
  if (typeof content === 'string') return { sender, sentAt, text: content }
  const ids = content.map((b) => Buffer.from(b).toString('hex'))
  return kind === KIND_RECEIPT
    ? { sender, sentAt, text: '', readIds: ids }
    : { sender, sentAt, text: '', resendIds: ids }
}
