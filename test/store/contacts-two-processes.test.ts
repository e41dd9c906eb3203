/**
 * `talken verify --confirm` while a daemon runs (src/node/contacts.ts `verifyContact`): two
 * connections to one SQLite file, as two processes have. A newer card the daemon stores for the
 * contact while the command marks it verified is kept.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { encodeContactCard } from '../../src/identity/contact-card.ts'
import { createIdentity, makeContactCard } from '../../src/identity/identity.ts'
import { acceptContactCard, verifyContact } from '../../src/node/contacts.ts'
import { openSqliteStore } from '../../src/store/sqlite-store.ts'
import type { Store } from '../../src/store/store.ts'

describe('contacts written from two processes', () => {
  it('verifying a contact keeps the newer card another process stored meanwhile', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'talken-contacts-'))
    const path = join(dir, 'talken.db')
    const cli = openSqliteStore({ path })
    const daemon = openSqliteStore({ path })
    t.after(() => {
      cli.close()
      daemon.close()
      rmSync(dir, { recursive: true, force: true })
    })
    const me = createIdentity({ now: 1_000_000, deviceName: 'me' })
    const grace = createIdentity({ now: 1_000_000, deviceName: 'grace' })
    const own = me.account.publicKey
    acceptContactCard(cli, own, makeContactCard(grace, { name: 'Grace', now: 1_000_000 }), { now: 1 })
    const newer = makeContactCard(grace, { name: 'Grace', now: 2_000_000 })
    // The daemon stores Grace's newer card just after the command has read the contact. Inside
    // the command's transaction it must wait (SQLite: one writer); then it goes ahead.
    let waited = false
    const reading = new Proxy(cli, {
      get(target, prop) {
        const value = Reflect.get(target, prop)
        if (typeof value !== 'function') return value
        if (prop !== 'listContacts') return value.bind(target)
        return () => {
          const found = target.listContacts()
          try {
            acceptContactCard(daemon, own, newer, { now: 2 })
          } catch {
            waited = true // busy: the command holds the write lock until it commits
          }
          return found
        }
      },
    }) as Store
    const { contact } = verifyContact(reading, own, 'Grace', true)
    assert.equal(contact.verified, true)
    if (waited) acceptContactCard(daemon, own, newer, { now: 2 })
    const stored = cli.getContact(contact.id)!
    assert.equal(stored.verified, true)
    assert.equal(
      Buffer.from(stored.card).toString('hex'),
      Buffer.from(encodeContactCard(newer)).toString('hex'),
    )
  })
})
