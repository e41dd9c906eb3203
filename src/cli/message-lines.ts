/**
 * Messages and room posts as lines of text: `2026-11-25 09:49  Ada: hello`.
 *
 * A message's text is the sender's, and may hold newlines. Printed as it is, a sender could make
 * a line of their text look like another message from someone else. So every line of a text
 * after its first is indented under where the text starts: only a line a message begins with
 * starts at the left edge.
 */
import stringWidth from 'string-width'
import type { MessageView } from '../node/inbox.ts'
import { isoTime } from './output.ts'

/** `head` and then `text`, its lines after the first indented to where the text starts. */
export function hangingIndent(head: string, text: string): string {
  const [first = '', ...rest] = text.split('\n')
  if (rest.length === 0) return `${head}${first}`
  const indent = ' '.repeat(Math.max(1, stringWidth(head)))
  return [`${head}${first}`, ...rest.map((line) => `${indent}${line}`.trimEnd())].join('\n')
}

/** A time as the text lines show it: `2026-11-25 09:49` (UTC, like the JSON output). */
export function shortTime(ms: number): string {
  return isoTime(ms).replace('T', ' ').slice(0, 16)
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
