/**
 * Every failure Talken reports is a {@link TalkenError} with a machine-readable `code`.
 * Callers match on `code`; the message is for people.
 */

/** The closed set of error codes. Adding one is a public API change: document it in docs/errors.md. */
export type TalkenErrorCode =
  // input and decoding
  | 'malformed' // bytes or text that do not parse as the expected structure
  | 'too_large' // a size limit was exceeded before or while decoding
  | 'unsupported_version' // a structure from a newer (or unknown) protocol version
  | 'non_canonical' // a signed structure not in its one canonical encoding
  | 'bad_checksum' // a text ID whose checksum does not match (a typo)
  | 'bad_signature' // a signature that does not verify
  | 'invalid_argument' // an API argument outside its contract
  // identity and keys
  | 'no_identity' // the data directory has no identity yet (run `talken init`)
  | 'identity_exists' // `init` on a data directory that already has one
  | 'bad_passphrase' // the key file could not be decrypted with the given passphrase
  | 'passphrase_required' // the key file is encrypted and no passphrase was given
  // contacts
  | 'unknown_contact' // no contact matches the given name or ID
  | 'ambiguous_contact' // more than one contact matches
  | 'self_contact' // adding one's own link as a contact
  // storage
  | 'not_found' // a record that does not exist
  | 'conflict' // a record that exists already with different content
  | 'quota_exceeded' // custody or queue quotas would be exceeded
  | 'storage_full' // the disk is full
  | 'storage_failed' // any other storage failure
  | 'closed' // an operation on a closed store or stopped node
  // end-to-end encryption
  | 'decrypt_failed' // a sealed message that does not decrypt: altered, or not for any session or key we hold
  | 'replayed' // a message already decrypted once (a replay or duplicate); it is not delivered twice
  // rooms
  | 'not_permitted' // a room entry or action its membership does not allow (not a member, not an admin)
  // node and daemon
  | 'not_running' // a command that needs the daemon, and none runs for this data directory
  | 'unsafe_directory' // a data directory (or its control socket) another user owns or can write to
  // io
  | 'io_failed'

/** Optional structured context carried with an error (never secrets). */
export type ErrorDetails = Readonly<Record<string, string | number | boolean | undefined>>

/**
 * The one error type of the library.
 *
 * @example
 * try { parseContactLink(text) } catch (err) {
 *   if (err instanceof TalkenError && err.code === 'bad_signature') console.log('tampered link')
 * }
 */
export class TalkenError extends Error {
  override readonly name = 'TalkenError'
  readonly code: TalkenErrorCode
  readonly details: ErrorDetails | undefined

  constructor(code: TalkenErrorCode, message: string, options?: { cause?: unknown; details?: ErrorDetails }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.details = options?.details
  }

  /** The JSON shape the CLI prints under `--json`. */
  toJSON(): { code: TalkenErrorCode; message: string } {
    return { code: this.code, message: this.message }
  }
}

/** True when `err` is a TalkenError, optionally with the given code. */
export function isTalkenError(err: unknown, code?: TalkenErrorCode): err is TalkenError {
  return err instanceof TalkenError && (code === undefined || err.code === code)
}

/**
 * True when `err` says the store could not write (`storage_full`, `storage_failed`): the step's
 * failure, never the input's, so what was being handled must come again rather than be dropped.
 */
export function isStorageFailure(err: unknown): boolean {
  return isTalkenError(err, 'storage_full') || isTalkenError(err, 'storage_failed')
}
