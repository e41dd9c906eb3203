/**
 * The terminal client's pure parts: parsing what was typed, laying text out in lines, and how a
 * delivery state reads. No React, no I/O: unit-tested on their own.
 */
import stringWidth from 'string-width'
import { localTime } from '../cli/message-lines.ts'
import { DELIVERY_STATES, type DeliveryState } from '../store/store.ts'

/** A slash command, or text to send. */
export type Input =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'command'; readonly name: string; readonly args: string }
  | { readonly kind: 'empty' }

/** The commands `/help` lists, with their one-line meaning. */
export const COMMANDS: ReadonlyArray<readonly [string, string]> = [
  ['/chat NAME', 'switch to a contact or a room'],
  ['/add LINK [NAME]', 'add a contact from a talken: link, or join a room from a talken:room/ link'],
  ['/history', 'show more of this conversation'],
  ['/load-history', 'ask room members for what is missing here'],
  ['/verify [NAME]', 'safety number to compare (y marks it verified)'],
  ['/receipts on|off', 'read receipts to this contact (alone: whether they are on)'],
  ['/room NAME', 'create a room'],
  ['/invite', 'a link that lets someone join this room'],
  ['/members', 'who is in this room'],
  ['/peers', 'who is connected, and the routes'],
  ['/id', 'your link and QR code'],
  ['/help', 'this list'],
  ['/exit', 'quit (Ctrl-C too)'],
]

/** Parses a submitted input line. `//text` sends `/text`. */
export function parseInput(line: string): Input {
  const text = line.trim()
  if (text === '') return { kind: 'empty' }
  if (text.startsWith('//')) return { kind: 'text', text: text.slice(1) }
  if (!text.startsWith('/')) return { kind: 'text', text: line.trimEnd() }
  const space = text.indexOf(' ')
  const name = (space < 0 ? text.slice(1) : text.slice(1, space)).toLowerCase()
  return { kind: 'command', name, args: space < 0 ? '' : text.slice(space + 1).trim() }
}

/** How a delivery state reads after a message (words, so that it reads the same in every terminal font). */
export function stateLabel(state: DeliveryState): string {
  switch (state) {
    case 'queued':
      return 'queued'
    case 'sent':
      return 'sent'
    case 'relayed':
      return 'relayed'
    case 'delivered':
      return 'delivered'
    case 'read':
      return 'read'
    case 'expired':
      return 'expired'
    case 'failed':
      return 'failed'
    case 'received':
      return ''
  }
}

/**
 * The later of two states of one outgoing message in contract order (queued, sent, relayed,
 * delivered, read, then the ends expired and failed): the one to show when they come by two
 * ways whose order is not known, such as a send's reply and the node's events.
 */
export function laterState(a: DeliveryState, b: DeliveryState | undefined): DeliveryState {
  if (b === undefined) return a
  return DELIVERY_STATES.indexOf(b) > DELIVERY_STATES.indexOf(a) ? b : a
}

/** Notes `value` (a state, say) as the latest of message `id`, keeping the newest `max` messages' values. */
export function remember<V>(values: Map<string, V>, id: string, value: V, max = 64): void {
  values.delete(id)
  values.set(id, value)
  if (values.size > max) values.delete(values.keys().next().value as string)
}

/**
 * When a message was written, in local time (as `talken inbox` shows it): `09:49` on the day of
 * `now`, `2026-11-25 09:49` on any other, so that last week's message does not pass for today's.
 */
export function clock(at: number, now: number = Date.now()): string {
  const t = localTime(at)
  return t.day === localTime(now).day ? t.minute : `${t.day} ${t.minute}`
}

/** What `/receipts ARG` asks: to turn read receipts on or off, or what they are (no argument); undefined for anything else. */
export function receiptsChoice(args: string): 'on' | 'off' | 'show' | undefined {
  const choice = args.trim().toLowerCase()
  if (choice === '') return 'show'
  return choice === 'on' || choice === 'off' ? choice : undefined
}

/**
 * `text` with what could drive the terminal instead of showing in it replaced by U+FFFD: C0
 * controls (U+0000–U+001F; a newline kept when `keepNewlines`), DEL and C1 controls
 * (U+007F–U+009F), lone surrogates, and the bidirectional embeddings, overrides and isolates
 * (U+202A–U+202E, U+2066–U+2069). Text from others (messages, room posts, names, errors) is
 * written raw by ink, so an ESC or CSI in it would move the cursor, recolour or clear the screen,
 * or retitle the terminal, and a right-to-left override would show the rest of the row reversed
 * (a name, a time or a state made to read as another); every such string goes through here on
 * its way to the screen.
 */
export function printable(text: string, keepNewlines = false): string {
  if (/^[\x20-\x7e]*$/.test(text)) return text
  let out = ''
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += text.slice(i, i + 2)
        i++
      } else out += '\ufffd'
    } else if (c >= 0xdc00 && c <= 0xdfff) out += '\ufffd'
    else if (
      (c < 0x20 && !(keepNewlines && c === 0x0a)) ||
      (c >= 0x7f && c <= 0x9f) ||
      (c >= 0x202a && c <= 0x202e) ||
      (c >= 0x2066 && c <= 0x2069)
    )
      out += '\ufffd'
    else out += text[i]
  }
  return out
}

