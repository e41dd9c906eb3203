/**
 * Store benchmark: Talken's SqliteStore against raw better-sqlite3 prepared statements doing the
 * same work, in the same run, on the same machine.
 *
 * Both sides use the identical schema (the store's own migrations) and pragmas (WAL,
 * synchronous=NORMAL, foreign keys, busy timeout), a fresh file in a temp dir, and the same
 * pre-built records. Measured: (a) N message inserts, each its own implicit transaction, as
 * `addMessage` does; (b) N delivery-state updates, as `setMessageState` does. The difference is
 * the store's own cost: argument checks, error mapping, the duplicate check, Buffer handling.
 * Rounds alternate the order of the two sides; the result is the median of each figure.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { migrate } from '../src/store/sqlite-migrations.ts'
import { openSqliteStore } from '../src/store/sqlite-store.ts'
import type { MessageRecord } from '../src/store/store.ts'

/** Messages inserted (and then updated) per measurement. */
const N = 20_000
/** Untimed warm-up size per side (JIT, page cache, statement caches). */
const WARMUP_N = 2_000
/** Measured rounds per side; fewer if the time budget runs out (at least one). */
const ROUNDS = 5
/** Stop starting new rounds after this long. */
const BUDGET_MS = 60_000

/** Throughput of one side: inserts/s, updates/s, and both together over their total time. */
export interface StoreRates {
  readonly insertPerSec: number
  readonly updatePerSec: number
  readonly opsPerSec: number
}

/** The one-line result of {@link storeBench}. */
export interface StoreBenchResult {
  readonly bench: 'store'
  readonly talken: StoreRates
  readonly baseline: StoreRates
  /** talken.opsPerSec / baseline.opsPerSec; the target is at least 0.7. */
  readonly ratio: number
  readonly n: number
  readonly rounds: number
}

interface Side {
  insert(m: MessageRecord): void
  update(id: string, at: number): void
  close(): void
}

function talkenSide(path: string): Side {
  const store = openSqliteStore({ path })
  return {
    insert: (m) => {
      store.addMessage(m)
    },
    update: (id, at) => store.setMessageState(id, 'sent', at),
    close: () => store.close(),
  }
}

function baselineSide(path: string): Side {
  const db = new Database(path, { timeout: 5000 })
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.pragma('foreign_keys = ON')
  db.pragma('busy_timeout = 5000')
  migrate(db)
  const insert = db.prepare(`INSERT INTO messages
    (id, conversation, direction, body, created_at, state, state_reason, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`)
  const update = db.prepare('UPDATE messages SET state = ?, state_reason = ?, updated_at = ? WHERE id = ?')
  return {
    insert: (m) => {
      insert.run(m.id, m.conversation, m.direction, m.body, m.createdAt, m.state, null, m.updatedAt)
    },
    update: (id, at) => {
      update.run('sent', null, at, id)
    },
    close: () => db.close(),
  }
}

function records(n: number, salt: number): MessageRecord[] {
  const out: MessageRecord[] = []
  for (let i = 0; i < n; i++) {
    const at = 1_700_000_000_000 + i
    const id = (salt * 1e9 + i).toString(16).padStart(32, '0')
    const body = new Uint8Array(96).fill(i & 255)
    out.push({
      id,
      conversation: `c${i % 16}`,
      direction: 'out',
      body,
      createdAt: at,
      state: 'queued',
      updatedAt: at,
    })
  }
  return out
}

/** Times one side on a fresh file: N inserts, then N updates. */
function measure(
  open: (path: string) => Side,
  dir: string,
  messages: MessageRecord[],
  run: number,
): StoreRates {
  const side = open(join(dir, `run-${run}.db`))
  try {
    const t0 = process.hrtime.bigint()
    for (const m of messages) side.insert(m)
    const t1 = process.hrtime.bigint()
    for (const m of messages) side.update(m.id, m.updatedAt + 1)
    const t2 = process.hrtime.bigint()
    const insertS = Number(t1 - t0) / 1e9
    const updateS = Number(t2 - t1) / 1e9
    const n = messages.length
    return { insertPerSec: n / insertS, updatePerSec: n / updateS, opsPerSec: (2 * n) / (insertS + updateS) }
  } finally {
    side.close()
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

function medianRates(rs: StoreRates[]): StoreRates {
  return {
    insertPerSec: Math.round(median(rs.map((r) => r.insertPerSec))),
    updatePerSec: Math.round(median(rs.map((r) => r.updatePerSec))),
    opsPerSec: Math.round(median(rs.map((r) => r.opsPerSec))),
  }
}

/**
 * Runs the store benchmark and prints one JSON line (`json: true`) or a short table.
 *
 * @example
 * // npm run bench -- store --json
 * const result = await storeBench({ json: true })
 */
export async function storeBench(opts: { json: boolean }): Promise<StoreBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'talken-bench-store-'))
  const started = Date.now()
  try {
    let run = 0
    measure(talkenSide, dir, records(WARMUP_N, 1), run++)
    measure(baselineSide, dir, records(WARMUP_N, 2), run++)
    const messages = records(N, 3)
    const talken: StoreRates[] = []
    const baseline: StoreRates[] = []
    for (let round = 0; round < ROUNDS; round++) {
      if (round > 0 && Date.now() - started > BUDGET_MS) break
      // Alternate which side goes first, so neither always runs on a warmer (or more fragmented) disk.
      if (round % 2 === 0) {
        talken.push(measure(talkenSide, dir, messages, run++))
        baseline.push(measure(baselineSide, dir, messages, run++))
      } else {
        baseline.push(measure(baselineSide, dir, messages, run++))
        talken.push(measure(talkenSide, dir, messages, run++))
      }
      await new Promise((resolve) => setImmediate(resolve))
    }
    const t = medianRates(talken)
    const b = medianRates(baseline)
    const ratio = Math.round((t.opsPerSec / b.opsPerSec) * 1000) / 1000
    const result: StoreBenchResult = {
      bench: 'store',
      talken: t,
      baseline: b,
      ratio,
      n: N,
      rounds: talken.length,
    }
    if (opts.json) console.log(JSON.stringify(result))
    else printTable(result)
    return result
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function printTable(r: StoreBenchResult): void {
  const row = (name: string, s: StoreRates) =>
    `${name.padEnd(10)}${String(s.insertPerSec).padStart(14)}${String(s.updatePerSec).padStart(14)}${String(s.opsPerSec).padStart(14)}`
  console.log(`store bench: ${r.n} messages, median of ${r.rounds} rounds (ops/s)`)
  console.log(`${''.padEnd(10)}${'insert'.padStart(14)}${'update'.padStart(14)}${'combined'.padStart(14)}`)
  console.log(row('talken', r.talken))
  console.log(row('baseline', r.baseline))
  console.log(`ratio ${r.ratio} (target >= 0.7)`)
}
