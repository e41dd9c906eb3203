/**
 * Reading conversations back: the most recent messages across all contacts, for `talken inbox`.
 */
import type { MessageRecord, Store } from '../store/store.ts'
import { findContact } from './contacts.ts'
import { resentAs } from './direct-messages.ts'
import { receiptsEnabled } from './receipts.ts'

/** A stored message as the CLI and the control socket show it. */
export interface MessageView {
  readonly id: string
  readonly conversation: string
  readonly contact: string | undefined
  readonly direction: 'in' | 'out'
  readonly text: string
  readonly at: number
  readonly state: MessageRecord['state']
}

/**
 * Whether a conversation shows `m`: not a message given up because it was sent again (its
 * replacement shows instead).
 */
function shown(m: MessageRecord): boolean {
  return !(m.direction === 'out' && m.state === 'failed' && resentAs(m.stateReason) !== undefined)
}

export function messageView(m: MessageRecord, contactName: string | undefined): MessageView {
  return {
    id: m.id,
    conversation: m.conversation,
    contact: contactName,
    direction: m.direction,
    text: Buffer.from(m.body).toString('utf8'),
    at: m.createdAt,
    state: m.state,
  }
}

/** The `limit` most recent messages (incoming only unless `all`), oldest first. */
export function recentMessages(store: Store, options: { limit?: number; all?: boolean } = {}): MessageView[] {
  const limit = options.limit ?? 20
  const out: MessageView[] = []
  for (const contact of store.listContacts()) {
    for (const m of store.listMessages(contact.id, { limit: limit * 4 })) {
      if ((options.all || m.direction === 'in') && shown(m)) out.push(messageView(m, contact.name))
    }
  }
  out.sort((a, b) => a.at - b.at || a.id.localeCompare(b.id))
  return out.slice(-limit)
}

/** A contact as a chat list shows it. */
export interface ContactSummary {
  readonly id: string
  readonly name: string
  readonly verified: boolean
  /** Incoming messages not marked read. */
  readonly unread: number
  /** When the last message (either way) was written, Unix ms; 0 when none. */
  readonly lastAt: number
  /** Whether this contact gets our read receipts. */
  readonly receipts: boolean
}

/** Every contact with its unread count and last activity. */
export function contactSummaries(store: Store): ContactSummary[] {
  return store.listContacts().map((c) => {
    const recent = store.listMessages(c.id, { limit: 500 })
    return {
      id: c.id,
      name: c.name,
      verified: c.verified,
      unread: recent.filter((m) => m.direction === 'in' && m.state === 'received').length,
      lastAt: recent.at(-1)?.createdAt ?? 0,
      receipts: receiptsEnabled(store, c.id),
    }
  })
}

/** The last `limit` messages with one contact (a name, ID or unique prefix), oldest first. */
export function conversation(store: Store, contactQuery: string, limit = 200): MessageView[] {
  const contact = findContact(store, contactQuery)
  return store
    .listMessages(contact.id, { limit })
    .filter(shown)
    .map((m) => messageView(m, contact.name))
}
