/**
 * Reading conversations back: the most recent messages across all contacts, for `talken inbox`.
 */
import type { MessageRecord, Store } from '../store/store.ts'
import { findContact } from './contacts.ts'
import { pagesBack } from './conversation-pages.ts'
import { resentAs } from './direct-messages.ts'
import { receiptsEnabled, unreadIncoming } from './receipts.ts'

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
  const keep = (m: MessageRecord): boolean => (options.all === true || m.direction === 'in') && shown(m)
  const out: MessageView[] = []
  for (const contact of store.listContacts()) {
    for (const m of newestMatching(store, contact.id, limit, keep)) out.push(messageView(m, contact.name))
  }
  out.sort((a, b) => a.at - b.at || a.id.localeCompare(b.id))
  return out.slice(-limit)
}

/**
 * The newest `limit` messages of a conversation that `keep` accepts, newest first. The store has
 * no query by direction, and the newest few messages may all be ours (a reply to one message
 * can be a long run of them): it reads back until it has `limit` or the conversation's start.
 */
function newestMatching(
  store: Store,
  conversation: string,
  limit: number,
  keep: (m: MessageRecord) => boolean,
): MessageRecord[] {
  const found: MessageRecord[] = []
  if (limit <= 0) return found
  for (const page of pagesBack(store, conversation, Math.max(limit * 4, 100))) {
    for (let i = page.length - 1; i >= 0; i--) {
      const m = page[i] as MessageRecord
      if (keep(m)) found.push(m)
      if (found.length === limit) return found
    }
  }
  return found
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
    return {
      id: c.id,
      name: c.name,
      verified: c.verified,
      // All of them, not only those among the newest few hundred messages.
      unread: unreadIncoming(store, c.id, 500).length,
      lastAt: store.listMessages(c.id, { limit: 1 }).at(-1)?.createdAt ?? 0,
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
