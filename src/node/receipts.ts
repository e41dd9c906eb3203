/**
 * Read receipts: which incoming messages the user has read, telling their senders (on by
 * default for contacts the user added, off for people who wrote first and were added by their
 * message, switchable per contact), and applying the receipts contacts send us.
 *
 * Store (kv): `receipts/off` contact ID → empty, for contacts who get no read receipts. Receipts
 * travel as direct messages of kind 2 (src/messaging/direct-message.ts) and are filed under the
 * hidden conversation {@link RECEIPTS_CONVERSATION}.
 */
import type { MessageRecord, Store } from '../store/store.ts'
import { pagesBack } from './conversation-pages.ts'

/** Where receipts (sent and received) are filed: never shown as a conversation. */
export const RECEIPTS_CONVERSATION = '.receipts'
const OFF_NS = 'receipts/off'

/** Whether `contactId` gets read receipts from us. */
export function receiptsEnabled(store: Store, contactId: string): boolean {
  return store.kvGet(OFF_NS, contactId) === undefined
}

/** Turns read receipts to `contactId` on or off. */
export function setReceiptsEnabled(store: Store, contactId: string, on: boolean): void {
  if (on) store.kvDelete(OFF_NS, contactId)
  else store.kvSet(OFF_NS, contactId, new Uint8Array(0))
}

/**
 * Incoming messages of a conversation not marked read yet, oldest first. Reads back a page at a
 * time, newest first, until a page holds no unread message and a read one: everything before it was
 * marked read by then (marking reads them all), so a long conversation is not read in full each time.
 */
export function unreadIncoming(store: Store, conversation: string, pageSize = 1000): MessageRecord[] {
  const unread: MessageRecord[][] = []
  for (const page of pagesBack(store, conversation, pageSize)) {
    const incoming = page.filter((m) => m.direction === 'in')
    const fresh = incoming.filter((m) => m.state === 'received')
    unread.unshift(fresh)
    if (fresh.length === 0 && incoming.length > 0) break
  }
  return unread.flat()
}

/**
 * Applies a receipt from `contactId`: our messages to that contact among `ids` that are on their
 * way or delivered become read. Returns those whose state changed, with their state before.
 */
export function applyReceipt(
  store: Store,
  contactId: string,
  ids: readonly string[],
  now: number,
): Array<{ id: string; before: MessageRecord['state'] }> {
  const changed: Array<{ id: string; before: MessageRecord['state'] }> = []
  for (const id of ids) {
    const m = store.getMessage(id)
    if (m === undefined || m.direction !== 'out' || m.conversation !== contactId) continue
    if (m.state !== 'sent' && m.state !== 'relayed' && m.state !== 'delivered') continue
    store.setMessageState(id, 'read', now)
    changed.push({ id, before: m.state })
  }
  return changed
}
