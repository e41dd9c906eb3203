/**
 * Which incoming messages `markRead` marks (src/node/receipts.ts `unreadIncoming`): all of them,
 * however far back, in SQLite on disk and in memory.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { unreadIncoming } from '../../src/node/receipts.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'
import { openSqliteStore } from '../../src/store/sqlite-store.ts'
import type { Store } from '../../src/store/store.ts'

const CHAT = 'tk1chat'

function add(store: Store, n: number, direction: 'in' | 'out', at: number): void {
  store.addMessage({
    id: n.toString(16).padStart(32, '0'),
    conversation: CHAT,
    direction,
    body: new Uint8Array([1]),
    createdAt: at,
    state: direction === 'in' ? 'received' : 'sent',
    updatedAt: at,
  })
}

for (const [kind, open] of [
  ['sqlite', (dir: string) => openSqliteStore({ path: join(dir, 'talken.db') })],
  ['memory', () => createMemoryStore()],
] as const) {
  describe(`unread incoming messages (${kind})`, () => {
    it('finds every one, however many came after, also where a page ends inside one millisecond', (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'talken-unread-'))
      const store = open(dir)
      t.after(() => {
        store.close()
        rmSync(dir, { recursive: true, force: true })
      })
      // One unread message, then 2,500 messages: several share each millisecond.
      add(store, 0, 'in', 1_000)
      for (let i = 1; i <= 2_500; i++) add(store, i, i % 2 === 0 ? 'in' : 'out', 1_000 + Math.floor(i / 3))
      const unread = unreadIncoming(store, CHAT, 100)
      assert.equal(unread.length, 1_251)
      assert.equal(new Set(unread.map((m) => m.id)).size, 1_251)
      assert.equal(unread[0]!.id, '0'.repeat(32), 'oldest first')
      // Once they are read, only what comes next is unread, and not everything is read back.
      for (const m of unread) store.setMessageState(m.id, 'read', 5_000)
      add(store, 3_000, 'in', 6_000)
      assert.deepEqual(
        unreadIncoming(store, CHAT, 100).map((m) => m.id),
        [(3_000).toString(16).padStart(32, '0')],
      )
    })
  })
}
