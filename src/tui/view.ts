/**
 * The terminal client's pure parts: parsing what was typed, laying text out in lines, and how a
 * delivery state reads. No React, no I/O: unit-tested on their own.
 */
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
  ['/receipts on|off', 'read receipts to this contact'],
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

/** Notes `state` as the latest of message `id`, keeping the newest `max` messages' states. */
export function remember(
  states: Map<string, DeliveryState>,
  id: string,
  state: DeliveryState,
  max = 64,
): void {
  states.delete(id)
  states.set(id, state)
  if (states.size > max) states.delete(states.keys().next().value as string)
}

/** Hours and minutes of a Unix-ms time, in local time. */
export function clock(at: number): string {
  const d = new Date(at)
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`
}

/**
 * Splits `text` into lines of at most `width` characters, breaking at spaces where it can; keeps
 * the text's own line breaks.
 */
export function wrap(text: string, width: number): string[] {
  const w = Math.max(1, width)
  const out: string[] = []
  for (const paragraph of text.split('\n')) {
    let line = ''
    for (const word of paragraph.split(' ')) {
      let rest = word
      while (rest.length > w) {
        if (line !== '') {
          out.push(line)
          line = ''
        }
        out.push(rest.slice(0, w))
        rest = rest.slice(w)
      }
      if (line === '') line = rest
      else if (line.length + 1 + rest.length <= w) line += ` ${rest}`
      else {
        out.push(line)
        line = rest
      }
    }
    out.push(line)
  }
  return out
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
