/**
 * A stranger's session forgotten beyond the bound of devices with sessions, while the stranger
 * still writes in it (their session still pending: every message a prekey message): their next
 * message is not opened, but names its sender, so that the node asks them to send it again in a
 * session that works, instead of refusing it as a replay for good.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { openSessionStore, SESSION_NAMESPACE } from '../../src/e2e/session-store.ts'
import { isTalkenError } from '../../src/errors.ts'
import { type Device, device, text } from './helpers.ts'

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

describe('e2e: a stranger whose session was forgotten', () => {
  it('is named by their next message, which asks to be sent again', () => {
    const bob = device()
    bob.e2e = openSessionStore({
      store: bob.store,
      device: bob.key,
      now: () => 1_750_000_000_000,
      maxDevices: 2,
    })
    const write = (from: Device, body: string) =>
      bob.e2e.open(from.e2e.seal({ deviceKey: bob.key.publicKey, bundle: bob.e2e.bundle() }, text(body)))
    const [eve, x, y] = [device(), device(), device()]
    write(eve, 'one')
    bob.e2e.prekeys.replenishOneTimePrekeys()
    write(x, 'two')
    bob.e2e.prekeys.replenishOneTimePrekeys()
    write(y, 'three') // one too many: Eve's session goes
    assert.equal(bob.store.kvGet(SESSION_NAMESPACE, hex(eve.key.publicKey)), undefined)
    let refused: unknown
    try {
      write(eve, 'again')
    } catch (err) {
      refused = err
    }
    assert.ok(isTalkenError(refused, 'not_found'), String(refused))
    assert.equal(refused.details?.peerDevice, hex(eve.key.publicKey))
  })
})
