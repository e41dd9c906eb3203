/**
 * The writer that test/store/crash.test.ts kills with SIGKILL. Usage:
 *   node --import tsx test/store/crash-child.ts <dbPath> <startIndex>
 *
 * Loops forever over steps i = startIndex, startIndex + 1, ... and prints one line per write to
 * stdout only after the store call returned; that line is the acknowledgement the parent checks.
 * The plan per step is fixed, so each message's states only move forward (queued → sent, or
 * queued → delivered), which lets the parent accept a later state from a write still in flight.
 *
 *   m <i>   addMessage(i) as queued
 *   o <i>   putOutbox(i)                                  (even i)
 *   s <j>   setMessageState(j = i - 1, 'sent')            (i % 3 = 0, j not a delivered step)
 *   c <i>   putCustody(i)                                 (i % 4 = 0)
 *   d <i>   transaction { delivered(i); removeOutbox(i) } (i % 5 = 0)
 */
import { realpathSync, writeSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { openSqliteStore } from '../../src/store/sqlite-store.ts'

/** The message ID of step `i`. */
export function crashId(i: number): string {
  return i.toString(16).padStart(32, '0')
}

/** The custody envelope of step `i`. */
export function crashEnvelope(i: number): Uint8Array {
  return new Uint8Array(64 + (i % 7)).fill(i & 255)
}

function ack(line: string): void {
  const buf = Buffer.from(`${line}\n`)
  let off = 0
  while (off < buf.length) {
    try {
      off += writeSync(1, buf, off)
    } catch (err) {
      // A full non-blocking pipe: wait for the parent to read, then retry the rest.
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err
    }
  }
}

function main(): void {
  const [dbPath, start] = process.argv.slice(2)
  if (dbPath === undefined || start === undefined)
    throw new Error('usage: crash-child.ts <dbPath> <startIndex>')
  const store = openSqliteStore({
    path: dbPath,
    custodyQuota: { perOriginBytes: 1 << 30, totalBytes: 1 << 30 },
  })
  for (let i = Number(start); ; i++) {
    const id = crashId(i)
    const now = 1_700_000_000_000 + i
    store.addMessage({
      id,
      conversation: `c${i % 3}`,
      direction: 'out',
      body: new Uint8Array(48).fill(i & 255),
      createdAt: now,
      state: 'queued',
      updatedAt: now,
    })
    ack(`m ${i}`)
    if (i % 2 === 0) {
      store.putOutbox({
        messageId: id,
        envelope: crashEnvelope(i),
        attempts: 0,
        nextAttemptAt: now,
        expiresAt: now + 1,
      })
      ack(`o ${i}`)
    }
    if (i % 3 === 0 && i > Number(start) && (i - 1) % 5 !== 0) {
      store.setMessageState(crashId(i - 1), 'sent', now)
      ack(`s ${i - 1}`)
    }
    if (i % 4 === 0) {
      const entry = { messageId: id, origin: `o${start}`, destination: new Uint8Array([i & 255]) }
      store.putCustody({
        ...entry,
        envelope: crashEnvelope(i),
        copies: 2,
        expiresAt: now + 1,
        receivedAt: now,
      })
      ack(`c ${i}`)
    }
    if (i % 5 === 0) {
      store.transaction(() => {
        store.setMessageState(id, 'delivered', now)
        store.removeOutbox(id)
      })
      ack(`d ${i}`)
    }
  }
}

// Only when run as the entry point: the parent test imports the helpers above.
const entry = process.argv[1]
if (entry !== undefined && realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url))) main()
