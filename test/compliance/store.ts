/**
 * The Store compliance suite: every implementation of `src/store/store.ts` must pass it unchanged.
 * It pins down the contract the TSDoc states (orderings, duplicates, quotas, atomicity, lifecycle)
 * and the choices the TSDoc leaves open, written down in docs/storage.md.
 */
import { strict as assert } from 'node:assert'
import { afterEach, beforeEach, describe, it } from 'node:test'
import {
  type Contact,
  type CustodyEntry,
  type CustodyQuota,
  DEFAULT_CUSTODY_QUOTA,
  MAX_PEER_ADDRESSES,
  MAX_PEERS,
  type MessageRecord,
  type OutboxEntry,
  type PeerAddress,
  type Store,
  type StoredIdentity,
} from '../../src/store/index.ts'
import { throwsCode } from '../helpers/errors.ts'

/** What the suite may ask of the store it opens. */
export interface StoreTestOptions {
  readonly custodyQuota?: CustodyQuota
}

const bytes = (...b: number[]) => new Uint8Array(b)
const filled = (n: number, fill = 7) => new Uint8Array(n).fill(fill)
const hexId = (n: number) => n.toString(16).padStart(32, '0')

function message(n: number, over: Partial<MessageRecord> = {}): MessageRecord {
  return {
    id: hexId(n),
    conversation: 'alice',
    direction: 'out',
    body: bytes(n & 255, 1, 2),
    createdAt: 1000 + n,
    state: 'queued',
    updatedAt: 1000 + n,
    ...over,
  }
}

function contact(id: string, name: string, over: Partial<Contact> = {}): Contact {
  return { id, accountKey: filled(32, 1), name, card: bytes(9, 9), verified: false, addedAt: 5, ...over }
}

function outbox(n: number, nextAttemptAt: number): OutboxEntry {
  return { messageId: hexId(n), envelope: bytes(n, 0xee), attempts: 0, nextAttemptAt, expiresAt: 99_000 }
}

function custody(n: number, origin: string, size: number, over: Partial<CustodyEntry> = {}): CustodyEntry {
  return {
    messageId: hexId(n),
    origin,
    destination: bytes(0xd0, 1),
    envelope: filled(size, n & 255),
    copies: 4,
    expiresAt: 50_000 + n,
    receivedAt: 2000 + n,
    ...over,
  }
}

const identity: StoredIdentity = {
  accountKey: filled(32, 3),
  name: 'me',
  card: bytes(1, 2, 3),
  createdAt: 42,
}

/**
 * Registers the compliance tests for one Store implementation. `open` must return a fresh, empty
 * store each call; the suite closes what it opens.
 */
