/**
 * Messages and room posts as lines of text: `2026-11-25 09:49 +01:00  Ada: hello`, in local time
 * with its offset from UTC (the JSON output gives UTC; the terminal client, local time too).
 *
 * A message's text is the sender's, and may hold newlines. Printed as it is, a sender could make
 * a line of their text look like another message from someone else. So every line of a text
 * after its first is indented under where the text starts: only a line a message begins with
 * starts at the left edge.
 */
import stringWidth from 'string-width'
import type { MessageView } from '../node/inbox.ts'

/** `head` and then `text`, its lines after the first indented to where the text starts. */
export function hangingIndent(head: string, text: string): string {
  const [first = '', ...rest] = text.split('\n')
  if (rest.length === 0) return `${head}${first}`
  const indent = ' '.repeat(Math.max(1, stringWidth(head)))
  return [`${head}${first}`, ...rest.map((line) => `${indent}${line}`.trimEnd())].join('\n')
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
