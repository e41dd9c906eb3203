/**
 * An in-memory {@link Store} for tests, simulations and ephemeral nodes: plain Maps, nothing on disk.
 *
 * It keeps the same contract as the SQLite store (same compliance suite): records are copied on the
 * way in and out, so nothing a caller holds aliases stored state; `transaction()` keeps an undo log
 * and unwinds it when the function throws (nested calls unwind only their own part, like SQLite
 * savepoints); custody usage is kept as running counters. Text orderings use Unicode code point
 * order, which is SQLite's BINARY collation over UTF-8.
 */
import { TalkenError } from '../errors.ts'
import {
  type Contact,
  type CustodyEntry,
  type CustodyQuota,
  type CustodyUsage,
  DEFAULT_CUSTODY_QUOTA,
  type DeliveryState,
  MAX_PEER_ADDRESSES,
  MAX_PEERS,
  type MessageRecord,
  type OutboxEntry,
  type PeerAddress,
  type PeerRecord,
  type Store,
  type StoredIdentity,
  undoAll,
} from './store.ts'
import * as v from './validate.ts'

/** Options for {@link createMemoryStore}. */
export interface MemoryStoreOptions {
  /** Custody byte quotas; {@link DEFAULT_CUSTODY_QUOTA} when absent. */
  readonly custodyQuota?: CustodyQuota
}

interface PeerState {
  readonly lastSeen: number
  readonly addresses: ReadonlyMap<string, PeerAddress>
}

const ZERO: CustodyUsage = { bytes: 0, count: 0 }

/** Orders strings by Unicode code point (= UTF-8 byte order = SQLite BINARY), not UTF-16 unit. */
export function compareText(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i)
    let y = b.charCodeAt(i)
    if (x === y) continue
    // Surrogates (U+D800..DFFF) encode code points above U+FFFF, so they sort after U+E000..FFFF.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000
    }
    return x - y
  }
  return a.length - b.length
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

function copyMessage(m: MessageRecord): MessageRecord {
  const { id, conversation, direction, createdAt, state, stateReason, updatedAt } = m
  const out = { id, conversation, direction, body: m.body.slice(), createdAt, state, updatedAt }
  return stateReason === undefined ? out : { ...out, stateReason }
}

function copyContact(c: Contact): Contact {
  const { id, name, verified, addedAt } = c
  return { id, accountKey: c.accountKey.slice(), name, card: c.card.slice(), verified, addedAt }
}

function copyOutbox(e: OutboxEntry): OutboxEntry {
  const { messageId, attempts, nextAttemptAt, expiresAt } = e
  return { messageId, envelope: e.envelope.slice(), attempts, nextAttemptAt, expiresAt }
}

function copyCustody(e: CustodyEntry): CustodyEntry {
  const { messageId, origin, copies, expiresAt, receivedAt } = e
  const destination = e.destination.slice()
  return { messageId, origin, destination, envelope: e.envelope.slice(), copies, expiresAt, receivedAt }
}

function copyIdentity(i: StoredIdentity): StoredIdentity {
  return { accountKey: i.accountKey.slice(), name: i.name, card: i.card.slice(), createdAt: i.createdAt }
}

function peerRecord(peerId: string, p: PeerState): PeerRecord {
  const addresses = [...p.addresses.values()]
    .sort((a, b) => b.lastSeen - a.lastSeen || compareText(a.address, b.address))
    .map((a) => ({ ...a }))
  return { peerId, lastSeen: p.lastSeen, addresses }
}

function take<T>(items: T[], limit: number | undefined): T[] {
  return limit === undefined ? items : items.slice(0, limit)
}