export function storeCompliance(name: string, open: (options?: StoreTestOptions) => Store): void {
  describe(`${name}: Store compliance`, () => {
    let store: Store
    const opened: Store[] = []
    const fresh = (options?: StoreTestOptions) => {
      const s = open(options)
      opened.push(s)
      return s
    }
    beforeEach(() => {
      store = fresh()
    })
    afterEach(() => {
      for (const s of opened.splice(0)) s.close()
    })

    describe('identity', () => {
      it('starts empty, round-trips, and replaces the profile for the same account key', () => {
        assert.equal(store.getIdentity(), undefined)
        store.setIdentity(identity)
        assert.deepEqual(store.getIdentity(), identity)
        const renamed = { ...identity, name: 'me again', card: bytes(4) }
        store.setIdentity(renamed)
        assert.deepEqual(store.getIdentity(), renamed)
      })

      it('refuses a different account key with conflict and keeps the old profile', () => {
        store.setIdentity(identity)
        throwsCode(() => store.setIdentity({ ...identity, accountKey: filled(32, 4) }), 'conflict')
        assert.deepEqual(store.getIdentity(), identity)
      })
    })

    describe('contacts', () => {
      it('round-trips, replaces, and removes', () => {
        const c = contact('id-b', 'Bob', { verified: true })
        store.putContact(c)
        assert.deepEqual(store.getContact('id-b'), c)
        assert.equal(store.getContact('nobody'), undefined)
        const renamed = { ...c, name: 'Bobby', verified: false }
        store.putContact(renamed)
        assert.deepEqual(store.getContact('id-b'), renamed)
        assert.equal(store.removeContact('id-b'), true)
        assert.equal(store.removeContact('id-b'), false)
        assert.equal(store.getContact('id-b'), undefined)
      })

      it('lists by name then ID, in code point order', () => {
        const names: Array<[string, string]> = [
          ['z1', 'carol'],
          ['a2', 'bob'],
          ['a1', 'bob'],
          ['e1', '\u{1F600}'], // above U+FFFF: after U+FFFD in code point order, before it in UTF-16
          ['e2', '\uFFFD'],
          ['e3', 'Zed'],
          ['e4', 'émile'],
        ]
        for (const [id, n] of names) store.putContact(contact(id, n))
        assert.deepEqual(
          store.listContacts().map((c) => c.id),
          ['e3', 'a1', 'a2', 'z1', 'e4', 'e2', 'e1'],
        )
      })
    })

    describe('messages', () => {
      it('round-trips, with and without a state reason and with an empty body', () => {
        const a = message(1)
        const b = message(2, { direction: 'in', state: 'failed', stateReason: 'no route', body: bytes() })
        assert.equal(store.addMessage(a), true)
        assert.equal(store.addMessage(b), true)
        assert.deepEqual(store.getMessage(a.id), a)
        assert.deepEqual(store.getMessage(b.id), b)
        assert.equal(store.getMessage(hexId(99)), undefined)
      })

      it('returns false on a duplicate ID and changes nothing', () => {
        const a = message(1)
        store.addMessage(a)
        const clash = message(1, { body: bytes(9), state: 'delivered', conversation: 'bob', createdAt: 1 })
        assert.equal(store.addMessage(clash), false)
        assert.deepEqual(store.getMessage(a.id), a)
        assert.deepEqual(store.listMessages('bob'), [])
      })

      it('sets the state, time and reason; a state without a reason clears it', () => {
        const a = message(1)
        store.addMessage(a)
        store.setMessageState(a.id, 'failed', 3000, 'gave up')
        assert.deepEqual(store.getMessage(a.id), {
          ...a,
          state: 'failed',
          updatedAt: 3000,
          stateReason: 'gave up',
        })
        store.setMessageState(a.id, 'delivered', 3001)
        assert.deepEqual(store.getMessage(a.id), { ...a, state: 'delivered', updatedAt: 3001 })
      })

      it('throws not_found for an unknown ID and invalid_argument for an unknown state', () => {
        throwsCode(() => store.setMessageState(hexId(5), 'sent', 1), 'not_found')
        store.addMessage(message(5))
        throwsCode(() => store.setMessageState(hexId(5), 'lost' as never, 1), 'invalid_argument')
        throwsCode(() => store.addMessage({ ...message(6), state: 'lost' as never }), 'invalid_argument')
        assert.equal(store.getMessage(hexId(6)), undefined)
      })

      it('lists one conversation oldest first, ties by ID', () => {
        store.addMessage(message(3, { createdAt: 10 }))
        store.addMessage(message(1, { createdAt: 20 }))
        store.addMessage(message(2, { createdAt: 10 }))
        store.addMessage(message(4, { createdAt: 5, conversation: 'bob' }))
        assert.deepEqual(
          store.listMessages('alice').map((m) => m.id),
          [hexId(2), hexId(3), hexId(1)],
        )
        assert.deepEqual(store.listMessages('bob'), [store.getMessage(hexId(4))])
        assert.deepEqual(store.listMessages('carol'), [])
      })

      it('pages backwards: limit takes the newest, before is exclusive', () => {
        for (let n = 1; n <= 10; n++) store.addMessage(message(n, { createdAt: n * 10 }))
        const ids = (ms: MessageRecord[]) => ms.map((m) => m.createdAt)
        assert.deepEqual(ids(store.listMessages('alice', { limit: 3 })), [80, 90, 100])
        assert.deepEqual(ids(store.listMessages('alice', { limit: 3, before: 80 })), [50, 60, 70])
        assert.deepEqual(ids(store.listMessages('alice', { before: 30 })), [10, 20])
        assert.deepEqual(ids(store.listMessages('alice', { limit: 5, before: 30 })), [10, 20])
        assert.deepEqual(store.listMessages('alice', { limit: 0 }), [])
        throwsCode(() => store.listMessages('alice', { limit: -1 }), 'invalid_argument')
      })
    })

    describe('outbox', () => {
      it('round-trips, replaces, counts and removes', () => {
        const e = outbox(1, 100)
        store.putOutbox(e)
        assert.deepEqual(store.getOutbox(e.messageId), e)
        const retried = { ...e, attempts: 1, nextAttemptAt: 200 }
        store.putOutbox(retried)
        assert.deepEqual(store.getOutbox(e.messageId), retried)
        assert.equal(store.outboxSize(), 1)
        assert.equal(store.removeOutbox(e.messageId), true)
        assert.equal(store.removeOutbox(e.messageId), false)
        assert.equal(store.getOutbox(e.messageId), undefined)
        assert.equal(store.outboxSize(), 0)
      })

      it('lists due entries (nextAttemptAt <= now) earliest first, ties by ID, up to a limit', () => {
        store.putOutbox(outbox(1, 300))
        store.putOutbox(outbox(2, 100))
        store.putOutbox(outbox(4, 200))
        store.putOutbox(outbox(3, 200))
        store.putOutbox(outbox(5, 301))
        const due = (now: number, limit?: number) => store.listOutboxDue(now, limit).map((e) => e.messageId)
        assert.deepEqual(due(300), [hexId(2), hexId(3), hexId(4), hexId(1)])
        assert.deepEqual(due(300, 2), [hexId(2), hexId(3)])
        assert.deepEqual(due(99), [])
        assert.deepEqual(store.listOutboxDue(100), [outbox(2, 100)])
      })
    })

    describe('custody', () => {
      const quota = { perOriginBytes: 100, totalBytes: 250 }

      it('exposes its quota, the default when none is given', () => {
        assert.deepEqual(store.custodyQuota, DEFAULT_CUSTODY_QUOTA)
        assert.deepEqual(fresh({ custodyQuota: quota }).custodyQuota, quota)
      })

      it('round-trips and lists oldest first, by destination, up to a limit', () => {
        const a = custody(1, 'n1', 10, { receivedAt: 30 })
        const b = custody(2, 'n1', 10, { receivedAt: 10, destination: bytes(0xd1) })
        const c = custody(3, 'n2', 10, { receivedAt: 20 })
        const d = custody(4, 'n2', 10, { receivedAt: 20 })
        for (const e of [a, b, c, d]) store.putCustody(e)
        assert.deepEqual(store.getCustody(a.messageId), a)
        assert.equal(store.getCustody(hexId(9)), undefined)
        assert.deepEqual(store.listCustody(), [b, c, d, a])
        assert.deepEqual(store.listCustody({ limit: 2 }), [b, c])
        assert.deepEqual(store.listCustody({ destination: bytes(0xd0, 1) }), [c, d, a])
        assert.deepEqual(store.listCustody({ destination: bytes(0xd0, 1), limit: 1 }), [c])
        assert.deepEqual(store.listCustody({ destination: bytes(0xd0) }), [])
      })

      it('tracks usage per origin and in total', () => {
        store.putCustody(custody(1, 'n1', 10))
        store.putCustody(custody(2, 'n1', 15))
        store.putCustody(custody(3, 'n2', 7))
        assert.deepEqual(store.custodyUsage('n1'), { bytes: 25, count: 2 })
        assert.deepEqual(store.custodyUsage('n2'), { bytes: 7, count: 1 })
        assert.deepEqual(store.custodyUsage('n3'), { bytes: 0, count: 0 })
        assert.deepEqual(store.custodyUsage(), { bytes: 32, count: 3 })
        assert.equal(store.removeCustody(hexId(2)), true)
        assert.equal(store.removeCustody(hexId(2)), false)
        assert.deepEqual(store.custodyUsage('n1'), { bytes: 10, count: 1 })
        assert.deepEqual(store.custodyUsage(), { bytes: 17, count: 2 })
      })

      it('refuses an insert over the per-origin quota with quota_exceeded and writes nothing', () => {
        const s = fresh({ custodyQuota: quota })
        s.putCustody(custody(1, 'n1', 60))
        throwsCode(() => s.putCustody(custody(2, 'n1', 41)), 'quota_exceeded')
        assert.equal(s.getCustody(hexId(2)), undefined)
        assert.deepEqual(s.custodyUsage('n1'), { bytes: 60, count: 1 })
        s.putCustody(custody(3, 'n1', 40)) // exactly at the quota is allowed
        assert.deepEqual(s.custodyUsage('n1'), { bytes: 100, count: 2 })
        throwsCode(() => s.putCustody(custody(4, 'n1', 1)), 'quota_exceeded')
        throwsCode(() => s.putCustody(custody(5, 'n9', 101)), 'quota_exceeded')
        assert.deepEqual(s.custodyUsage(), { bytes: 100, count: 2 })
      })

      it('refuses an insert over the total quota with quota_exceeded and writes nothing', () => {
        const s = fresh({ custodyQuota: quota })
        s.putCustody(custody(1, 'n1', 100))
        s.putCustody(custody(2, 'n2', 100))
        throwsCode(() => s.putCustody(custody(3, 'n3', 51)), 'quota_exceeded')
        assert.equal(s.getCustody(hexId(3)), undefined)
        assert.deepEqual(s.custodyUsage('n3'), { bytes: 0, count: 0 })
        s.putCustody(custody(3, 'n3', 50))
        assert.deepEqual(s.custodyUsage(), { bytes: 250, count: 3 })
      })

      it('replaces in place: the old bytes leave the quota first, across origins too', () => {
        const s = fresh({ custodyQuota: quota })
        s.putCustody(custody(1, 'n1', 80))
        const bigger = custody(1, 'n1', 100, { copies: 1 })
        s.putCustody(bigger)
        assert.deepEqual(s.getCustody(hexId(1)), bigger)
        assert.deepEqual(s.custodyUsage('n1'), { bytes: 100, count: 1 })
        throwsCode(() => s.putCustody(custody(1, 'n1', 101)), 'quota_exceeded')
        assert.deepEqual(s.getCustody(hexId(1)), bigger)
        const moved = custody(1, 'n2', 30)
        s.putCustody(moved)
        assert.deepEqual(s.custodyUsage('n1'), { bytes: 0, count: 0 })
        assert.deepEqual(s.custodyUsage('n2'), { bytes: 30, count: 1 })
        assert.deepEqual(s.custodyUsage(), { bytes: 30, count: 1 })
        assert.deepEqual(s.listCustody(), [moved])
      })

      it('expires entries with expiresAt <= now and frees their bytes', () => {
        store.putCustody(custody(1, 'n1', 10, { expiresAt: 100 }))
        store.putCustody(custody(2, 'n1', 20, { expiresAt: 200 }))
        store.putCustody(custody(3, 'n2', 30, { expiresAt: 201 }))
        assert.equal(store.expireCustody(99), 0)
        assert.equal(store.expireCustody(200), 2)
        assert.deepEqual(
          store.listCustody().map((e) => e.messageId),
          [hexId(3)],
        )
        assert.deepEqual(store.custodyUsage('n1'), { bytes: 0, count: 0 })
        assert.deepEqual(store.custodyUsage(), { bytes: 30, count: 1 })
        assert.equal(store.expireCustody(200), 0)
      })
    })

    describe('peers', () => {
      it('records peers, addresses, failures, and resets failures on success', () => {
        assert.equal(store.getPeer('p1'), undefined)
        store.notePeer('p1', 100)
        assert.deepEqual(store.getPeer('p1'), { peerId: 'p1', lastSeen: 100, addresses: [] })
        store.notePeer('p1', 110, '/ip4/1.2.3.4/tcp/1')
        store.noteAddressFailure('p1', '/ip4/1.2.3.4/tcp/1')
        store.noteAddressFailure('p1', '/ip4/1.2.3.4/tcp/1')
        const addr = (address: string, lastSeen: number, failures: number): PeerAddress => ({
          address,
          lastSeen,
          failures,
        })
        assert.deepEqual(store.getPeer('p1')?.addresses, [addr('/ip4/1.2.3.4/tcp/1', 110, 2)])
        store.notePeer('p1', 120, '/ip4/5.6.7.8/tcp/2')
        store.notePeer('p1', 90, '/ip4/1.2.3.4/tcp/1') // an older sighting resets failures, keeps lastSeen
        assert.deepEqual(store.getPeer('p1'), {
          peerId: 'p1',
          lastSeen: 120,
          addresses: [addr('/ip4/5.6.7.8/tcp/2', 120, 0), addr('/ip4/1.2.3.4/tcp/1', 110, 0)],
        })
      })

      it("keeps a peer's most recently seen addresses, and the most recently seen peers, up to their bounds", () => {
        for (let i = 0; i < MAX_PEER_ADDRESSES + 4; i++)
          store.notePeer('p1', 100 + i, `/ip4/10.0.0.${i}/tcp/1`)
        const kept = store.getPeer('p1')?.addresses.map((a) => a.address)
        assert.equal(kept?.length, MAX_PEER_ADDRESSES)
        assert.equal(kept?.[0], `/ip4/10.0.0.${MAX_PEER_ADDRESSES + 3}/tcp/1`)
        assert.ok(!kept?.includes('/ip4/10.0.0.0/tcp/1'), 'the oldest address is forgotten')
        for (let i = 0; i < MAX_PEERS + 5; i++)
          store.notePeer(`q${String(i).padStart(5, '0')}`, 1_000 + i, '/a')
        const peers = store.listPeers()
        assert.equal(peers.length, MAX_PEERS)
        assert.equal(peers[0]?.peerId, `q${String(MAX_PEERS + 4).padStart(5, '0')}`)
        assert.equal(
          store.getPeer('p1'),
          undefined,
          'the least recently seen peer is forgotten, with its addresses',
        )
        assert.equal(store.getPeer('q00004'), undefined)
        assert.ok(store.getPeer('q00005'))
      })

      it('throws not_found for a failure on an unknown peer or address', () => {
        throwsCode(() => store.noteAddressFailure('p1', '/a'), 'not_found')
        store.notePeer('p1', 1)
        throwsCode(() => store.noteAddressFailure('p1', '/a'), 'not_found')
        assert.deepEqual(store.getPeer('p1')?.addresses, [])
      })

      it('lists most recently seen first, ties by ID, up to a limit; removes with addresses', () => {
        store.notePeer('p1', 10, '/a')
        store.notePeer('p3', 30)
        store.notePeer('p2', 20)
        store.notePeer('p0', 20)
        assert.deepEqual(
          store.listPeers().map((p) => p.peerId),
          ['p3', 'p0', 'p2', 'p1'],
        )
        assert.deepEqual(
          store.listPeers(2).map((p) => p.peerId),
          ['p3', 'p0'],
        )
        assert.deepEqual(store.listPeers().at(-1), store.getPeer('p1'))
        assert.equal(store.removePeer('p1'), true)
        assert.equal(store.removePeer('p1'), false)
        assert.equal(store.getPeer('p1'), undefined)
        store.notePeer('p1', 40)
        assert.deepEqual(store.getPeer('p1'), { peerId: 'p1', lastSeen: 40, addresses: [] })
      })
    })

    describe('key-value', () => {
      it('sets, gets, overwrites, deletes and lists by key within a namespace', () => {
        assert.equal(store.kvGet('ns', 'k'), undefined)
        store.kvSet('ns', 'k2', bytes(2))
        store.kvSet('ns', 'k1', bytes(1))
        store.kvSet('ns', 'k1', bytes(11))
        store.kvSet('ns', 'empty', bytes())
        store.kvSet('other', 'k1', bytes(99))
        assert.deepEqual(store.kvGet('ns', 'k1'), bytes(11))
        assert.deepEqual(store.kvList('ns'), [
          ['empty', bytes()],
          ['k1', bytes(11)],
          ['k2', bytes(2)],
        ])
        assert.equal(store.kvDelete('ns', 'k1'), true)
        assert.equal(store.kvDelete('ns', 'k1'), false)
        assert.equal(store.kvDelete('nothing', 'k1'), false)
        assert.deepEqual(store.kvList('other'), [['k1', bytes(99)]])
        assert.deepEqual(store.kvList('none'), [])
      })
    })

    describe('transaction', () => {
      /** Writes to every table, so a rollback is checked everywhere. */
      function writeEverywhere(s: Store, n: number): void {
        s.addMessage(message(n))
        s.setMessageState(hexId(n), 'sent', 5)
        s.putOutbox(outbox(n, 1))
        s.putCustody(custody(n, 'n1', 10))
        s.putContact(contact(`c${n}`, 'x'))
        s.notePeer(`p${n}`, 1, '/a')
        s.kvSet('ns', `k${n}`, bytes(n))
      }

      function landed(s: Store, n: number): boolean[] {
        return [
          s.getMessage(hexId(n)) !== undefined,
          s.getOutbox(hexId(n)) !== undefined,
          s.getCustody(hexId(n)) !== undefined,
          s.getContact(`c${n}`) !== undefined,
          s.getPeer(`p${n}`) !== undefined,
          s.kvGet('ns', `k${n}`) !== undefined,
        ]
      }
      const all = (v: boolean) => Array<boolean>(6).fill(v)

      it('commits everything and returns the function value', () => {
        assert.equal(
          store.transaction(() => {
            writeEverywhere(store, 1)
            return 'done'
          }),
          'done',
        )
        assert.deepEqual(landed(store, 1), all(true))
        assert.deepEqual(store.custodyUsage(), { bytes: 10, count: 1 })
      })

      it('lands nothing when the function throws, and rethrows the same error', () => {
        store.setIdentity(identity)
        const boom = new Error('boom')
        assert.throws(
          () =>
            store.transaction(() => {
              writeEverywhere(store, 1)
              store.setIdentity({ ...identity, name: 'changed' })
              throw boom
            }),
          (err) => err === boom,
        )
        assert.deepEqual(landed(store, 1), all(false))
        assert.deepEqual(store.custodyUsage(), { bytes: 0, count: 0 })
        assert.deepEqual(store.getIdentity(), identity)
        assert.equal(store.outboxSize(), 0)
      })

      it('rolls back updates and deletes, not only inserts', () => {
        writeEverywhere(store, 1)
        const before = store.getMessage(hexId(1))
        assert.throws(() =>
          store.transaction(() => {
            store.setMessageState(hexId(1), 'read', 9)
            store.removeOutbox(hexId(1))
            store.removeCustody(hexId(1))
            store.removeContact('c1')
            store.removePeer('p1')
            store.kvDelete('ns', 'k1')
            throw new Error('undo')
          }),
        )
        assert.deepEqual(landed(store, 1), all(true))
        assert.deepEqual(store.getMessage(hexId(1)), before)
        assert.deepEqual(store.custodyUsage('n1'), { bytes: 10, count: 1 })
        assert.deepEqual(store.getPeer('p1')?.addresses.length, 1)
      })

      it('nested calls join: an inner failure caught by the outer undoes only the inner writes', () => {
        store.transaction(() => {
          writeEverywhere(store, 1)
          assert.throws(() =>
            store.transaction(() => {
              writeEverywhere(store, 2)
              throw new Error('inner')
            }),
          )
          store.transaction(() => writeEverywhere(store, 3))
        })
        assert.deepEqual(landed(store, 1), all(true))
        assert.deepEqual(landed(store, 2), all(false))
        assert.deepEqual(landed(store, 3), all(true))
        assert.deepEqual(store.custodyUsage(), { bytes: 20, count: 2 })
      })

      it('an outer failure undoes the inner, already finished, calls too', () => {
        assert.throws(() =>
          store.transaction(() => {
            store.transaction(() => writeEverywhere(store, 1))
            throw new Error('outer')
          }),
        )
        assert.deepEqual(landed(store, 1), all(false))
      })

      it('onRollback: runs what was registered in the part that is undone, newest first, and nothing on commit', () => {
        const ran: string[] = []
        store.onRollback(() => ran.push('outside')) // no transaction: nothing to undo
        store.transaction(() => {
          store.onRollback(() => ran.push('committed'))
          assert.throws(() =>
            store.transaction(() => {
              store.onRollback(() => ran.push('inner 1'))
              store.onRollback(() => ran.push('inner 2'))
              throw new Error('inner')
            }),
          )
        })
        assert.deepEqual(ran, ['inner 2', 'inner 1'])
        ran.length = 0
        assert.throws(() =>
          store.transaction(() => {
            store.onRollback(() => ran.push('outer'))
            store.transaction(() => store.onRollback(() => ran.push('finished inner')))
            throw new Error('outer')
          }),
        )
        assert.deepEqual(ran, ['finished inner', 'outer'])
        ran.length = 0
        store.transaction(() => store.onRollback(() => ran.push('never')))
        assert.deepEqual(ran, [])
      })

      it("onRollback: a callback that throws stops neither the undo nor the others, and the error stays the caller's", () => {
        const s = fresh()
        const ran: string[] = []
        const err = new Error('the caller')
        assert.throws(
          () =>
            s.transaction(() => {
              s.kvSet('ns', 'a', bytes(1))
              s.onRollback(() => ran.push('first'))
              assert.throws(() =>
                s.transaction(() => {
                  s.onRollback(() => ran.push('inner'))
                  s.onRollback(() => {
                    throw new Error('a broken callback')
                  })
                  throw new Error('inner')
                }),
              )
              s.onRollback(() => {
                throw new Error('another broken callback')
              })
              s.kvSet('ns', 'b', bytes(2))
              throw err
            }),
          (e) => e === err,
        )
        assert.deepEqual(ran, ['inner', 'first'], 'each callback once, newest first')
        assert.equal(s.kvGet('ns', 'a'), undefined)
        assert.equal(s.kvGet('ns', 'b'), undefined)
      })

      it('onRollback: a callback sees the store as it was before the part that is undone', () => {
        const s = fresh()
        const seen: Array<string | undefined> = []
        const read = () => {
          const v = s.kvGet('ns', 'k')
          return v === undefined ? undefined : Buffer.from(v).toString()
        }
        s.kvSet('ns', 'k', Buffer.from('before'))
        assert.throws(() =>
          s.transaction(() => {
            s.kvSet('ns', 'k', Buffer.from('outer'))
            s.onRollback(() => seen.push(read()))
            s.kvSet('ns', 'k', Buffer.from('later'))
            assert.throws(() =>
              s.transaction(() => {
                s.onRollback(() => seen.push(read()))
                s.kvSet('ns', 'k', Buffer.from('inner'))
                throw new Error('inner')
              }),
            )
            throw new Error('outer')
          }),
        )
        // The inner part undone: back to what it began with; then all of it: back to before.
        assert.deepEqual(seen, ['later', 'before'])
      })

      it('a store error caught inside keeps the transaction going', () => {
        const s = fresh({ custodyQuota: { perOriginBytes: 15, totalBytes: 100 } })
        s.transaction(() => {
          writeEverywhere(s, 1)
          throwsCode(() => s.putCustody(custody(2, 'n1', 10)), 'quota_exceeded')
          s.kvSet('ns', 'after', bytes(1))
        })
        assert.deepEqual(landed(s, 1), all(true))
        assert.deepEqual(s.kvGet('ns', 'after'), bytes(1))
      })

      it('refuses a function returning a promise and lands nothing', () => {
        throwsCode(
          () =>
            store.transaction(() => {
              store.kvSet('ns', 'k', bytes(1))
              return Promise.resolve()
            }),
          'invalid_argument',
        )
        assert.equal(store.kvGet('ns', 'k'), undefined)
      })
    })

    describe('text', () => {
      it('refuses strings with a lone surrogate (SQLite would store two of them as one key)', () => {
        throwsCode(() => store.kvSet('ns', 'a\ud800', bytes(1)), 'invalid_argument')
        throwsCode(() => store.kvSet('ns\udc00', 'a', bytes(1)), 'invalid_argument')
        throwsCode(() => store.addMessage({ ...message(7), conversation: 'x\udbff' }), 'invalid_argument')
        store.kvSet('ns', 'a\ud83d\ude00', bytes(1)) // a whole emoji is fine
        assert.deepEqual(store.kvGet('ns', 'a\ud83d\ude00'), bytes(1))
      })
    })

    describe('isolation from callers', () => {
      it('copies bytes on the way in', () => {
        const m = message(1)
        const body = m.body as Uint8Array
        store.addMessage(m)
        const v = bytes(1, 2)
        store.kvSet('ns', 'k', v)
        const c = custody(1, 'n1', 4)
        store.putCustody(c)
        body[0] = 0xff
        v[0] = 0xff
        ;(c.envelope as Uint8Array)[0] = 0xff
        assert.deepEqual(store.getMessage(m.id)?.body, bytes(1, 1, 2))
        assert.deepEqual(store.kvGet('ns', 'k'), bytes(1, 2))
        assert.deepEqual(store.getCustody(c.messageId)?.envelope, filled(4, 1))
      })

      it('returns copies that do not alias stored state', () => {
        store.setIdentity(identity)
        store.addMessage(message(1))
        store.putContact(contact('c', 'n'))
        store.putOutbox(outbox(1, 1))
        store.notePeer('p', 1, '/a')
        store.kvSet('ns', 'k', bytes(1, 2))
        const scribble = (b: Uint8Array) => b.fill(0xab)
        scribble(store.getIdentity()!.accountKey)
        scribble(store.getMessage(hexId(1))!.body)
        scribble(store.listMessages('alice')[0]!.body)
        scribble(store.getContact('c')!.card)
        scribble(store.listContacts()[0]!.accountKey)
        scribble(store.getOutbox(hexId(1))!.envelope)
        scribble(store.kvGet('ns', 'k')!)
        scribble(store.kvList('ns')[0]![1])
        const peer = store.getPeer('p')!
        ;(peer.addresses as PeerAddress[]).push({ address: '/b', lastSeen: 1, failures: 0 })
        ;(peer.addresses[0] as { failures: number }).failures = 7
        const usage = store.custodyUsage() as { bytes: number }
        usage.bytes = 99
        assert.deepEqual(store.getIdentity(), identity)
        assert.deepEqual(store.getMessage(hexId(1)), message(1))
        assert.deepEqual(store.getContact('c'), contact('c', 'n'))
        assert.deepEqual(store.getOutbox(hexId(1)), outbox(1, 1))
        assert.deepEqual(store.kvGet('ns', 'k'), bytes(1, 2))
        assert.deepEqual(store.getPeer('p')?.addresses, [{ address: '/a', lastSeen: 1, failures: 0 }])
        assert.deepEqual(store.custodyUsage(), { bytes: 0, count: 0 })
      })
    })

    describe('invalid arguments', () => {
      it('rejects malformed records with invalid_argument and writes nothing', () => {
        throwsCode(() => store.addMessage(message(1, { createdAt: 1.5 })), 'invalid_argument')
        throwsCode(() => store.addMessage(message(1, { direction: 'up' as never })), 'invalid_argument')
        throwsCode(() => store.addMessage(message(1, { body: 'text' as never })), 'invalid_argument')
        throwsCode(() => store.addMessage(message(1, { id: '' })), 'invalid_argument')
        throwsCode(() => store.putOutbox({ ...outbox(1, 1), attempts: -1 }), 'invalid_argument')
        throwsCode(() => store.putCustody(custody(1, 'n1', 1, { copies: Number.NaN })), 'invalid_argument')
        throwsCode(() => store.kvSet('ns', 'k', [1] as never), 'invalid_argument')
        throwsCode(() => store.notePeer('p', Number.POSITIVE_INFINITY), 'invalid_argument')
        throwsCode(() => store.listOutboxDue(0, 1.5), 'invalid_argument')
        assert.equal(store.getMessage(hexId(1)), undefined)
        assert.equal(store.outboxSize(), 0)
        assert.deepEqual(store.custodyUsage(), { bytes: 0, count: 0 })
      })
    })

    describe('close', () => {
      it('is idempotent, and every later call throws closed', () => {
        store.addMessage(message(1))
        store.close()
        store.close()
        const calls: Array<(s: Store) => unknown> = [
          (s) => s.getIdentity(),
          (s) => s.setIdentity(identity),
          (s) => s.putContact(contact('c', 'n')),
          (s) => s.getContact('c'),
          (s) => s.listContacts(),
          (s) => s.removeContact('c'),
          (s) => s.addMessage(message(2)),
          (s) => s.getMessage(hexId(1)),
          (s) => s.setMessageState(hexId(1), 'sent', 1),
          (s) => s.listMessages('alice'),
          (s) => s.putOutbox(outbox(1, 1)),
          (s) => s.getOutbox(hexId(1)),
          (s) => s.listOutboxDue(1),
          (s) => s.removeOutbox(hexId(1)),
          (s) => s.outboxSize(),
          (s) => s.putCustody(custody(1, 'n1', 1)),
          (s) => s.getCustody(hexId(1)),
          (s) => s.listCustody(),
          (s) => s.removeCustody(hexId(1)),
          (s) => s.expireCustody(1),
          (s) => s.custodyUsage(),
          (s) => s.notePeer('p', 1),
          (s) => s.noteAddressFailure('p', '/a'),
          (s) => s.getPeer('p'),
          (s) => s.listPeers(),
          (s) => s.removePeer('p'),
          (s) => s.kvGet('ns', 'k'),
          (s) => s.kvSet('ns', 'k', bytes(1)),
          (s) => s.kvDelete('ns', 'k'),
          (s) => s.kvList('ns'),
          (s) => s.transaction(() => 1),
        ]
        for (const call of calls) throwsCode(() => call(store), 'closed')
      })
    })
  })
}