const segmenter = new Intl.Segmenter()

/** The grapheme clusters of `text`: what a terminal draws as one character each. */
export function graphemes(text: string): string[] {
  return Array.from(segmenter.segment(text), (s) => s.segment)
}

/**
 * How many terminal columns `text` takes, measured as ink measures it (string-width: wide CJK and
 * emoji count 2, marks and joiners 0). Expects printable text.
 */
export function columns(text: string): number {
  return stringWidth(text)
}

/** The longest start of `text` that fits in `width` columns, cut between grapheme clusters. */
export function cut(text: string, width: number): string {
  let out = ''
  let used = 0
  for (const g of graphemes(text)) {
    used += stringWidth(g)
    if (used > width) break
    out += g
  }
  return out
}

/** The longest end of `text` that fits in `width` columns, cut between grapheme clusters. */
export function tail(text: string, width: number): string {
  const gs = graphemes(text)
  let used = 0
  let i = gs.length
  while (i > 0) {
    used += stringWidth(gs[i - 1]!)
    if (used > width) break
    i--
  }
  return gs.slice(i).join('')
}

/** `text` padded with spaces to `width` columns. */
export function pad(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - columns(text)))
}

/** `text` without its last grapheme cluster (what Backspace removes: never half an emoji). */
export function dropLast(text: string): string {
  const gs = graphemes(text)
  return text.slice(0, text.length - (gs.at(-1)?.length ?? 0))
}

/**
 * Splits `text` into lines of at most `width` screen columns, breaking at spaces where it can
 * and else between grapheme clusters (never inside an emoji or a CJK character); keeps the
 * text's own line breaks. A cluster wider than `width` gets a line of its own.
 */
export function wrap(text: string, width: number): string[] {
  const w = Math.max(1, width)
  const out: string[] = []
  for (const paragraph of text.split('\n')) {
    let line = ''
    let used = 0
    for (const word of paragraph.split(' ')) {
      let rest = word
      let size = columns(word)
      if (size > w) {
        // Longer than a line: full lines of it on their own, the remainder goes on as a word.
        if (line !== '') {
          out.push(line)
          line = ''
          used = 0
        }
        rest = ''
        size = 0
        for (const g of graphemes(word)) {
          const gw = stringWidth(g)
          if (size + gw > w && rest !== '') {
            out.push(rest)
            rest = ''
            size = 0
          }
          rest += g
          size += gw
        }
      }
      if (line === '') {
        line = rest
        used = size
      } else if (used + 1 + size <= w) {
        line += ` ${rest}`
        used += 1 + size
      } else {
        out.push(line)
        line = rest
        used = size
      }
    }
    out.push(line)
  }
  return out
}

/**
 * A message as rows of at most `width` columns: `head` (time and name) and then `text`, every
 * row after the first indented under where the text starts. Only the row a message begins with
 * starts at the left edge, so a sender's line breaks (or a long line, wrapped) cannot make a row
 * that looks like a message of someone else's: the terminal client's `hangingIndent` (the CLI's
 * lines are not wrapped, these are). A head too wide to leave the text 10 columns gets rows of
 * its own, indented the same way after the first. Expects printable text (newlines kept).
 */
export function hangingWrap(head: string, text: string, width: number): string[] {
  const w = Math.max(2, width)
  const headWidth = columns(head)
  const indent = Math.max(1, Math.min(headWidth, w - 10))
  const pad = ' '.repeat(indent)
  const rows = wrap(text, w - indent)
  if (headWidth <= indent) return rows.map((row, i) => (i === 0 ? `${head}${row}` : `${pad}${row}`))
  const [first = '', ...more] = wrap(head.trimEnd(), w - indent)
  return [first, ...[...more, ...rows].map((row) => `${pad}${row}`)]
}

/** Finds a name among `candidates`: exact (case-insensitive), else a unique prefix of name or ID. */
export function pick<T extends { readonly id: string; readonly name: string }>(
  candidates: readonly T[],
  query: string,
): T | undefined {
  const q = query.trim().toLowerCase()
  if (q === '') return undefined
  const exact = candidates.filter((c) => c.name.toLowerCase() === q || c.id.toLowerCase() === q)
  if (exact.length === 1) return exact[0]
  const prefix = candidates.filter(
    (c) => c.name.toLowerCase().startsWith(q) || c.id.toLowerCase().startsWith(q),
  )
  return prefix.length === 1 ? prefix[0] : undefined
}

/**
 * What a chunk of keyboard input means for a line editor: text to append, and whether it ends
 * with Enter. Terminals may deliver typed text and its Enter in one chunk; line breaks inside a
 * paste become spaces.
 */
export function typed(chunk: string): { text: string; submit: boolean } {
  const submit = /[\r\n]$/.test(chunk)
  const text = [...chunk.replace(/[\r\n]+$/, '').replace(/[\r\n]+/g, ' ')]
    .filter((c) => c >= ' ' && c !== '\u007f')
    .join('')
  return { text, submit }
}
