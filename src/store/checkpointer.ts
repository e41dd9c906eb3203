/**
 * WAL checkpoints on a thread of their own (https://sqlite.org/wal.html#checkpointing).
 *
 * In WAL mode every commit appends the pages it changed to the `-wal` file; a checkpoint copies
 * them back into the database file and syncs it. SQLite runs one inside the commit that pushes
 * the WAL past `wal_autocheckpoint` pages, on the thread that committed: for Talken, the event
 * loop. With the default of 1,000 pages that was one commit in about 70 taking 7–13 ms (copying
 * and two fsyncs) while every link, timer and control request waited.
 *
 * Here a worker thread with its own connection runs a PASSIVE checkpoint after every
 * {@link CHECKPOINT_EVERY} commits. PASSIVE never waits for a lock and never blocks the writer,
 * so commits go on while it copies and syncs. It cannot, though, restart the WAL from its
 * beginning while commits keep coming: a restart needs every frame copied when a write begins,
 * and a commit lands while the worker syncs. So the writer keeps an automatic checkpoint of its
 * own at {@link FALLBACK_PAGES}, which runs between two of its commits and so can restart the
 * log; and once the log is past half that bound the worker stands aside for
 * {@link STAND_ASIDE_COMMITS} commits, because the writer's checkpoint is refused while the
 * worker's runs. Under sustained writes the writer's checkpoint finds most pages already copied.
 * If the worker cannot start or fails, the writer goes back to SQLite's default.
 *
 * What it costs: a thread (about 70 ms to start, a few MB of memory) and a WAL file that stays
 * up to about 16 MiB while the store is open (SQLite folds it in and removes it on close), and
 * is emptied once the writer has been idle for {@link IDLE_TRUNCATE_MS}.
 *
 * The worker is started on the first checkpoint it is asked for, so short-lived stores (a CLI
 * command, most tests) never start a thread.
 */
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import type Database from 'better-sqlite3'

/** Commits between two checkpoint requests: about a default checkpoint's worth of pages. */
export const CHECKPOINT_EVERY = 32
/**
 * The writer's own automatic checkpoint, in pages (16 MiB of 4 KiB pages): what bounds the WAL.
 * The log passes it only by what is committed while a worker checkpoint runs.
 */
export const FALLBACK_PAGES = 4_000
/** Commits the worker skips once the log is past half its bound (see the file comment). */
const STAND_ASIDE_COMMITS = 8 * CHECKPOINT_EVERY
/** SQLite's default `wal_autocheckpoint`, used again when the worker is gone. */
const SQLITE_DEFAULT_PAGES = 1_000
/**
 * What a WAL file that grew past its bound (a large transaction) is cut back to after a restart,
 * in bytes. Within the bound it is kept: cutting it at every restart and growing it again cost
 * more than the checkpoints saved.
 */
const WAL_KEEP_BYTES = 2 * FALLBACK_PAGES * 4096

/**
 * The worker, as CommonJS source (run with `eval`, so the same code serves the TypeScript
 * sources and the built package). It answers each request with one PASSIVE checkpoint and the
 * number of frames then in the log (-1 if the checkpoint failed), and `close` by closing its
 * connection and then setting the shared `closed` flag, which the writer waits on.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.module)
const db = new Database(workerData.path, { fileMustExist: true })
db.pragma('synchronous = ' + workerData.synchronous)
parentPort.on('message', (message) => {
  if (message === 'close') {
    try {
      db.close()
    } finally {
      Atomics.store(workerData.closed, 0, 1)
      Atomics.notify(workerData.closed, 0)
      parentPort.close()
    }
    return
  }
  try {
    const { log } = db.pragma(message === 'truncate' ? 'wal_checkpoint(TRUNCATE)' : 'wal_checkpoint(PASSIVE)')[0]
    parentPort.postMessage(log)
  } catch {
    parentPort.postMessage(-1)
  }
})
`

/**
 * How long the writer goes without a commit before the WAL is emptied: a TRUNCATE checkpoint on
 * the worker copies what is left and cuts the file to nothing. A checkpoint that restarts the
 * log leaves the pages of older commits in the file until new ones overwrite them, and those
 * hold overwritten and deleted values (old session states, used keys) that `secure_delete` zeroes
 * in the database file only. While it runs, a commit waits for it (it has little left to copy).
 */
export const IDLE_TRUNCATE_MS = 10_000

/**
 * How long closing waits for the worker to close its connection, in milliseconds: a checkpoint
 * under way finishes first. The writer's close, when it is the last connection, folds the WAL
 * into the database file and removes it; a worker still connected would leave the WAL behind
 * (safe: the next open replays it), and a process about to exit would kill the worker with it.
 */
