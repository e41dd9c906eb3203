/**
 * Run by full-disk.test.ts on a small tmpfs: fills it inside a transaction, so that SQLite rolls
 * the whole transaction back by itself (SQLITE_FULL while spilling pages), while the code in the
 * transaction catches that and writes on. Prints one JSON line: what the transaction threw, and
 * what a fresh connection finds afterwards.
 */
import { join } from 'node:path'
import { openSqliteStore } from '../../src/store/sqlite-store.ts'

const path = join(process.argv[2]!, 'full.db')
const store = openSqliteStore({ path })
let inner: string | undefined
let outer: string | undefined
try {
  store.transaction(() => {
    store.kvSet('t', 'before', new Uint8Array([1]))
    try {
      store.transaction(() => {
        for (let i = 0; i < 32; i++) store.kvSet('t', `big${i}`, new Uint8Array(1024 * 1024))
      })
    } catch (err) {
      inner = (err as { code?: string }).code
    }
    // Going on after a failure, as a step may (a refused delivery, say).
    try {
      store.kvSet('t', 'after', new Uint8Array([2]))
    } catch {
      // refused: the transaction is gone
    }
  })
} catch (err) {
  outer = (err as { code?: string }).code
}
store.close()
const again = openSqliteStore({ path })
const kept = ['before', 'after', 'big0'].filter((k) => again.kvGet('t', k) !== undefined)
again.close()
console.log(JSON.stringify({ inner, outer, kept }))
