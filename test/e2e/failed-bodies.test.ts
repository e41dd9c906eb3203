/**
 * A body whose header opens under a session but whose ciphertext does not may have cost many key
 * derivations (a gap of up to MAX_GAP), all undone: another body under the same header is tried
 * with the key that header led to and refused at once if it does not open, and the intact copy
 * still opens.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { FAILED_BODY_MEMORY_MS } from '../../src/e2e/session-store.ts'
import { isTalkenError } from '../../src/errors.ts'
import { device, str, text } from './helpers.ts'

/** The message of the `decrypt_failed` that `fn` throws; fails the test if it opens anything. */
function failure(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    assert.ok(isTalkenError(err, 'decrypt_failed'), String(err))
    return err.message
  }
  assert.fail('opened a forged body')
}

describe('e2e: bodies that failed to open', () => {
  it('are refused at once when they come again, and the session goes on', () => {
    const a = device(1)
    const b = device(2)
    const bundle = b.e2e.bundle()
    b.e2e.open(a.e2e.seal({ deviceKey: b.key.publicKey, bundle }, text('hello')))
    a.e2e.open(b.e2e.seal({ deviceKey: a.key.publicKey }, text('hi')))
    // Ada's messages in between were lost: the next is 2,000 ahead of what Bob received.
    for (let i = 0; i < 2_000; i++) a.e2e.seal({ deviceKey: b.key.publicKey }, text(`lost ${i}`))
    const far = a.e2e.seal({ deviceKey: b.key.publicKey }, text('far ahead'))
    const forged = new Uint8Array(far)
    forged[200]! ^= 0x01 // the header is intact; the body is not
    const first = failure(() => b.e2e.open(forged))
    const again = failure(() => b.e2e.open(forged))
    assert.notEqual(first, again)
    assert.match(again, /under a header that failed before/)
    // Another byte changed makes another body, under the same header: refused the same cheap way.
    const other = new Uint8Array(far)
    other[150]! ^= 0x01
    assert.match(
      failure(() => b.e2e.open(other)),
      /under a header that failed before/,
    )
    assert.equal(str(b.e2e.open(far).content), 'far ahead')
  })

  it('are forgotten after a while, with the message key they led to', () => {
    let now = 1_750_000_000_000
    const a = device(1, () => now)
    const b = device(2, () => now)
    b.e2e.open(a.e2e.seal({ deviceKey: b.key.publicKey, bundle: b.e2e.bundle() }, text('hello')))
    a.e2e.open(b.e2e.seal({ deviceKey: a.key.publicKey }, text('hi')))
    const sealed = a.e2e.seal({ deviceKey: b.key.publicKey }, text('soon'))
    const forged = new Uint8Array(sealed)
    forged[200]! ^= 0x01
    failure(() => b.e2e.open(forged))
    now += FAILED_BODY_MEMORY_MS - 1
    assert.match(
      failure(() => b.e2e.open(forged)),
      /under a header that failed before/,
    )
    now += 2
    // Forgotten: refused the usual way (its key derived again), and the intact copy still opens.
    assert.doesNotMatch(
      failure(() => b.e2e.open(forged)),
      /under a header that failed before/,
    )
    assert.equal(str(b.e2e.open(sealed).content), 'soon')
  })
})
