import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { shortTime } from '../../src/cli/message-lines.ts'
import type { DeliveryState } from '../../src/store/store.ts'
import {
  clock,
  columns,
  cut,
  dropLast,
  hangingWrap,
  laterState,
  pad,
  parseInput,
  pick,
  printable,
  receiptsChoice,
  remember,
  stateLabel,
  tail,
  typed,
  wrap,
} from '../../src/tui/view.ts'

// Node reads TZ again when it is set: the clock below is Tokyo's (UTC+09:00, no summer time).
process.env.TZ = 'Asia/Tokyo'

/** True when `s` holds a lone UTF-16 surrogate (half of an emoji, say). */
const loneSurrogate = (s: string) =>
  /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s)

describe('terminal client helpers', () => {
  it('parses commands, text and escaped slashes', () => {
    assert.deepEqual(parseInput('  '), { kind: 'empty' })
    assert.deepEqual(parseInput('hello'), { kind: 'text', text: 'hello' })
    assert.deepEqual(parseInput('/Chat  Bob Smith '), { kind: 'command', name: 'chat', args: 'Bob Smith' })
    assert.deepEqual(parseInput('/help'), { kind: 'command', name: 'help', args: '' })
    assert.deepEqual(parseInput('//not a command'), { kind: 'text', text: '/not a command' })
  })

  it('wraps at spaces, splits words longer than a line, keeps line breaks', () => {
    assert.deepEqual(wrap('one two three', 7), ['one two', 'three'])
    assert.deepEqual(wrap('abcdefghij', 4), ['abcd', 'efgh', 'ij'])
    assert.deepEqual(wrap('a\nb', 10), ['a', 'b'])
    for (const line of wrap('x '.repeat(500), 13)) assert.ok(line.length <= 13)
  })

  it('wraps by screen columns between grapheme clusters: emoji and CJK are two columns wide', () => {
    // Five emoji are ten columns: two per three-column line, never half an emoji (a lone surrogate).
    const emoji = wrap('😀😀😀😀😀', 3)
    assert.deepEqual(emoji, ['😀', '😀', '😀', '😀', '😀'])
    assert.deepEqual(wrap('😀😀😀😀😀', 4), ['😀😀', '😀😀', '😀'])
    const han = '漢'.repeat(50)
    const lines = wrap(`12:00 Bob: ${han}`, 30)
    for (const l of lines) assert.ok(columns(l) <= 30, `${l}: ${columns(l)} columns`)
    assert.equal(lines.join('').replace(/[^漢]/g, ''), han, 'nothing lost')
    // A family (one cluster of five code points joined) and a flag stay whole.
    assert.deepEqual(wrap('👨‍👩‍👧🇫🇷', 2), ['👨‍👩‍👧', '🇫🇷'])
    // A cluster wider than the line gets a line of its own rather than a broken half.
    assert.deepEqual(wrap('a😀b', 1), ['a', '😀', 'b'])
    for (const l of wrap('x😀y漢z '.repeat(40), 7)) assert.ok(!loneSurrogate(l) && columns(l) <= 7, l)
  })

  it('measures, cuts, pads and shortens by screen columns and whole grapheme clusters', () => {
    assert.equal(columns('abc'), 3)
    assert.equal(columns('漢字'), 4)
    assert.equal(columns('😀'), 2)
    assert.equal(columns('👍🏽'), 2)
    assert.equal(columns('e\u0301'), 1, 'a combining accent takes no column')
    assert.equal(columns('ｱ'), 1, 'halfwidth katakana')
    assert.equal(columns('✓…'), 2)
    assert.equal(cut('漢字ab', 3), '漢')
    assert.equal(cut('ab😀', 3), 'ab')
    assert.equal(tail('ab漢字', 3), '字')
    assert.equal(tail('😀😀x', 4), '😀x')
    assert.equal(pad('漢', 4), '漢  ')
    assert.equal(dropLast('ok😀'), 'ok')
    assert.equal(dropLast('👨‍👩‍👧'), '')
    assert.equal(dropLast(''), '')
  })

  it('replaces control characters and lone surrogates with a visible U+FFFD', () => {
    assert.equal(printable('plain text'), 'plain text')
    // ESC sequences (clear screen, set title), BEL, DEL, C1 CSI and NEL: none reaches the terminal.
    assert.equal(
      printable('a\u001b[2J\u001b]0;x\u0007b\u007f\u009b31m\u0085c'),
      'a\ufffd[2J\ufffd]0;x\ufffdb\ufffd\ufffd31m\ufffdc',
    )
    assert.equal(printable('tab\there\r\n'), 'tab\ufffdhere\ufffd\ufffd')
    assert.equal(printable('one\ntwo', true), 'one\ntwo', 'line breaks kept where asked')
    assert.equal(printable('\u0000\u001f\u0020\u007e\u00a0'), '\ufffd\ufffd\u0020\u007e\u00a0')
    assert.equal(printable('half \ud83d and \ude00 end'), 'half \ufffd and \ufffd end')
    assert.equal(printable('\ud83d\ude00 漢 é'), '😀 漢 é', 'pairs and other text untouched')
    // A right-to-left override (and the other embeddings and isolates) would reverse the rest of
    // the row: "Eve \u202Edaer" would read "Eve read".
    assert.equal(printable('Eve \u202edaer'), 'Eve \ufffddaer')
    assert.equal(printable('\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069'), '\ufffd'.repeat(8))
    assert.equal(printable('שלום \u200f ok'), 'שלום \u200f ok', 'right-to-left text and marks untouched')
  })

  it('reads a chunk of keys: text, and whether Enter ended it', () => {
    assert.deepEqual(typed('Ada\r'), { text: 'Ada', submit: true })
    assert.deepEqual(typed('a\nb'), { text: 'a b', submit: false })
    assert.deepEqual(typed('x\u0007y'), { text: 'xy', submit: false })
  })

  it('picks a unique name or prefix, and nothing when ambiguous', () => {
    const list = [
      { id: 'tk1aaa', name: 'Ada' },
      { id: 'tk1bbb', name: 'Adam' },
      { id: 'tk1ccc', name: 'Bob' },
    ]
    assert.equal(pick(list, 'ada')?.id, 'tk1aaa')
    assert.equal(pick(list, 'b')?.id, 'tk1ccc')
    assert.equal(pick(list, 'ad'), undefined)
    assert.equal(pick(list, 'tk1bb')?.name, 'Adam')
    assert.equal(pick(list, ''), undefined)
  })

  it('names every delivery state but received', () => {
    assert.equal(stateLabel('delivered'), 'delivered')
    assert.equal(stateLabel('received'), '')
  })

  it('keeps the later of two states in contract order, and the newest states only', () => {
    assert.equal(laterState('sent', 'delivered'), 'delivered')
    assert.equal(laterState('delivered', 'sent'), 'delivered')
    assert.equal(laterState('queued', undefined), 'queued')
    assert.equal(laterState('read', 'failed'), 'failed')
    const states = new Map<string, DeliveryState>()
    for (let i = 0; i < 5; i++) remember(states, `m${i}`, 'sent', 3)
    remember(states, 'm2', 'delivered', 3)
    assert.deepEqual(
      [...states],
      [
        ['m3', 'sent'],
        ['m4', 'sent'],
        ['m2', 'delivered'],
      ],
    )
  })

  it('a time is the hour on its day, with the date on any other, in local time as the CLI shows it', () => {
    const at = Date.UTC(2026, 10, 25, 23, 49) // 08:49 on the 26th in Tokyo
    assert.equal(clock(at, at), '08:49')
    assert.equal(clock(at, Date.UTC(2026, 10, 26, 14, 59)), '08:49', 'later that day (23:59 in Tokyo)')
    assert.equal(clock(at, Date.UTC(2026, 10, 26, 15, 0)), '2026-11-26 08:49', 'the next day')
    assert.equal(clock(at, Date.UTC(2026, 10, 25, 14, 0)), '2026-11-26 08:49', 'a clock behind')
    assert.equal(clock(at, Date.UTC(2027, 10, 26, 0, 0)), '2026-11-26 08:49', 'the same day a year on')
    // The CLI says the same time of the same day, and the offset.
    assert.equal(shortTime(at), '2026-11-26 08:49 +09:00')
    assert.ok(shortTime(at).startsWith(clock(at, Date.UTC(2020, 0, 1))))
  })

  it('indents every row of a message after its first under its text: no row can pass for a message', () => {
    const head = '13:20 Bob: '
    assert.deepEqual(hangingWrap(head, 'hi', 40), ['13:20 Bob: hi'])
    assert.deepEqual(hangingWrap(head, 'sure\n13:22 me: never mind  read', 40), [
      '13:20 Bob: sure',
      '           13:22 me: never mind  read',
    ])
    // A long line wraps under its text too, and empty lines stay (indented, so as rows).
    assert.deepEqual(hangingWrap(head, 'one two three four five\n\nsix', 21), [
      '13:20 Bob: one two',
      '           three four',
      '           five',
      '           ',
      '           six',
    ])
    // A head too wide to leave the text 10 columns: rows of its own, indented the same way.
    const wide = `13:20 ${'x'.repeat(20)} 13:22 me: `
    const rows = hangingWrap(wide, 'hello', 24)
    assert.deepEqual(rows, [
      '13:20',
      `              ${'x'.repeat(10)}`,
      `              ${'x'.repeat(10)}`,
      '              13:22 me:',
      '              hello',
    ])
    for (const width of [12, 16, 24, 40, 80]) {
      const text = `a\n13:22 me: x ${'word '.repeat(30)}\n${'漢'.repeat(30)}`
      const out = hangingWrap(`09:00 ${'Bob'.repeat(width % 7)}: `, text, width)
      assert.ok(
        out.slice(1).every((r) => r.startsWith(' ')),
        `${width}: ${out.join('|')}`,
      )
      for (const r of out) assert.ok(columns(r) <= width, `${width}: ${columns(r)} columns: ${r}`)
    }
  })

  it('reads /receipts: on or off in any case, alone to ask; anything else is not understood', () => {
    for (const on of ['on', 'ON', 'On', ' on ']) assert.equal(receiptsChoice(on), 'on')
    for (const off of ['off', 'OFF', 'Off']) assert.equal(receiptsChoice(off), 'off')
    assert.equal(receiptsChoice(''), 'show')
    for (const other of ['of', 'no', 'yes', 'maybe', 'off please', 'onn']) {
      assert.equal(receiptsChoice(other), undefined, other)
    }
  })
})
