/**
 * `talken:` contact links: a signed contact card in text form, for chat, mail and QR codes.
 *
 * ```
 * talken:<card>.<id>
 *   card = base64url, no padding, of ( ContactCard bytes ‖ check )
 *   check = first 4 bytes of SHA-256("talken/link/v1" 0x00 ‖ ContactCard bytes)
 *   id    = the account's text ID (61 characters, Bech32m), which must match the card
 * ```
 * Three layers catch three kinds of damage: the ID comes last, so a link cut short loses it and
 * is reported `malformed`; a character changed by hand breaks the 32-bit check (or the ID's own
 * Bech32m checksum) and is reported `bad_checksum`; a card altered on purpose, with the check
 * recomputed, fails the account signature: `bad_signature`.
 */
import { createHash } from 'node:crypto'
import { base64urlnopad } from '@scure/base'
import { TalkenError } from '../errors.ts'
import { bytesEqual } from '../wire/cbor.ts'
import { MAX_CARD_BYTES } from '../wire/limits.ts'
import { type ContactCard, decodeContactCard, encodeContactCard } from './contact-card.ts'
import { parseTextId, TEXT_ID_LENGTH, toTextId } from './text-id.ts'

/** The URI scheme of contact links. */
export const LINK_SCHEME = 'talken:'
const CHECK_LENGTH = 4
const CHECK_DOMAIN = Buffer.from('talken/link/v1\u0000', 'utf8')
/** Longest link accepted: the largest card in base64 plus scheme, separator and ID. */
export const MAX_LINK_LENGTH =
  LINK_SCHEME.length + Math.ceil(((MAX_CARD_BYTES + CHECK_LENGTH) * 4) / 3) + 1 + 61

const BASE64URL = /^[A-Za-z0-9_-]*$/
const ID_SHAPE = /^tk1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}$/

function check(cardBytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(CHECK_DOMAIN).update(cardBytes).digest().subarray(0, CHECK_LENGTH)
}

/** Formats a signed card as a `talken:` link. */
export function toContactLink(card: ContactCard): string {
  const bytes = encodeContactCard(card)
  const payload = new Uint8Array(bytes.length + CHECK_LENGTH)
  payload.set(bytes, 0)
  payload.set(check(bytes), bytes.length)
  return `${LINK_SCHEME}${base64urlnopad.encode(payload)}.${toTextId(card.accountKey)}`
}

/** How many positions of `s` differ from the pattern of a text ID. */
function idShapeMismatches(s: string): number {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!
    if (i < 3) n += c === 'tk1'[i] ? 0 : 1
    else n += /[qpzry9x8gf2tvdw0s3jn54khce6mua7l]/.test(c) ? 0 : 1
  }
  return n
}

const typo = (what: string) => new TalkenError('bad_checksum', `this link has a typo: ${what}`)
const broken = (what: string) => new TalkenError('malformed', `not a complete Talken link: ${what}`)

/**
 * Parses and verifies a contact link, returning its card.
 * Throws `malformed` (not a link, cut short, garbage), `too_large`, `bad_checksum` (a changed
 * character), `bad_signature` (a card altered on purpose) or `unsupported_version` (a card of a
 * version this build does not know), and never anything else.
 */
export function parseContactLink(text: string): ContactCard {
  if (typeof text !== 'string') throw broken('expected text')
  // Links wrapped over several lines (mail, chat) still parse: whitespace never belongs to one.
  const link = text.replace(/\s+/g, '')
  if (link.length > MAX_LINK_LENGTH)
    throw new TalkenError('too_large', 'this link is longer than any Talken link')
  const scheme = link.slice(0, LINK_SCHEME.length).toLowerCase()
  if (scheme !== LINK_SCHEME) {
    // One changed character in the scheme of an otherwise whole link is a typo; anything else is not ours.
    const changed = [...LINK_SCHEME].filter((c, i) => scheme[i] !== c).length
    if (changed === 1 && link.length > LINK_SCHEME.length + TEXT_ID_LENGTH + 1)
      throw typo('the scheme is misspelled')
    throw broken('it does not start with talken:')
  }
  const rest = link.slice(LINK_SCHEME.length)
  if (rest.length < TEXT_ID_LENGTH + 2) throw broken('it is too short')
  const id = rest.slice(-TEXT_ID_LENGTH)
  const separator = rest[rest.length - TEXT_ID_LENGTH - 1]
  const encoded = rest.slice(0, -TEXT_ID_LENGTH - 1)

  if (!ID_SHAPE.test(id)) {
    if (idShapeMismatches(id) === 1 && separator === '.') throw typo('the ID at its end is mistyped')
    throw broken('the ID at its end is missing or cut short')
  }
  const accountKey = parseTextId(id) // bad_checksum on a typo in the ID
  if (separator !== '.') throw typo('the separator before the ID is wrong')

  if (!BASE64URL.test(encoded)) {
    const bad = [...encoded].filter((c) => !/[A-Za-z0-9_-]/.test(c)).length
    if (bad === 1) throw typo('a character that links never contain')
    throw broken('it contains characters that links never contain')
  }
  if (encoded.length % 4 === 1) throw broken('the card is cut short')
  let payload: Uint8Array
  try {
    payload = base64urlnopad.decode(encoded)
  } catch {
    throw typo('its last character was changed')
  }
  if (payload.length <= CHECK_LENGTH) throw broken('the card is missing')
  const cardBytes = payload.subarray(0, payload.length - CHECK_LENGTH)
  if (!bytesEqual(check(cardBytes), payload.subarray(payload.length - CHECK_LENGTH))) {
    throw typo('its check does not match')
  }
  const card = decodeContactCard(cardBytes)
  if (!bytesEqual(card.accountKey, accountKey)) {
    throw new TalkenError('bad_signature', 'the ID in this link does not belong to its card')
  }
  return card
}