/**
 * Creates an empty in-memory store.
 *
 * @example
 * const store = createMemoryStore({ custodyQuota: { perOriginBytes: 1024, totalBytes: 4096 } })
 * store.addMessage({ id, conversation, direction: 'out', body, createdAt: now, state: 'queued', updatedAt: now })
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): Store {
  const custodyQuota = v.checkQuota(options.custodyQuota ?? DEFAULT_CUSTODY_QUOTA)
  const identity = new Map<0, StoredIdentity>()
  const contacts = new Map<string, Contact>()
  const messages = new Map<string, MessageRecord>()
  const outbox = new Map<string, OutboxEntry>()
  const custody = new Map<string, CustodyEntry>()
  const usage = new Map<string, CustodyUsage>()
  const peers = new Map<string, PeerState>()
  const kv = new Map<string, Map<string, Uint8Array>>()
  let total: CustodyUsage = ZERO
  let closed = false
  /** Undo steps of the running transaction, newest last; undefined outside a transaction. */
  let undoLog: Array<() => void> | undefined
  /**
   * The callers' `onRollback` callbacks of the running transaction, newest last: run after the
   * store's own undo steps, so that they see the store as it was before (as SQLite's do).
   */
  let callbacks: Array<() => void> = []

  function open(): void {
    if (closed) throw new TalkenError('closed', 'the store is closed')
  }

  function set<K, V>(map: Map<K, V>, key: K, value: V): void {
    if (undoLog !== undefined) {
      const prev = map.get(key)
      undoLog.push(prev === undefined ? () => map.delete(key) : () => map.set(key, prev))
    }
    map.set(key, value)
  }

  function remove<K, V>(map: Map<K, V>, key: K): boolean {
    const prev = map.get(key)
    if (prev === undefined) return false
    undoLog?.push(() => map.set(key, prev))
    map.delete(key)
    return true
  }

  function addUsage(origin: string, bytes: number, count: number): void {
    const u = usage.get(origin) ?? ZERO
    const next = { bytes: u.bytes + bytes, count: u.count + count }
    if (next.count === 0) remove(usage, origin)
    else set(usage, origin, next)
    const prevTotal = total
    undoLog?.push(() => {
      total = prevTotal
    })
    total = { bytes: total.bytes + bytes, count: total.count + count }
  }

  function dropCustody(messageId: string): boolean {
    const old = custody.get(messageId)
    if (old === undefined) return false
    remove(custody, messageId)
    addUsage(old.origin, -old.envelope.length, -1)
    return true
  }

  function transaction<T>(fn: () => T): T {
    open()
    const outer = undoLog === undefined
    const log = outer ? [] : (undoLog as Array<() => void>)
    const mark = log.length
    const callbackMark = callbacks.length
    undoLog = log
    try {
      const result = fn()
      if (typeof (result as { then?: unknown } | null)?.then === 'function') {
        throw new TalkenError('invalid_argument', 'a transaction function cannot return a promise')
      }
      return result
    } catch (err) {
      undoAll(log, mark)
      undoAll(callbacks, callbackMark)
      throw err
    } finally {
      if (outer) {
        undoLog = undefined
        callbacks = []
      }
    }
  }

  return {
    custodyQuota,

    onRollback(fn) {
      open()
      if (undoLog !== undefined) callbacks.push(fn)
    },

    getIdentity() {
      open()
      const i = identity.get(0)
      return i === undefined ? undefined : copyIdentity(i)
    },
    setIdentity(next) {
      open()
      v.checkIdentity(next)
      const cur = identity.get(0)
      if (cur !== undefined && !bytesEqual(cur.accountKey, next.accountKey)) {
        throw new TalkenError('conflict', 'the store already holds an identity with a different account key')
      }
      set(identity, 0, copyIdentity(next))
    },

    putContact(contact) {
      open()
      v.checkContact(contact)
      set(contacts, contact.id, copyContact(contact))
    },
    getContact(id) {
      open()
      const c = contacts.get(id)
      return c === undefined ? undefined : copyContact(c)
    },
    listContacts() {
      open()
      return [...contacts.values()]
        .sort((a, b) => compareText(a.name, b.name) || compareText(a.id, b.id))
        .map(copyContact)
    },
    removeContact(id) {
      open()
      return remove(contacts, id)
    },

    addMessage(message) {
      open()
      v.checkMessage(message)
      if (messages.has(message.id)) return false
      set(messages, message.id, copyMessage(message))
      return true
    },
    getMessage(id) {
      open()
      const m = messages.get(id)
      return m === undefined ? undefined : copyMessage(m)
    },
    setMessageState(id: string, state: DeliveryState, at: number, reason?: string) {
      open()
      v.checkState(state)
      v.checkInt(at, 'at')
      v.checkReason(reason)
      const m = messages.get(id)
      if (m === undefined) throw new TalkenError('not_found', `no message ${id}`)
      const { stateReason: _, ...rest } = m
      set(
        messages,
        id,
        reason === undefined
          ? { ...rest, state, updatedAt: at }
          : { ...rest, state, updatedAt: at, stateReason: reason },
      )
    },
    listMessages(conversation, options = {}) {
      open()
      const { limit, before } = options
      v.checkLimit(limit)
      if (before !== undefined) v.checkBound(before, 'before')
      const page = [...messages.values()]
        .filter((m) => m.conversation === conversation && (before === undefined || m.createdAt < before))
        .sort((a, b) => a.createdAt - b.createdAt || compareText(a.id, b.id))
      const start = limit === undefined ? 0 : Math.max(0, page.length - limit)
      return page.slice(start).map(copyMessage)
    },

    putOutbox(entry) {
      open()
      v.checkOutbox(entry)
      set(outbox, entry.messageId, copyOutbox(entry))
    },
    getOutbox(messageId) {
      open()
      const e = outbox.get(messageId)
      return e === undefined ? undefined : copyOutbox(e)
    },
    listOutboxDue(now, limit) {
      open()
      v.checkBound(now, 'now')
      v.checkLimit(limit)
      const due = [...outbox.values()]
        .filter((e) => e.nextAttemptAt <= now)
        .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || compareText(a.messageId, b.messageId))
      return take(due, limit).map(copyOutbox)
    },
    removeOutbox(messageId) {
      open()
      return remove(outbox, messageId)
    },
    outboxSize() {
      open()
      return outbox.size
    },

    putCustody(entry) {
      open()
      v.checkCustody(entry)
      const size = entry.envelope.length
      const old = custody.get(entry.messageId)
      const replaced = old === undefined ? undefined : { origin: old.origin, size: old.envelope.length }
      const current = { origin: usage.get(entry.origin)?.bytes ?? 0, total: total.bytes }
      const fit = v.custodyFits(custodyQuota, size, current, replaced, entry.origin)
      if (fit !== 'ok') throw v.quotaError(fit, entry.origin, size)
      transaction(() => {
        dropCustody(entry.messageId)
        set(custody, entry.messageId, copyCustody(entry))
        addUsage(entry.origin, size, 1)
      })
    },
    getCustody(messageId) {
      open()
      const e = custody.get(messageId)
      return e === undefined ? undefined : copyCustody(e)
    },
    listCustody(options = {}) {
      open()
      const { destination, limit } = options
      if (destination !== undefined) v.checkBytes(destination, 'destination')
      v.checkLimit(limit)
      const list = [...custody.values()]
        .filter((e) => destination === undefined || bytesEqual(e.destination, destination))
        .sort((a, b) => a.receivedAt - b.receivedAt || compareText(a.messageId, b.messageId))
      return take(list, limit).map(copyCustody)
    },
    removeCustody(messageId) {
      open()
      return transaction(() => dropCustody(messageId))
    },
    expireCustody(now) {
      open()
      v.checkBound(now, 'now')
      const expired = [...custody.values()].filter((e) => e.expiresAt <= now)
      transaction(() => {
        for (const e of expired) dropCustody(e.messageId)
      })
      return expired.length
    },
    custodyUsage(origin) {
      open()
      return { ...(origin === undefined ? total : (usage.get(origin) ?? ZERO)) }
    },

    notePeer(peerId, seenAt, address) {
      open()
      v.checkText(peerId, 'peerId')
      v.checkInt(seenAt, 'seenAt')
      if (address !== undefined) v.checkText(address, 'address')
      const cur = peers.get(peerId)
      let addresses = new Map(cur?.addresses)
      if (address !== undefined) {
        const last = addresses.get(address)?.lastSeen ?? seenAt
        addresses.set(address, { address, lastSeen: Math.max(last, seenAt), failures: 0 })
        if (addresses.size > MAX_PEER_ADDRESSES) {
          const kept = [...addresses.values()]
            .sort((a, b) => b.lastSeen - a.lastSeen || compareText(a.address, b.address))
            .slice(0, MAX_PEER_ADDRESSES)
          addresses = new Map(kept.map((a) => [a.address, a]))
        }
      }
      set(peers, peerId, { lastSeen: Math.max(cur?.lastSeen ?? seenAt, seenAt), addresses })
      if (peers.size > MAX_PEERS) {
        const byRecency = [...peers.entries()].sort(
          (a, b) => b[1].lastSeen - a[1].lastSeen || compareText(a[0], b[0]),
        )
        for (const [id] of byRecency.slice(MAX_PEERS)) remove(peers, id)
      }
    },
    noteAddressFailure(peerId, address) {
      open()
      const cur = peers.get(peerId)
      const a = cur?.addresses.get(address)
      if (cur === undefined || a === undefined) {
        throw new TalkenError('not_found', `no address ${address} recorded for peer ${peerId}`)
      }
      const addresses = new Map(cur.addresses).set(address, { ...a, failures: a.failures + 1 })
      set(peers, peerId, { lastSeen: cur.lastSeen, addresses })
    },
    getPeer(peerId) {
      open()
      const p = peers.get(peerId)
      return p === undefined ? undefined : peerRecord(peerId, p)
    },
    listPeers(limit) {
      open()
      v.checkLimit(limit)
      const list = [...peers.entries()].sort(
        (a, b) => b[1].lastSeen - a[1].lastSeen || compareText(a[0], b[0]),
      )
      return take(list, limit).map(([id, p]) => peerRecord(id, p))
    },
    removePeer(peerId) {
      open()
      return remove(peers, peerId)
    },

    kvGet(namespace, key) {
      open()
      return kv.get(namespace)?.get(key)?.slice()
    },
    kvSet(namespace, key, value) {
      open()
      v.checkString(namespace, 'namespace')
      v.checkString(key, 'key')
      v.checkBytes(value, 'value')
      let ns = kv.get(namespace)
      if (ns === undefined) {
        ns = new Map()
        set(kv, namespace, ns)
      }
      set(ns, key, value.slice())
    },
    kvDelete(namespace, key) {
      open()
      const ns = kv.get(namespace)
      return ns === undefined ? false : remove(ns, key)
    },
    kvList(namespace) {
      open()
      const entries = [...(kv.get(namespace)?.entries() ?? [])]
      return entries.sort((a, b) => compareText(a[0], b[0])).map(([k, value]) => [k, value.slice()])
    },

    transaction,
    close() {
      closed = true
    },
  }
}
