/**
 * Reading conversations back: the most recent messages across all contacts, for `talken inbox`.
 */
import type { MessageRecord, Store } from '../store/store.ts'

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
      if (options.all || m.direction === 'in') out.push(messageView(m, contact.name))
    }
  }
  out.sort((a, b) => a.at - b.at || a.id.localeCompare(b.id))
  return out.slice(-limit)
}
