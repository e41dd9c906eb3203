/**
 * The control socket: how the CLI (and later the TUI) talks to a running daemon.
 *
 * A Unix domain socket `control.sock` in the data directory, mode 0600 inside a 0700 directory,
 * so only the owner of the data directory can use it. The protocol is newline-delimited JSON:
 *
 * ```
 * → {"id":1,"method":"send","params":{"to":"Grace","text":"hi"}}
 * ← {"id":1,"result":{"id":"…","state":"queued"}}
 * → {"id":2,"method":"follow","params":{"messages":true,"states":true}}
 * ← {"id":2,"event":{"type":"message",…}}          (as many as happen, until the client leaves)
 * ← {"id":3,"error":{"code":"unknown_contact","message":"…"}}
 * ```
 *
 * A line longer than {@link MAX_CONTROL_LINE} bytes closes the connection; an unknown method is
 * an `invalid_argument` error; neither affects other clients. A reply that would be longer is a
 * `too_large` error instead (methods that list things send the newest that fit: `fitNewest`). A
 * client that stops reading while more than {@link MAX_UNREAD_BYTES} wait for it is disconnected,
 * so that a suspended `inbox --follow` cannot make the daemon hold everything that happens.
 *
 * A client may end its side once it has sent its requests (`… | nc -U control.sock`): it still
 * gets every reply, and the daemon ends the connection once none is pending.
 *
 * The client gives each call a deadline ({@link DEFAULT_CALL_TIMEOUT_MS}, or the caller's own),
 * `follow` excepted: a daemon that is stopped (SIGSTOP) or stuck still accepts connections (the
 * kernel queues them), and without one every command would wait for it forever.
 */
import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { TalkenError, type TalkenErrorCode } from '../errors.ts'

/** How long a call waits for its answer unless told otherwise (`follow` waits as long as it runs). */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000
/** How long connecting to the socket may take. */
export const CONNECT_TIMEOUT_MS = 10_000

/** The socket's file name in the data directory. */
export const CONTROL_SOCKET = 'control.sock'
/** Longest request or response line, in bytes. */
export const MAX_CONTROL_LINE = 1024 * 1024
/** Bytes written to a client and not yet read by it, at most, before it is disconnected. */
export const MAX_UNREAD_BYTES = 8 * MAX_CONTROL_LINE

/**
 * The newest items of `items` (oldest first) whose JSON fits in one reply line, leaving `reserve`
 * bytes for the rest of the reply.
 */
export function fitNewest<T>(items: readonly T[], reserve = 1024): T[] {
  let bytes = reserve
  let from = items.length
  while (from > 0) {
    const next = Buffer.byteLength(JSON.stringify(items[from - 1])) + 1
    if (bytes + next > MAX_CONTROL_LINE) break
    bytes += next
    from--
  }
  return items.slice(from)
}

/**
 * Longest Unix socket path, in bytes: `sun_path` holds 108 bytes on Linux and 104 elsewhere,
 * with a NUL. Node does not refuse a longer one: it cuts it and binds somewhere else.
 */
const MAX_SOCKET_PATH = process.platform === 'linux' ? 107 : 103

const fitsSocket = (path: string): boolean => Buffer.byteLength(path) <= MAX_SOCKET_PATH

/** `<home>/control.sock`. Throws `invalid_argument` when the path is too long for a socket. */
export function controlSocketPath(home: string): string {
  const path = join(home, CONTROL_SOCKET)
  if (!fitsSocket(path)) {
    throw new TalkenError(
      'invalid_argument',
      `the data directory's path is too long for its control socket (${Buffer.byteLength(path)} bytes, at most ${MAX_SOCKET_PATH}): choose a shorter one`,
    )
  }
  return path
}

/**
 * Throws `unsafe_directory` when the socket at `path` is not a socket of this user's: another
 * user could have put it there to receive what the CLI sends. (Skipped without user IDs.)
 */
