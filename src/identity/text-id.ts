/**
 * Text IDs: an account public key written as Bech32m (BIP 350) with the human-readable part
 * `tk`, for example `tk1…` (61 characters).
 *
 * Bech32m's BCH checksum detects any error in up to four characters and most longer ones, so a
 * mistyped ID is refused with `bad_checksum` instead of naming a stranger. IDs are lower case;
 * upper-case input (as from a QR code's alphanumeric mode) is accepted.
 */
import { bech32m } from '@scure/base'
import { TalkenError } from '../errors.ts'
import { PUBLIC_KEY_LENGTH } from './ed25519.ts'

/** The human-readable prefix of every text ID. */
export const TEXT_ID_PREFIX = 'tk'
/** Length of every text ID: 'tk' + '1' + 52 data characters + 6 checksum characters. */
export const TEXT_ID_LENGTH = 61

/** Encodes a 32-byte account public key as a text ID. */
export function toTextId(accountKey: Uint8Array): string {
  if (accountKey.length !== PUBLIC_KEY_LENGTH) {
    throw new TalkenError('invalid_argument', 'an account key is 32 bytes')
  }
  return bech32m.encode(TEXT_ID_PREFIX, bech32m.toWords(accountKey), TEXT_ID_LENGTH)
}

/**
 * Decodes a text ID to its account public key.
 * Throws `bad_checksum` for a typo and `malformed` for anything that is not a text ID.
 */
export function parseTextId(text: string): Uint8Array {
  if (typeof text !== 'string') throw new TalkenError('malformed', 'a text ID is a string')
  const trimmed = text.trim()
  // All lower case, or all upper (as a QR code's alphanumeric mode has it); mixed, never (BIP 350).
  if (trimmed !== trimmed.toLowerCase() && trimmed !== trimmed.toUpperCase()) {
    throw new TalkenError('malformed', 'not a Talken ID: it mixes upper and lower case')
  }
  const id = trimmed.toLowerCase()
  if (id.length !== TEXT_ID_LENGTH || !id.startsWith(`${TEXT_ID_PREFIX}1`)) {
    throw new TalkenError(
      'malformed',
      `not a Talken ID: expected ${TEXT_ID_LENGTH} characters starting with tk1`,
    )
  }
  if (!/^tk1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]+$/.test(id)) {
    throw new TalkenError('malformed', 'not a Talken ID: it contains characters an ID never has')
  }
  let words: number[]
  try {
    words = bech32m.decode(id as `${string}1${string}`, TEXT_ID_LENGTH).words
  } catch (cause) {
    throw new TalkenError('bad_checksum', 'this ID has a typo: its checksum does not match', { cause })
  }
  let key: Uint8Array
  try {
    key = bech32m.fromWords(words)
  } catch (cause) {
    throw new TalkenError('malformed', 'not a Talken ID: bad padding', { cause })
  }
  if (key.length !== PUBLIC_KEY_LENGTH)
    throw new TalkenError('malformed', 'not a Talken ID: wrong key length')
  return key
}

/** True when `text` is a well-formed text ID with a valid checksum. */
export function isTextId(text: string): boolean {
  try {
    parseTextId(text)
    return true
  } catch {
    return false
  }
}
