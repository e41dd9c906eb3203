/**
 * Messages and room posts as lines of text: `2026-11-25 09:49 +01:00  Ada: hello`, in local time
 * with its offset from UTC (the JSON output gives UTC; the terminal client, local time too).
 *
 * A message's text is the sender's, and may hold newlines. Printed as it is, a sender could make
 * a line of their text look like another message from someone else. So every line of a text
 * after its first is indented under where the text starts: only a line a message begins with
 * starts at the left edge. Nor may it hold what would drive the terminal rather than show: the
 * decoders refuse control characters other than newlines and tabs, and the bidirectional
 * embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069, which would reverse the rest
 * of a line, a name or a time with it) show as U+FFFD.
 */
import stringWidth from 'string-width'
import type { MessageView } from '../node/inbox.ts'

/** Bidirectional embeddings, overrides and isolates: they reorder what follows them on a line. */
const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069]/g

/** `text` with the bidirectional controls in it shown as U+FFFD. */
export function withoutBidiControls(text: string): string {
  return text.replace(BIDI_CONTROLS, '\ufffd')
}

/**
 * `head` and then `text`, its lines after the first indented to where the text starts, and
 * neither able to reorder the line (see the file comment).
 */
export function hangingIndent(head: string, text: string): string {
  const shownHead = withoutBidiControls(head)
  const [first = '', ...rest] = withoutBidiControls(text).split('\n')
  if (rest.length === 0) return `${shownHead}${first}`
  const indent = ' '.repeat(Math.max(1, stringWidth(shownHead)))
  return [`${shownHead}${first}`, ...rest.map((line) => `${indent}${line}`.trimEnd())].join('\n')
}

const two = (n: number): string => String(n).padStart(2, '0')

/** A Unix-ms time in local time: its day `2026-11-25`, its minute `09:49`, its offset from UTC `+01:00`. */
export function localTime(ms: number): {
  readonly day: string
  readonly minute: string
  readonly offset: string
} {
  const d = new Date(ms)
  const east = -d.getTimezoneOffset()
  const abs = Math.abs(east)
  return {
    day: `${String(d.getFullYear()).padStart(4, '0')}-${two(d.getMonth() + 1)}-${two(d.getDate())}`,
    minute: `${two(d.getHours())}:${two(d.getMinutes())}`,
    offset: `${east < 0 ? '-' : '+'}${two(Math.floor(abs / 60))}:${two(abs % 60)}`,
  }
}

/**
 * A time as the text lines show it: `2026-11-25 09:49 +01:00`, local time with its offset (not
 * UTC without a mark, which read as local time is off by the offset).
 */
export function shortTime(ms: number): string {
  const t = localTime(ms)
  return `${t.day} ${t.minute} ${t.offset}`
}

/**
 * One message as `inbox` shows it; a message of ours says its delivery state
 * (`me → Bob (delivered): hi`).
 */
export function messageLine(m: MessageView): string {
  const who =
    m.direction === 'in'
      ? (m.contact ?? m.conversation.slice(0, 12))
      : `me → ${m.contact ?? '?'} (${m.state})`
  return hangingIndent(`${shortTime(m.at)}  ${who}: `, m.text)
}
