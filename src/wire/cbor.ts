/**
 * Deterministic CBOR (RFC 8949 §4.2.1, "core deterministic encoding") through cborg, with the
 * checks every Talken decoder shares.
 *
 * Talken structures are CBOR arrays with fixed positions (see docs/protocol.md). Decoding is
 * strict: the input size is checked before parsing, indefinite lengths, undefined, NaN,
 * infinities, floats, tags and big integers are refused, and the bytes must be exactly what
 * re-encoding the decoded value yields, so every structure has one encoding and signed data
 * cannot be re-shaped by a relay.
 */
import { decode, encode } from 'cborg'
import { TalkenError } from '../errors.ts'

const DECODE_OPTIONS = {
  strict: true,
  allowIndefinite: false,
  allowUndefined: false,
  allowInfinity: false,
  allowNaN: false,
  allowBigInt: false,
  rejectDuplicateMapKeys: true,
  useMaps: false,
  tags: [],
} as const

/** A value that Talken's CBOR structures may hold. */
export type CborValue = number | string | boolean | null | Uint8Array | CborValue[]

/** Encodes a value in the one deterministic encoding. */
export function encodeCbor(value: CborValue): Uint8Array {
  return encode(value)
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const CONTROL_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/

/**
 * What makes `text` unfit for a text field, or undefined: control characters (C0, DEL and C1, which
 * a terminal may act on; `multiline` allows line feeds and tabs), or a leading byte-order mark
 * (decoders drop it, so the text would not decode to itself). Encoders check with this too, so
 * that nothing is sent that every recipient refuses.
 */
export function textProblem(text: string, multiline = false): string | undefined {
  if ((multiline ? CONTROL_BUT_LINES : CONTROL).test(text)) return 'contains control characters'
  if (text.startsWith('\ufeff')) return 'starts with a byte-order mark (U+FEFF)'
  return undefined
}

/**
 * Format characters (invisible: zero-width spaces, bidirectional marks, overrides and isolates,
 * word joiners, the BOM…) and line or paragraph separators. Except the zero-width non-joiner and
 * joiner (U+200C, U+200D), which Persian and Indic names and emoji sequences need, and tag
 * characters (U+E0020–U+E007F), which subdivision flags are made of.
 */
const INVISIBLE = /(?!\u200c|\u200d|[\u{e0020}-\u{e007f}])[\p{Cf}\p{Zl}\p{Zp}]/u
/** Whitespace (Unicode White_Space, as JavaScript's `\s` has it) at either end. */
const EDGE_SPACE = /^\s|\s$/u

/**
 * What makes `name` unfit for a name (an account's or a device's), or undefined: what
 * {@link textProblem} refuses on one line, and also format characters (Unicode category Cf, such
 * as U+200B, U+200E–U+200F, U+202A–U+202E, U+2060–U+2064, U+2066–U+2069, U+FEFF; not the joiners
 * U+200C and U+200D, nor tag characters) and line or paragraph
 * separators anywhere, and whitespace at either end (so a name of whitespace only): what would
 * make two names look the same, or one look like another. Texts (messages, posts) are checked
 * with `textProblem` only. An empty name is the caller's to judge.
 */
export function nameProblem(name: string): string | undefined {
  const problem = textProblem(name, false)
  if (problem !== undefined) return problem
  if (INVISIBLE.test(name)) return 'contains invisible format characters or line separators'
  if (EDGE_SPACE.test(name)) return 'starts or ends with whitespace'
  return undefined
}

/**
 * Decodes `bytes` as one canonical CBOR item no larger than `maxBytes`.
 * Throws `too_large`, `malformed` or `non_canonical`; never anything else.
 */
export function decodeCbor(bytes: Uint8Array, maxBytes: number, what: string): CborValue {
  if (!(bytes instanceof Uint8Array)) throw new TalkenError('malformed', `${what}: expected bytes`)
  if (bytes.length > maxBytes) {
    throw new TalkenError('too_large', `${what}: ${bytes.length} bytes exceeds the limit of ${maxBytes}`)
  }
  if (bytes.length === 0) throw new TalkenError('malformed', `${what}: empty input`)
  let value: unknown
  try {
    value = decode(bytes, DECODE_OPTIONS)
  } catch (cause) {
    // Strict decoding refuses a value written longer than it needs (an integer or a length in
    // more bytes): valid CBOR, not the one canonical encoding.
    if (describe(cause).includes('(strict decode)')) {
      throw new TalkenError('non_canonical', `${what}: not in canonical encoding (${describe(cause)})`, {
        cause,
      })
    }
    throw new TalkenError('malformed', `${what}: not valid CBOR (${describe(cause)})`, { cause })
  }
  let again: Uint8Array
  try {
    again = encode(value)
  } catch (cause) {
    throw new TalkenError('malformed', `${what}: unsupported CBOR content`, { cause })
  }
  if (!bytesEqual(again, bytes)) throw new TalkenError('non_canonical', `${what}: not in canonical encoding`)
  return value as CborValue
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message.slice(0, 120) : 'unknown error'
}

/** Constant-length-independent equality of two byte arrays (not constant time; for public data). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * Reads the fields of a decoded CBOR array in order, checking each one's type and bounds.
 * Every failure is a `malformed` TalkenError naming the structure and field.
 */
export class FieldReader {
  readonly #what: string
  readonly #items: readonly CborValue[]
  #index = 0

  /** `value` must be an array of exactly `count` items (or between `count` and `maxCount`). */
  constructor(value: CborValue, what: string, count: number, maxCount = count) {
    this.#what = what
    if (!Array.isArray(value)) throw this.#fail('expected an array')
    if (value.length < count || value.length > maxCount) {
      throw this.#fail(
        `expected ${count === maxCount ? count : `${count}–${maxCount}`} fields, got ${value.length}`,
      )
    }
    this.#items = value
  }

  /** How many fields are left. */
  get remaining(): number {
    return this.#items.length - this.#index
  }

  #next(): CborValue {
    const v = this.#items[this.#index++]
    if (v === undefined) throw this.#fail('missing field')
    return v
  }

  #fail(message: string, field?: string): TalkenError {
    return new TalkenError('malformed', `${this.#what}${field ? `.${field}` : ''}: ${message}`)
  }

  /** An unsigned integer in [min, max] (max at most 2^53 − 1). */
  uint(field: string, max = Number.MAX_SAFE_INTEGER, min = 0): number {
    const v = this.#next()
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      throw this.#fail(`expected an integer in [${min}, ${max}]`, field)
    }
    return v
  }

  /** A byte string of exactly `length` bytes, or of `length`..`maxLength` bytes. */
  bytes(field: string, length: number, maxLength = length): Uint8Array {
    const v = this.#next()
    if (!(v instanceof Uint8Array)) throw this.#fail('expected a byte string', field)
    if (v.length < length || v.length > maxLength) {
      throw this.#fail(
        `expected ${length === maxLength ? length : `${length}–${maxLength}`} bytes, got ${v.length}`,
        field,
      )
    }
    return v
  }

  /**
   * A UTF-8 text string of at most `maxBytes` encoded bytes, without control characters
   * (`multiline` allows line feeds and tabs, as message text needs).
   */
  text(field: string, maxBytes: number, minChars = 0, multiline = false): string {
    const v = this.#next()
    if (typeof v !== 'string') throw this.#fail('expected a text string', field)
    if (Buffer.byteLength(v, 'utf8') > maxBytes) throw this.#fail(`longer than ${maxBytes} bytes`, field)
    if (v.length < minChars) throw this.#fail('too short', field)
    const problem = textProblem(v, multiline)
    if (problem !== undefined) throw this.#fail(problem, field)
    return v
  }

  /** An array of at most `max` items, each read by `item`. */
  array<T>(field: string, max: number, item: (value: CborValue, index: number) => T): T[] {
    const v = this.#next()
    if (!Array.isArray(v)) throw this.#fail('expected an array', field)
    if (v.length > max) throw this.#fail(`more than ${max} items`, field)
    return v.map(item)
  }

  /** The raw next value, for nested structures with their own reader. */
  value(): CborValue {
    return this.#next()
  }
}
