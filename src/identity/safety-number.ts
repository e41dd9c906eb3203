/**
 * Safety numbers: 60 digits two people compare (read aloud or by scanning) to be sure that each
 * holds the other's real account key, with no one in the middle.
 *
 * Follows Signal's numeric fingerprint construction: for each party,
 * `h = SHA-512(version ‖ key ‖ id)`, then 5,200 times `h = SHA-512(h ‖ key)`; the first 30 bytes
 * give 30 digits (six 5-byte chunks, each a big-endian integer mod 100,000). The two 30-digit
 * halves are sorted, so both people see the same number. The iterations make a key with a chosen
 * safety number expensive to find.
 */
import { createHash } from 'node:crypto'
import { TalkenError } from '../errors.ts'
import { PUBLIC_KEY_LENGTH } from './ed25519.ts'
import { toTextId } from './text-id.ts'

const VERSION = Buffer.from([0, 1])
const ITERATIONS = 5200

function half(accountKey: Uint8Array): string {
  let h = createHash('sha512').update(VERSION).update(accountKey).update(toTextId(accountKey)).digest()
  for (let i = 0; i < ITERATIONS; i++) h = createHash('sha512').update(h).update(accountKey).digest()
  let digits = ''
  for (let chunk = 0; chunk < 6; chunk++) {
    const n = h.readUIntBE(chunk * 5, 5) % 100000
    digits += n.toString().padStart(5, '0')
  }
  return digits
}

/**
 * The safety number of two account keys: the same whichever side computes it.
 * Returns 60 digits as twelve groups of five separated by spaces.
 */
export function safetyNumber(ourKey: Uint8Array, theirKey: Uint8Array): string {
  if (ourKey.length !== PUBLIC_KEY_LENGTH || theirKey.length !== PUBLIC_KEY_LENGTH) {
    throw new TalkenError('invalid_argument', 'safety numbers are computed from two 32-byte account keys')
  }
  const [a, b] = [half(ourKey), half(theirKey)].sort()
  return `${a}${b}`.match(/.{5}/g)!.join(' ')
}
