import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { encodeContactCard } from '../../src/identity/contact-card.ts'
import { parseContactLink, toContactLink } from '../../src/identity/contact-link.ts'
import { createIdentity, makeContactCard } from '../../src/identity/identity.ts'
import { throwsCode } from '../helpers/errors.ts'

const NOW = 1_750_000_000_000
const me = createIdentity({ now: NOW, deviceName: 'laptop' })
const card = makeContactCard(me, { name: 'Ada Lovelace', addresses: ['/ip4/127.0.0.1/tcp/4001'], now: NOW })
const link = toContactLink(card)

/** A different character of the same class, so that the change is a plausible typo. */
function typoAt(text: string, i: number): string {
  const c = text[i]!
  const pools = ['abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', '0123456789', '-_.:']
  const pool = pools.find((p) => p.includes(c)) ?? 'abc'
  const other = pool[(pool.indexOf(c) + 1) % pool.length]!
  return text.slice(0, i) + other + text.slice(i + 1)
}

describe('contact links', () => {
  it('round-trip: the link gives back the signed card', () => {
    assert.match(link, /^talken:[A-Za-z0-9_-]+\.tk1[a-z0-9]{58}$/)
    const parsed = parseContactLink(link)
    assert.deepEqual(encodeContactCard(parsed), encodeContactCard(card))
    assert.equal(parsed.name, 'Ada Lovelace')
  })

  it('accepts a link wrapped over lines or with spaces around it', () => {
    const wrapped = ` ${link.slice(0, 40)}\n${link.slice(40, 90)}\r\n${link.slice(90)}\n`
    assert.deepEqual(parseContactLink(wrapped), parseContactLink(link))
  })

  it('reports every single changed character as a checksum or signature error', () => {
    for (let i = 0; i < link.length; i++) {
      throwsCode(() => parseContactLink(typoAt(link, i)), 'bad_checksum', 'bad_signature')
    }
  })

  it('reports every truncation as malformed', () => {
    for (let n = 0; n < link.length; n++) throwsCode(() => parseContactLink(link.slice(0, n)), 'malformed')
  })

  it('reports garbage as malformed', () => {
    for (const junk of [
      '',
      'hello',
      'talken:',
      'https://example.org',
      'talken:!!!!',
      `talken:${'A'.repeat(200)}`,
    ]) {
      throwsCode(() => parseContactLink(junk), 'malformed')
    }
    throwsCode(() => parseContactLink(`talken:${'A'.repeat(100_000)}`), 'too_large')
  })

  it('reports a card swapped under another ID as a signature error', () => {
    const other = createIdentity({ now: NOW })
    const otherLink = toContactLink(makeContactCard(other, { name: 'Eve', now: NOW }))
    const swapped = `${otherLink.slice(0, otherLink.lastIndexOf('.'))}${link.slice(link.lastIndexOf('.'))}`
    throwsCode(() => parseContactLink(swapped), 'bad_signature')
  })
})
