import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { routerMetrics, runScenario } from '../../src/sim/cli.ts'
import { loadTrace, parseContacts, parseMessages } from '../../src/sim/trace.ts'
import { throwsCode } from '../helpers/errors.ts'
import { HELSINKI } from './helpers.ts'

describe('The ONE trace parser', () => {
  it('parses contact events', () => {
    const text = '0.10 CONN 19 30 up\n\n  0.30 CONN 19 30 down  \r\n# comment\n21597.40 CONN 60 72 down\n'
    assert.deepEqual(parseContacts(text), [
      { time: 100, a: 19, b: 30, up: true },
      { time: 300, a: 19, b: 30, up: false },
      { time: 21_597_400, a: 60, b: 72, up: false },
    ])
  })

  it('parses message events with group-prefixed hosts and TTL in minutes', () => {
    const text = '# time  ID  size  fromHost  toHost  TTL  isResponse\n32.0000 M1 1834 c42 w46 300 N \n'
    assert.deepEqual(parseMessages(text), [
      { time: 32_000, name: 'M1', size: 1834, from: 42, to: 46, ttlMs: 18_000_000, isResponse: false },
    ])
  })

  it('rejects malformed lines with the file and line', () => {
    const cases: [string, (t: string) => unknown][] = [
      ['1.0 CONN 1 2 sideways', (t) => parseContacts(t, 'c.txt')],
      ['1.0 CONN 1 up', (t) => parseContacts(t, 'c.txt')],
      ['x CONN 1 2 up', (t) => parseContacts(t, 'c.txt')],
      ['-1 CONN 1 2 up', (t) => parseContacts(t, 'c.txt')],
      ['1.0 LINK 1 2 up', (t) => parseContacts(t, 'c.txt')],
      ['1.0 CONN 3 3 up', (t) => parseContacts(t, 'c.txt')],
      ['1.0 M1 100 c1 c2 300', (t) => parseMessages(t, 'm.txt')],
      ['1.0 M1 1.5 c1 c2 300 N', (t) => parseMessages(t, 'm.txt')],
      ['1.0 M1 100 c1 cx 300 N', (t) => parseMessages(t, 'm.txt')],
      ['1.0 M1 100 c1 c2 0 N', (t) => parseMessages(t, 'm.txt')],
      ['1.0 M1 100 c1 c2 300 maybe', (t) => parseMessages(t, 'm.txt')],
      ['1.0 M1 100 c1 p1 300 N', (t) => parseMessages(t, 'm.txt')],
      ['1.0 M1 100 c1 c2 300 N\n2.0 M1 100 c2 c3 300 N', (t) => parseMessages(t, 'm.txt')],
    ]
    for (const [line, parse] of cases) {
      const err = throwsCode(() => parse(`# header\n${line}\n`), 'malformed')
      assert.match(err.message, /^[cm]\.txt:[23]: /, line)
      assert.equal(err.details?.line, line.includes('\n') ? 3 : 2)
    }
  })

  it('loads a trace directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'talken-trace-'))
    try {
      writeFileSync(join(dir, 'contacts.txt'), '1 CONN 0 4 up\n2 CONN 0 4 down\n')
      writeFileSync(join(dir, 'messages.txt'), '0.5 M1 10 p0 c4 1 N\n')
      const t = loadTrace(dir)
      assert.equal(t.nodes, 5)
      assert.equal(t.contacts.length, 2)
      assert.equal(t.messages.length, 1)
      writeFileSync(join(dir, 'messages.txt'), '0.5 M1 10 p0 c4 1 N\nbroken\n')
      const err = throwsCode(() => loadTrace(dir), 'malformed')
      assert.match(err.message, /messages\.txt:2:/)
      rmSync(join(dir, 'contacts.txt'))
      throwsCode(() => loadTrace(dir), 'invalid_argument')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('two nodes with two radios in common stay connected while either link is up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'talken-trace-'))
    try {
      // Bluetooth and the longer radio come up; Bluetooth goes down at 3 s, the other at 20 s.
      writeFileSync(
        join(dir, 'contacts.txt'),
        '1 CONN 0 1 up\n2 CONN 0 1 up\n3 CONN 0 1 down\n20 CONN 0 1 down\n',
      )
      writeFileSync(join(dir, 'messages.txt'), '5 M1 100 p0 p1 1 N\n')
      const report = await runScenario({
        scenario: 'trace',
        traceDir: dir,
        nodes: 2,
        seed: 1,
        routers: ['direct'],
      })
      assert.equal(routerMetrics(report, 'direct').deliveryRatio, 1)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('reads the Helsinki chat trace as its README describes it', () => {
    const t = loadTrace(HELSINKI)
    assert.equal(t.nodes, 126)
    assert.equal(t.messages.length, 733)
    assert.equal(t.contacts.filter((c) => c.up).length, 15_820)
    assert.ok(t.messages.every((m) => m.ttlMs === 300 * 60_000 && m.size >= 1000 && m.size <= 2000))
  })
})