function checkOwnSocket(path: string): void {
  const uid = process.getuid?.()
  if (uid === undefined) return
  const st = lstatSync(path)
  if (!st.isSocket() || st.uid !== uid) {
    throw new TalkenError('unsafe_directory', `${path} is not a control socket of this user's: not using it`)
  }
}

/** A method's implementation: returns the result, or calls `event` repeatedly until `signal` aborts. */
export type ControlMethod = (
  params: Record<string, unknown>,
  ctx: { event(value: unknown): void; signal: AbortSignal },
) => unknown | Promise<unknown>

interface Request {
  readonly id: number
  readonly method: string
  readonly params: Record<string, unknown>
}

/** Splits a socket's bytes into lines; an overlong line is refused whether or not it has ended. */
function lineReader(socket: Socket, onLine: (line: string) => void, onOverflow: () => void): void {
  let buffer = ''
  let overflowed = false
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => {
    if (overflowed) return
    buffer += chunk
    let at = buffer.indexOf('\n')
    while (at !== -1) {
      const line = buffer.slice(0, at)
      buffer = buffer.slice(at + 1)
      if (Buffer.byteLength(line) > MAX_CONTROL_LINE) break
      if (line.length > 0) onLine(line)
      at = buffer.indexOf('\n')
    }
    if (at !== -1 || Buffer.byteLength(buffer) > MAX_CONTROL_LINE) {
      overflowed = true
      buffer = ''
      onOverflow()
    }
  })
}

function parseRequest(line: string): Request {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    throw new TalkenError('malformed', 'a control request is one JSON object per line')
  }
  const r = value as Partial<Request> | null
  if (
    r === null ||
    typeof r !== 'object' ||
    typeof r.id !== 'number' ||
    typeof r.method !== 'string' ||
    (r.params !== undefined && (typeof r.params !== 'object' || r.params === null))
  ) {
    throw new TalkenError('malformed', 'a control request is {"id":n,"method":"…","params":{…}}')
  }
  return { id: r.id, method: r.method, params: (r.params ?? {}) as Record<string, unknown> }
}

function errorJson(err: unknown): { code: TalkenErrorCode; message: string } {
  if (err instanceof TalkenError) return err.toJSON()
  return { code: 'io_failed', message: err instanceof Error ? err.message : String(err) }
}

/** Serves `methods` on the data directory's control socket until closed. */
export class ControlServer {
  readonly #server: Server
  readonly #path: string
  readonly #clients = new Set<Socket>()

  private constructor(server: Server, path: string) {
    this.#server = server
    this.#path = path
  }