const CLOSE_WAIT_MS = 2_000

/** Runs the checkpoints of one SQLite database file on a worker thread. */
export class Checkpointer {
  readonly #db: Database.Database
  readonly #path: string
  readonly #synchronous: 'NORMAL' | 'FULL'
  #worker: Worker | undefined
  /** Set to 1 by the worker once its connection is closed. */
  readonly #closed = new Int32Array(new SharedArrayBuffer(4))
  /** Commits to go before the next request. */
  #untilNext = CHECKPOINT_EVERY
  /** A request is with the worker. */
  #busy = false
  /** The worker failed or was closed: the writer checkpoints on its own again. */
  #gone = false
  /** When the writer last committed (ms), and the timer that empties the WAL once it is idle. */
  #lastCommit = 0
  #idleTimer: ReturnType<typeof setTimeout> | undefined
  readonly #idleMs: number

  /** `db` is the writer's connection to the file at `path`, already in WAL mode. */
  constructor(
    db: Database.Database,
    path: string,
    synchronous: 'NORMAL' | 'FULL',
    idleMs: number = IDLE_TRUNCATE_MS,
  ) {
    this.#db = db
    this.#path = path
    this.#synchronous = synchronous
    this.#idleMs = idleMs
    db.pragma(`wal_autocheckpoint = ${FALLBACK_PAGES}`)
    db.pragma(`journal_size_limit = ${WAL_KEEP_BYTES}`)
  }

  /** Counts one commit on the writer's connection; every {@link CHECKPOINT_EVERY}, asks for a checkpoint. */
  committed(): void {
    if (this.#gone) return
    this.#lastCommit = Date.now()
    this.#idleTimer ??= this.#armIdle(this.#idleMs)
    if (--this.#untilNext > 0 || this.#busy) return
    this.#untilNext = CHECKPOINT_EVERY
    this.#ask('checkpoint')
  }

  #ask(request: 'checkpoint' | 'truncate'): void {
    this.#busy = true
    try {
      this.#worker ??= this.#start()
      this.#worker.postMessage(request)
    } catch {
      this.#fallBack()
    }
  }

  /** Empties the WAL once the writer has not committed for {@link IDLE_TRUNCATE_MS}. */
  #armIdle(ms: number): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => {
      this.#idleTimer = undefined
      if (this.#gone) return
      const idleFor = Date.now() - this.#lastCommit
      // Committed since, or a checkpoint is under way: look again when it may be idle.
      if (idleFor < this.#idleMs || this.#busy) {
        this.#idleTimer = this.#armIdle(Math.max(this.#idleMs - idleFor, 100))
        return
      }
      this.#ask('truncate')
    }, ms)
    timer.unref?.() // an idle store keeps no process alive
    return timer
  }

  /**
   * Has the worker close its connection, and waits for that (at most {@link CLOSE_WAIT_MS}), so
   * that the writer's close that follows is the last one. The writer's connection is the caller's.
   */
  close(): void {
    clearTimeout(this.#idleTimer)
    this.#idleTimer = undefined
    if (this.#gone) return
    this.#gone = true
    if (this.#worker === undefined) return
    this.#worker.postMessage('close')
    Atomics.wait(this.#closed, 0, 0, CLOSE_WAIT_MS)
  }

  #start(): Worker {
    const module = createRequire(import.meta.url).resolve('better-sqlite3')
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      execArgv: [], // none of the parent's loaders (tsx, say): the worker is plain CommonJS
      workerData: { module, path: this.#path, synchronous: this.#synchronous, closed: this.#closed },
      stdout: true,
      stderr: true,
    })
    worker.unref() // an idle checkpointer keeps no process alive
    // Done or failed (a full disk, say), the next request comes after the next commits: what a
    // checkpoint did not copy stays safe in the WAL, and the writer's own checkpoint bounds it.
    worker.on('message', (framesInLog: number) => {
      this.#busy = false
      if (framesInLog >= FALLBACK_PAGES / 2) this.#untilNext = STAND_ASIDE_COMMITS
    })
    worker.on('error', () => this.#fallBack())
    worker.on('exit', () => this.#fallBack())
    return worker
  }

  /** The worker is gone: back to SQLite's own checkpoints on the writer's thread. */
  #fallBack(): void {
    const closing = this.#gone
    this.#gone = true
    this.#worker = undefined
    clearTimeout(this.#idleTimer)
    this.#idleTimer = undefined
    if (closing || !this.#db.open) return
    try {
      this.#db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_PAGES}`)
    } catch {
      // the writer's connection is closing; nothing left to checkpoint for
    }
  }
}
