/**
 * Parsers for The ONE simulator's report formats (akeranen/the-one), so that a contact trace and
 * a message schedule The ONE produced can be replayed here exactly:
 *
 * - contacts (`ConnectivityONEReport`): `TIME CONN A B up|down` — seconds, two node numbers.
 * - messages (`StandardEventsReader` external events): `TIME ID SIZE FROM TO TTL isResponse` —
 *   seconds, a message name, bytes, hosts as a group prefix and a number (`c42` is node 42), the
 *   lifetime in minutes, and `Y`/`N`.
 *
 * Blank lines and lines starting with `#` are skipped. Anything else that does not parse is a
 * `TalkenError('malformed')` naming the file and line.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { TalkenError } from '../errors.ts'

/** One contact event of a trace; time in integer milliseconds. */
export interface TraceContact {
  readonly time: number
  readonly a: number
  readonly b: number
  readonly up: boolean
}

/** One message of a trace. */
export interface TraceMessage {
  /** Milliseconds. */
  readonly time: number
  readonly name: string
  readonly size: number
  readonly from: number
  readonly to: number
  readonly ttlMs: number
  readonly isResponse: boolean
}

/** A loaded trace directory. */
export interface Trace {
  /** Highest node number seen, plus one. */
  readonly nodes: number
  readonly contacts: readonly TraceContact[]
  readonly messages: readonly TraceMessage[]
}

function malformed(file: string, line: number, why: string): TalkenError {
  return new TalkenError('malformed', `${file}:${line}: ${why}`, { details: { file, line } })
}

function lines(text: string, file: string, each: (fields: string[], line: number) => void): void {
  const all = text.split(/\r?\n/)
  for (let i = 0; i < all.length; i++) {
    const trimmed = all[i]!.trim()
    if (trimmed === '' || trimmed.startsWith('#')) continue
    try {
      each(trimmed.split(/\s+/), i + 1)
    } catch (err) {
      if (err instanceof TalkenError) throw err
      throw malformed(file, i + 1, String(err))
    }
  }
}

function seconds(token: string, file: string, line: number): number {
  const t = Number(token)
  if (!/^[0-9.eE+-]+$/.test(token) || !Number.isFinite(t) || t < 0) {
    throw malformed(file, line, `bad time "${token}"`)
  }
  return Math.round(t * 1000)
}

const HOST = /^[A-Za-z_]*([0-9]+)$/

function host(token: string, file: string, line: number): number {
  const m = HOST.exec(token)
  const n = m === null ? Number.NaN : Number(m[1])
  if (!Number.isSafeInteger(n) || n > 0x7fffffff) throw malformed(file, line, `bad host "${token}"`)
  return n
}

/** Parses a connectivity report. `file` names the source in errors. */
export function parseContacts(text: string, file = 'contacts.txt'): TraceContact[] {
  const out: TraceContact[] = []
  lines(text, file, (f, line) => {
    if (f.length !== 5 || f[1] !== 'CONN') throw malformed(file, line, 'expected "TIME CONN A B up|down"')
    const state = f[4]
    if (state !== 'up' && state !== 'down') throw malformed(file, line, `bad state "${state}"`)
    const a = host(f[2]!, file, line)
    const b = host(f[3]!, file, line)
    if (a === b) throw malformed(file, line, 'a node cannot connect to itself')
    out.push({ time: seconds(f[0]!, file, line), a, b, up: state === 'up' })
  })
  return out
}

/** Parses a message event list. `file` names the source in errors. */
export function parseMessages(text: string, file = 'messages.txt'): TraceMessage[] {
  const out: TraceMessage[] = []
  const names = new Set<string>()
  lines(text, file, (f, line) => {
    if (f.length !== 7) throw malformed(file, line, 'expected "TIME ID SIZE FROM TO TTL isResponse"')
    const size = Number(f[2])
    if (!/^[0-9]+$/.test(f[2]!) || !Number.isSafeInteger(size))
      throw malformed(file, line, `bad size "${f[2]}"`)
    const ttl = Number(f[5])
    if (!/^[0-9.]+$/.test(f[5]!) || !(ttl > 0) || !Number.isFinite(ttl)) {
      throw malformed(file, line, `bad TTL "${f[5]}"`)
    }
    const resp = f[6]!.toUpperCase()
    if (resp !== 'Y' && resp !== 'N' && resp !== 'TRUE' && resp !== 'FALSE') {
      throw malformed(file, line, `bad isResponse "${f[6]}"`)
    }
    const from = host(f[3]!, file, line)
    const to = host(f[4]!, file, line)
    if (from === to) throw malformed(file, line, 'a message to its own sender')
    if (names.has(f[1]!)) throw malformed(file, line, `message ID "${f[1]}" used twice`)
    names.add(f[1]!)
    out.push({
      time: seconds(f[0]!, file, line),
      name: f[1]!,
      size,
      from,
      to,
      ttlMs: Math.round(ttl * 60_000),
      isResponse: resp === 'Y' || resp === 'TRUE',
    })
  })
  return out
}

/** Reads `contacts.txt` and `messages.txt` from `dir`. */
export function loadTrace(dir: string): Trace {
  const read = (name: string) => {
    const path = join(dir, name)
    try {
      return readFileSync(path, 'utf8')
    } catch (err) {
      throw new TalkenError('invalid_argument', `cannot read trace file ${path}`, { cause: err })
    }
  }
  const contactsPath = join(dir, 'contacts.txt')
  const messagesPath = join(dir, 'messages.txt')
  const contacts = parseContacts(read('contacts.txt'), contactsPath)
  const messages = parseMessages(read('messages.txt'), messagesPath)
  let max = -1
  for (const c of contacts) max = Math.max(max, c.a, c.b)
  for (const m of messages) max = Math.max(max, m.from, m.to)
  return { nodes: max + 1, contacts, messages }
}
