import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { DeliveryState } from '../../src/store/store.ts'
import { laterState, parseInput, pick, remember, stateLabel, typed, wrap } from '../../src/tui/view.ts'

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
