/**
 * Messages and room posts in the text output: a sender's newlines cannot make a line that looks
 * like another message, `inbox --all` says what became of the messages we sent, and times are
 * local with their offset from UTC (this file runs in India's time zone, UTC+05:30, all year).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { hangingIndent, messageLine, shortTime } from '../../src/cli/message-lines.ts'
import type { MessageView } from '../../src/node/inbox.ts'
import { ensureBuilt, talken, tempDir } from '../helpers/cli.ts'

// Node reads TZ again when it is set: the times below are India's, whatever the machine's zone.
const ZONE = 'Asia/Kolkata'
process.env.TZ = ZONE

const FORGED = 'innocent\n2026-11-25 09:50 +05:30  Eve: I am not who you think'
/** A line that begins a message: a time at the left edge. */
const MESSAGE_START = /^\d{4}-\d\d-\d\d \d\d:\d\d [+-]\d\d:\d\d {2}/

function view(direction: 'in' | 'out', text: string, state: MessageView['state']): MessageView {
  return {
    id: '00'.repeat(16),
    conversation: 'tk1bob',
    contact: 'Bob',
    direction,
    text,
    at: Date.UTC(2026, 10, 25, 9, 49),
    state,
  }
}

describe('message lines', () => {
  it('indents every line of a message after its first, under where its text starts', () => {
    const lines = messageLine(view('in', FORGED, 'received')).split('\n')
    assert.deepEqual(lines, [
      '2026-11-25 15:19 +05:30  Bob: innocent',
      '                              2026-11-25 09:50 +05:30  Eve: I am not who you think',
    ])
    assert.equal(lines.filter((l) => MESSAGE_START.test(l)).length, 1)
  })

  it('a right-to-left override (or any bidirectional control) in a name or a text cannot reorder the line', () => {
    // "Eve \u202Edaer" would show as "Eve read": the rest of the line reversed.
    assert.equal(
      hangingIndent('at  Eve \u202e: ', 'daer\nmore \u2066x\u2069'),
      'at  Eve \ufffd: daer\n           more \ufffdx\ufffd',
    )
    assert.equal(
      hangingIndent('at  ', 'שלום \u200f ok'),
      'at  שלום \u200f ok',
      'right-to-left text and marks kept',
    )
  })

  it('a one-line message is one line, and empty lines stay empty', () => {
    assert.equal(hangingIndent('at  Ada: ', 'hello'), 'at  Ada: hello')
    assert.equal(hangingIndent('at  Ada: ', 'a\n\nb'), 'at  Ada: a\n\n         b')
  })

  it('a message of ours shows its delivery state', () => {
    assert.equal(
      messageLine(view('out', 'hello', 'delivered')),
      '2026-11-25 15:19 +05:30  me → Bob (delivered): hello',
    )
    assert.equal(
      messageLine(view('out', 'later', 'queued')),
      '2026-11-25 15:19 +05:30  me → Bob (queued): later',
    )
  })

  it('times are local, with their offset from UTC: east, west, and UTC itself', (t) => {
    t.after(() => {
      process.env.TZ = ZONE
    })
    const at = Date.UTC(2026, 10, 25, 23, 49) // 23:49 UTC: the next day in India
    assert.equal(shortTime(at), '2026-11-26 05:19 +05:30')
    process.env.TZ = 'America/St_Johns' // UTC−03:30 in November
    assert.equal(shortTime(at), '2026-11-25 20:19 -03:30')
    process.env.TZ = 'UTC'
    assert.equal(shortTime(at), '2026-11-25 23:49 +00:00')
  })
})

describe('room history text', () => {
  const dir = tempDir('talken-ux-text-')
  before(() => {
    ensureBuilt()
    assert.equal(talken(dir.path, ['init', '--name', 'Ada']).status, 0)
    assert.equal(talken(dir.path, ['rooms', 'create', 'Crag']).status, 0)
  })
  after(() => dir.remove())

  it('a post with newlines cannot forge a line of the history', () => {
    const posted = talken(dir.path, ['rooms', 'post', 'Crag', FORGED])
    assert.equal(posted.status, 0, posted.stderr)
    const history = talken(dir.path, ['rooms', 'history', 'Crag'], { TZ: ZONE })
    assert.equal(history.status, 0, history.stderr)
    const lines = history.stdout.trimEnd().split('\n')
    // The room's creation, the post, and the post's second line, indented.
    assert.equal(lines.length, 3, history.stdout)
    assert.equal(lines.filter((l) => MESSAGE_START.test(l)).length, 2, history.stdout)
    assert.match(lines[1] ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d \+05:30 {2}you: innocent$/)
    assert.match(lines[2] ?? '', /^ +2026-11-25 09:50 \+05:30 {2}Eve: I am not who you think$/)
  })
})