  /** Listens on `<home>/control.sock`. Throws `conflict` when another daemon answers there. */
  static async listen(
    home: string,
    methods: Readonly<Record<string, ControlMethod>>,
  ): Promise<ControlServer> {
    const path = controlSocketPath(home)
    if (existsSync(path)) {
      if (await isAnswering(path))
        throw new TalkenError('conflict', `a daemon is already running for ${home}`)
      unlinkSync(path) // left behind by a daemon that died
    }
    const clients = new Set<Socket>()
    // Half-open: a client that ended its side after its requests still gets their replies (by
    // default Node would end ours at once, and the replies would be lost).
    const server = createServer({ allowHalfOpen: true }, (socket) => serve(socket, methods, clients))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      // Create the socket with no permissions for others from the start, then set 0600 exactly.
      const umask = process.umask(0o177)
      try {
        server.listen(path, () => resolve())
      } finally {
        process.umask(umask)
      }
    })
    try {
      chmodSync(path, 0o600)
    } catch (err) {
      server.close()
      throw err
    }
    const control = new ControlServer(server, path)
    for (const c of clients) control.#clients.add(c)
    server.on('connection', (socket) => {
      control.#clients.add(socket)
      socket.on('close', () => control.#clients.delete(socket))
    })
    return control
  }

  async close(): Promise<void> {
    for (const socket of this.#clients) socket.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
    try {
      unlinkSync(this.#path)
    } catch {
      // already gone
    }
  }
}

function serve(socket: Socket, methods: Readonly<Record<string, ControlMethod>>, clients: Set<Socket>): void {
  clients.add(socket)
  const aborts = new Set<AbortController>()
  let clientEnded = false
  // Once the client has ended its side, ours ends when nothing it asked for is pending. A follow
  // keeps it open: the client may be reading still. (A client that has gone entirely looks the
  // same until the next event for it fails to be written, which closes the connection.)
  const endIfDone = (): void => {
    if (clientEnded && aborts.size === 0 && !socket.destroyed && !socket.writableEnded) socket.end()
  }
  const send = (value: unknown): void => {
    if (socket.destroyed || socket.writableEnded) return
    let line = JSON.stringify(value)
    if (Buffer.byteLength(line) > MAX_CONTROL_LINE) {
      const id = (value as { id?: unknown }).id ?? null
      line = JSON.stringify({
        id,
        error: {
          code: 'too_large',
          message: `the reply would be over ${MAX_CONTROL_LINE} bytes: ask for less`,
        },
      })
    }
    if (socket.writableLength > MAX_UNREAD_BYTES) {
      // The client stopped reading (a suspended `inbox --follow`): it is let go, not waited for.
      socket.destroy()
      return
    }
    socket.write(`${line}\n`)
  }
  socket.on('close', () => {
    clients.delete(socket)
    for (const a of aborts) a.abort()
  })
  socket.on('error', () => socket.destroy())
  socket.on('end', () => {
    clientEnded = true
    endIfDone()
  })
  lineReader(
    socket,
    (line) => {
      let request: Request
      try {
        request = parseRequest(line)
      } catch (err) {
        send({ id: null, error: errorJson(err) })
        return
      }
      const method = Object.hasOwn(methods, request.method) ? methods[request.method] : undefined
      if (method === undefined) {
        send({
          id: request.id,
          error: errorJson(new TalkenError('invalid_argument', `no method ${request.method}`)),
        })
        return
      }
      const abort = new AbortController()
      aborts.add(abort)
      Promise.resolve()
        .then(() =>
          method(request.params, { event: (e) => send({ id: request.id, event: e }), signal: abort.signal }),
        )
        .then(
          (result) => send({ id: request.id, result: result ?? null }),
          (err: unknown) => send({ id: request.id, error: errorJson(err) }),
        )
        .finally(() => {
          aborts.delete(abort)
          endIfDone()
        })
    },
    () => {
      send({
        id: null,
        error: { code: 'too_large', message: `control lines are at most ${MAX_CONTROL_LINE} bytes` },
      })
      socket.end()
    },
  )
}

/** True when something accepts connections at `path`. */
function isAnswering(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path)
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** The error of a daemon that does not answer in time. */
function notAnswering(home: string, what: string): TalkenError {
  return new TalkenError(
    'not_running',
    `the daemon for ${home} is not answering (${what}): it may be stopped or stuck`,
    { details: { reason: 'no_answer' } },
  )
}

/** Options of one {@link ControlClient.call}. */
export interface CallOptions {
  /**
   * How long to wait for the answer, in milliseconds; `Infinity` waits as long as it takes.
   * Default {@link DEFAULT_CALL_TIMEOUT_MS}, and `Infinity` for `follow`.
   */
  readonly timeoutMs?: number
}

interface PendingCall {
  resolve(v: unknown): void
  reject(e: Error): void
  onEvent: ((e: unknown) => void) | undefined
}

/** A connection to a daemon's control socket. */
export class ControlClient {
  readonly #socket: Socket
  readonly #home: string
  #next = 1
  readonly #calls = new Map<number, PendingCall>()
  #closed = false

  private constructor(socket: Socket, home: string) {
    this.#socket = socket
    this.#home = home
    lineReader(
      socket,
      (line) => this.#onLine(line),
      () => socket.destroy(new Error('control line too long')),
    )
    socket.on('close', () => {
      this.#closed = true
      this.#rejectAll(new TalkenError('io_failed', 'the daemon closed the control connection'))
    })
    socket.on('error', () => {})
  }

  /**
   * Connects to the daemon of `home`; resolves undefined when no daemon is running. Rejects with
   * `not_running` (`details.reason` `no_answer`) when connecting takes longer than `timeoutMs`.
   */
  static async connect(
    home: string,
    options: { timeoutMs?: number } = {},
  ): Promise<ControlClient | undefined> {
    const path = join(home, CONTROL_SOCKET)
    // A path too long for a socket has no daemon listening on it (one refuses to start there).
    if (!fitsSocket(path) || !existsSync(path)) return undefined
    try {
      checkOwnSocket(path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined // the daemon just left
      throw err
    }
    const timeoutMs = options.timeoutMs ?? CONNECT_TIMEOUT_MS
    return new Promise((resolve, reject) => {
      const socket = connect(path)
      const timer = setTimeout(() => {
        socket.destroy()
        reject(notAnswering(home, `no connection after ${timeoutMs / 1000} s`))
      }, timeoutMs)
      socket.once('connect', () => {
        clearTimeout(timer)
        resolve(new ControlClient(socket, home))
      })
      socket.once('error', () => {
        clearTimeout(timer)
        resolve(undefined)
      })
    })
  }

  /**
   * Calls `method`; `onEvent` receives streamed events until the call ends or the client closes.
   * Rejects with `not_running` (`details.reason` `no_answer`) when no answer comes in time (see
   * {@link CallOptions}); the daemon may still carry the request out later.
   */
  call<T = unknown>(
    method: string,
    params: Record<string, unknown> = {},
    onEvent?: (e: unknown) => void,
    options: CallOptions = {},
  ): Promise<T> {
    if (this.#closed) return Promise.reject(new TalkenError('closed', 'the control connection is closed'))
    const id = this.#next++
    const timeoutMs =
      options.timeoutMs ?? (method === 'follow' ? Number.POSITIVE_INFINITY : DEFAULT_CALL_TIMEOUT_MS)
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const settled = (): void => {
        if (timer !== undefined) clearTimeout(timer)
        this.#calls.delete(id)
      }
      this.#calls.set(id, {
        resolve: (v) => {
          settled()
          resolve(v as T)
        },
        reject: (e) => {
          settled()
          reject(e)
        },
        onEvent,
      })
      // (A timer of more than 2^31 - 1 ms would fire at once: such a wait is no deadline.)
      if (timeoutMs <= 2 ** 31 - 1) {
        timer = setTimeout(() => {
          this.#calls
            .get(id)
            ?.reject(notAnswering(this.#home, `no answer to ${method} after ${timeoutMs / 1000} s`))
        }, timeoutMs)
      }
      this.#socket.write(`${JSON.stringify({ id, method, params })}\n`)
    })
  }

  close(): void {
    this.#socket.destroy()
  }

  #rejectAll(err: Error): void {
    for (const call of [...this.#calls.values()]) call.reject(err)
  }

  #onLine(line: string): void {
    let msg: {
      id?: number | null
      result?: unknown
      error?: { code: TalkenErrorCode; message: string }
      event?: unknown
    }
    try {
      msg = JSON.parse(line)
    } catch {
      return
    }
    if (msg.id === null && msg.error) {
      // An error about no request in particular: this client sends only well-formed requests, so
      // it is a request line too long, after which the daemon ends the connection. It cannot
      // name the call it concerns, so it is the answer to every call still open (rather than
      // "the daemon closed the control connection", which says nothing of why).
      this.#rejectAll(new TalkenError(msg.error.code, msg.error.message))
      return
    }
    const call = typeof msg.id === 'number' ? this.#calls.get(msg.id) : undefined
    if (call === undefined) return
    if ('event' in msg) {
      call.onEvent?.(msg.event)
      return
    }
    if (msg.error) call.reject(new TalkenError(msg.error.code, msg.error.message))
    else call.resolve(msg.result)
  }
}
