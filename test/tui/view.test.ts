import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { DeliveryState } from '../../src/store/store.ts'
import {
  columns,
  cut,
  dropLast,
  laterState,
  pad,
  parseInput,
  pick,
  printable,
  remember,
  stateLabel,
  tail,
  typed,
  wrap,
} from '../../src/tui/view.ts'

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
})
