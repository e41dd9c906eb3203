/**
 * The mesh destination tag of an account: what envelopes carry instead of the account key.
 *
 * `tag = SHA-256("talken/destination/v1" ‖ 0 ‖ accountKey)[0..16]`
 *
 * A relay that sees a tag cannot turn it back into a text ID unless it already knows the account
 * key (a contact of that person can). It is stable, so a relay can tell that two envelopes go to
 * the same place; see docs/threat-model.md.
 */
import { createHash } from 'node:crypto'
import { TalkenError } from '../errors.ts'
import { domainSeparated, PUBLIC_KEY_LENGTH } from '../identity/ed25519.ts'
import { DESTINATION_LENGTH } from '../wire/limits.ts'

export function destinationTag(accountKey: Uint8Array): Uint8Array {
  if (accountKey.length !== PUBLIC_KEY_LENGTH)
    throw new TalkenError('invalid_argument', 'an account key is 32 bytes')
  const digest = createHash('sha256').update(domainSeparated('talken/destination/v1', accountKey)).digest()
  return new Uint8Array(digest.subarray(0, DESTINATION_LENGTH))
}
