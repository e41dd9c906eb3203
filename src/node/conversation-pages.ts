/**
 * Reading a conversation back from its newest messages, a page at a time: what the inbox and the
 * read receipts need, as the store can only list a conversation by time.
 */
import type { MessageRecord, Store } from '../store/store.ts'

/**
 * The messages of `conversation`, newest page first (each page oldest first), `pageSize` to a page
 * (more when needed). `before` is a time, and messages of one millisecond may straddle a page's
 * edge: those are left to the next page, whole, so no message is read twice or skipped; a full
 * page all of one time is read again larger.
 */
export function* pagesBack(store: Store, conversation: string, pageSize: number): Generator<MessageRecord[]> {
  let size = pageSize
  let before: number | undefined
  for (;;) {
    const page = store.listMessages(
      conversation,
      before === undefined ? { limit: size } : { limit: size, before },
    )
    const full = page.length === size
    const oldest = page[0]?.createdAt ?? 0
    const whole = full ? page.filter((m) => m.createdAt > oldest) : page
    if (full && whole.length === 0) {
      size *= 2
      continue
    }
    yield whole
    if (!full) return
    before = oldest + 1
  }
}
