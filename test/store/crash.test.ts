/**
 * Acceptance: a child process writing acknowledged messages is killed with SIGKILL at random moments,
 * 50 times; after each restart the database opens and every acknowledged write is present.
 *
 * The child (crash-child.ts) prints a line only after a store call returned. The kill lands a seeded
 * random delay after the first acknowledgement, so writes are always in flight. Set
 * TALKEN_CRASH_SEED to replay a run; the seed is printed as a test diagnostic.
 */
import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { openSqliteStore } from '../../src/store/sqlite-store.ts'
import type { Store } from '../../src/store/store.ts'
import { prng } from '../helpers/prng.ts'
import { crashEnvelope, crashId } from './crash-child.ts'

const ROUNDS = 50
/** The kill lands up to this long after the child's first acknowledgement. */
const MAX_KILL_DELAY_MS = 150
/** Each round writes its own range of step indices, so rounds never overlap. */
const ROUND_STRIDE = 1_000_000

const childPath = fileURLToPath(new URL('./crash-child.ts', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'talken-crash-'))
after(() => rmSync(dir, { recursive: true, force: true }))

/** What the child acknowledged for one step index. */
interface Acked {
  round: number
  state: 'queued' | 'sent' | 'delivered'
  outbox: boolean
  custody: boolean
}

const RANK = { queued: 0, sent: 1, delivered: 2 } as const

/** Runs the child from `start`, SIGKILLs it `delayMs` after its first ack, returns the complete ack lines. */
function runAndKill(dbPath: string, start: number, delayMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', childPath, dbPath, String(start)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    let timer: NodeJS.Timeout | undefined
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk
      timer ??= setTimeout(() => child.kill('SIGKILL'), delayMs)
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      err += chunk
    })
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (signal !== 'SIGKILL') reject(new Error(`child exited by itself (code ${code}): ${err}`))
      else resolve(out.split('\n').slice(0, -1)) // the last piece may be a line cut short by the kill
    })
  })
}

function record(acks: Map<number, Acked>, lines: string[], round: number): void {
  for (const line of lines) {
    const [kind, n] = line.split(' ')
    const i = Number(n)
    if (kind === 'm') {
      acks.set(i, { round, state: 'queued', outbox: false, custody: false })
      continue
    }
    const a = acks.get(i)
    assert.ok(a !== undefined, `ack "${line}" before its message`)
    if (kind === 'o') a.outbox = true
    else if (kind === 's') a.state = 'sent'
    else if (kind === 'c') a.custody = true
    else if (kind === 'd') a.state = 'delivered'
    else assert.fail(`unknown ack line "${line}"`)
  }
}

function verify(store: Store, acks: Map<number, Acked>, context: string): void {
  for (const [i, a] of acks) {
    const id = crashId(i)
    const m = store.getMessage(id)
    assert.ok(m !== undefined, `${context}: acknowledged message ${i} is missing`)
    assert.deepEqual(m.body, new Uint8Array(48).fill(i & 255), `${context}: body of ${i}`)
    const state = m.state as keyof typeof RANK
    assert.ok(RANK[state] >= RANK[a.state], `${context}: message ${i} is ${m.state}, acknowledged ${a.state}`)
    const outbox = store.getOutbox(id)
    if (a.outbox && state !== 'delivered') {
      const now = 1_700_000_000_000 + i
      const expected = {
        messageId: id,
        envelope: crashEnvelope(i),
        attempts: 0,
        nextAttemptAt: now,
        expiresAt: now + 1,
      }
      assert.deepEqual(outbox, expected, `${context}: outbox of ${i}`)
    }
    if (a.state === 'delivered') assert.equal(outbox, undefined, `${context}: outbox of delivered ${i}`)
    if (a.custody) {
      const c = store.getCustody(id)
      assert.deepEqual(c?.envelope, crashEnvelope(i), `${context}: custody of ${i}`)
      assert.equal(c?.origin, `o${a.round * ROUND_STRIDE}`, `${context}: custody origin of ${i}`)
    }
  }
}

/** The trigger-kept usage counters must equal what is really held, after any crash. */
function verifyUsage(store: Store, context: string): void {
  const held = new Map<string, { bytes: number; count: number }>()
  let bytes = 0
  for (const e of store.listCustody()) {
    const u = held.get(e.origin) ?? { bytes: 0, count: 0 }
    held.set(e.origin, { bytes: u.bytes + e.envelope.length, count: u.count + 1 })
    bytes += e.envelope.length
  }
  for (const [origin, u] of held)
    assert.deepEqual(store.custodyUsage(origin), u, `${context}: usage of ${origin}`)
  const all = [...held.values()].reduce((n, u) => n + u.count, 0)
  assert.deepEqual(store.custodyUsage(), { bytes, count: all }, `${context}: total usage`)
}

it(`every acknowledged write survives SIGKILL, ${ROUNDS} rounds`, async (t) => {
  const seed = Number(process.env.TALKEN_CRASH_SEED ?? Date.now() % 2 ** 32)
  t.diagnostic(`seed ${seed} (replay with TALKEN_CRASH_SEED=${seed})`)
  const random = prng(seed)
  const dbPath = join(dir, 'crash.db')
  const everything = new Map<number, Acked>()
  let acked = 0
  for (let round = 0; round < ROUNDS; round++) {
    const delay = Math.floor(random() * MAX_KILL_DELAY_MS)
    const lines = await runAndKill(dbPath, round * ROUND_STRIDE, delay)
    const acks = new Map<number, Acked>()
    record(acks, lines, round)
    assert.ok(acks.size > 0, `round ${round}: the child acknowledged nothing`)
    const store = openSqliteStore({ path: dbPath })
    try {
      verify(store, acks, `seed ${seed} round ${round} (kill after ${delay} ms)`)
      verifyUsage(store, `seed ${seed} round ${round}`)
    } finally {
      store.close()
    }
    for (const [i, a] of acks) everything.set(i, a)
    acked += lines.length
  }
  const store = openSqliteStore({ path: dbPath })
  try {
    verify(store, everything, `seed ${seed} final`)
  } finally {
    store.close()
  }
  const db = new Database(dbPath, { readonly: true })
  assert.equal(db.pragma('integrity_check', { simple: true }), 'ok')
  db.close()
  t.diagnostic(`${acked} acknowledged writes over ${ROUNDS} kills, all present`)
})
