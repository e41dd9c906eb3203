/**
 * The daemon: a node running in the foreground, serving the control socket.
 *
 * It takes the data directory's lock (one daemon per directory), starts the node, listens on
 * `<home>/control.sock`, logs readable lines (or JSON lines), and on SIGINT/SIGTERM stops
 * cleanly: control socket closed, links closed, store closed, lock released.
 */
import { TalkenError } from '../errors.ts'
import type { Logger, LogLevel } from '../mesh/router.ts'
import { addContact, contactDialAddresses, verifyContact } from '../node/contacts.ts'
import { requireIdentity } from '../node/data-dir.ts'
import { contactSummaries, conversation, recentMessages } from '../node/inbox.ts'
import { createNode, type NodeOptions, type TalkenNode } from '../node/node.ts'
import type { NodeRooms } from '../node/rooms.ts'
import { type ControlMethod, ControlServer, controlSocketPath, fitNewest } from './control.ts'
import { listenFailure } from './listen-failure.ts'
import { acquireLockWhenFree } from './lock.ts'

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

/** A logger writing lines at or above `level`: human text to stderr, or JSON lines to stdout. */
export function lineLogger(level: LogLevel, json: boolean, write: (line: string) => void): Logger {
  const min = LEVELS[level]
  return (l, message, fields) => {
    if (LEVELS[l] < min) return
    const at = new Date().toISOString()
    if (json) {
      write(JSON.stringify({ event: 'log', at, level: l, message, ...fields }))
      return
    }
    const extra = Object.entries(fields ?? {})
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ')
    write(`${at} ${l.padEnd(5)} ${message}${extra ? ` ${extra}` : ''}`)
  }
}

/** Options of {@link runDaemon}. */
export interface DaemonOptions extends Omit<NodeOptions, 'home' | 'store' | 'identity'> {
  readonly home: string
  readonly logger: Logger
  /** Called once the node and the control socket are up. */
  readonly onReady?: (node: TalkenNode) => void
}

/** A running daemon. */
export interface Daemon {
  readonly node: TalkenNode
  /** Stops everything; idempotent. */
  stop(): Promise<void>
  /** Resolves when the daemon has stopped. */
  readonly stopped: Promise<void>
}

/** Starts a daemon for `home`. Throws `conflict` when one runs already. */
export async function runDaemon(options: DaemonOptions): Promise<Daemon> {
  requireIdentity(options.home)
  controlSocketPath(options.home) // a path too long for the socket fails before anything starts
  const release = await acquireLockWhenFree(options.home, 'daemon')
  let node: TalkenNode | undefined
  let control: ControlServer | undefined
  try {
    node = await createNode(options)
    // A step that did not commit (a full disk, say) is undone and comes again; a listener that
    // threw is logged. Neither is a reason for the daemon to stop.
    node.on('error', (err) => options.logger('error', 'node error', { error: err.message }))
    await node.start()
    control = await ControlServer.listen(options.home, controlMethods(node, options.logger))
  } catch (err) {
    await node?.stop().catch(() => {})
    release()
    throw listenFailure(err) ?? err
  }
  const running = node
  const server = control
  let stopping: Promise<void> | undefined
  let resolve!: () => void
  const stopped = new Promise<void>((r) => {
    resolve = r
  })
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      options.logger('info', 'daemon stopping')
      try {
        await server.close()
        await running.stop()
      } finally {
        release()
        // Said once the lock is released: a supervisor reading it knows the exit was clean.
        options.logger('info', 'daemon stopped')
        resolve()
      }
    })()
    return stopping
  }
  options.logger('info', 'daemon ready', {
    id: running.id,
    peerId: running.peerId,
    addresses: running.addresses(),
    socket: `${options.home}/control.sock`,
  })
  options.onReady?.(running)
  return { node: running, stop, stopped }
}

/** What the control socket offers; see control.ts for the framing. */
export function controlMethods(node: TalkenNode, log: Logger = () => {}): Record<string, ControlMethod> {
  const followers = followerFanOut(node)
  return {
    status: () => node.status(),
    peers: () => node.peers(),
    routes: () => node.routes(),
    inbox: (params) =>
      fitNewest(
        recentMessages(node.store, {
          ...(typeof params.limit === 'number' ? { limit: pageLimit(params.limit) } : {}),
          all: params.all === true,
        }),
      ),
    send: async (params, ctx) => {
      const to = String(params.to ?? '')
      const text = String(params.text ?? '')
      const handle = node.send(to, text)
      const waitMs = typeof params.waitMs === 'number' ? Math.min(Math.max(params.waitMs, 0), 3600_000) : 0
      if (waitMs > 0 && handle.state !== 'delivered') {
        // First the message as stored, so a client whose connection ends while it waits knows it
        // is in the outbox (and does not send it again).
        ctx.event({ id: handle.id, to: handle.to, state: handle.state })
        const onState = (state: string, reason: string | undefined): void => ctx.event({ state, reason })
        handle.on('state', onState)
        try {
          await handle.delivered(AbortSignal.any([ctx.signal, AbortSignal.timeout(waitMs)])).catch(() => {})
        } finally {
          handle.off('state', onState)
        }
      }
      return { id: handle.id, to: handle.to, state: handle.state, daemon: true }
    },
    rooms: (params) => {
      const result = roomAction(node.rooms, params)
      return params.action === 'history' ? fitNewest(result as unknown[]) : result
    },
    identity: () => ({ id: node.id, name: node.store.getIdentity()?.name ?? '', link: node.link }),
    contacts: () => contactSummaries(node.store),
    conversation: (params) =>
      fitNewest(
        conversation(
          node.store,
          String(params.contact ?? ''),
          typeof params.limit === 'number' ? pageLimit(params.limit) : 200,
        ),
      ),
    addContact: (params) => {
      const { contact, outcome } = addContact(
        node.store,
        node.identity.account.publicKey,
        String(params.link ?? ''),
        {
          name: typeof params.name === 'string' && params.name !== '' ? params.name : undefined,
          now: Date.now(),
        },
      )
      // The node dials its contacts' addresses when it starts; one added while it runs is
      // dialled now (and redialled), or where multicast does not pass it is never reached.
      for (const address of contactDialAddresses([contact])) {
        node.dial(address).catch((err: unknown) => {
          log('debug', 'could not dial a new contact yet', { address, error: (err as Error).message })
        })
      }
      return { outcome, id: contact.id, name: contact.name }
    },
    safetyNumber: (params) => {
      const { contact, safetyNumber } = verifyContact(
        node.store,
        node.identity.account.publicKey,
        String(params.contact ?? ''),
        params.confirm === true,
      )
      return { id: contact.id, name: contact.name, safetyNumber, verified: contact.verified }
    },
    markRead: (params) => ({ read: node.markRead(String(params.contact ?? '')) }),
    receipts: (params) => {
      node.setReadReceipts(String(params.contact ?? ''), params.on !== false)
      return { on: params.on !== false }
    },
    follow: (_params, ctx) =>
      new Promise<null>((resolve) => {
        if (ctx.signal.aborted) {
          resolve(null)
          return
        }
        const follower: Follower = {
          event: ctx.event,
          done: () => {
            followers.remove(follower)
            ctx.signal.removeEventListener('abort', follower.done)
            resolve(null)
          },
        }
        ctx.signal.addEventListener('abort', follower.done)
        followers.add(follower)
      }),
  }
}

interface Follower {
  event(value: unknown): void
  /** The follow ends: the client left, or the node stopped. */
  done(): void
}

/**
 * The followers of one node, behind one listener per node event: a listener each would pass
 * Node's default of 10 per event with the eleventh follower and print a MaxListenersExceeded
 * warning, though nothing leaks. The listeners are there only while someone follows.
 */
function followerFanOut(node: TalkenNode): { add(f: Follower): void; remove(f: Follower): void } {
  const followers = new Set<Follower>()
  const each =
    (type: string) =>
    (value: unknown): void => {
      for (const f of [...followers]) f.event({ type, ...(value as object) })
    }
  const onMessage = each('message')
  const onState = each('state')
  const onEntry = each('room')
  const onStopped = (): void => {
    for (const f of [...followers]) f.done()
  }
  return {
    add(f) {
      if (followers.size === 0) {
        node.on('message', onMessage)
        node.on('state', onState)
        node.on('room:entry', onEntry)
        node.on('stopped', onStopped)
      }
      followers.add(f)
    },
    remove(f) {
      if (!followers.delete(f) || followers.size > 0) return
      node.off('message', onMessage)
      node.off('state', onState)
      node.off('room:entry', onEntry)
      node.off('stopped', onStopped)
    },
  }
}

/** Runs one `talken rooms` action on a node's rooms (the daemon's `rooms` method, and the CLI without a daemon). */
export function roomAction(rooms: NodeRooms, params: Readonly<Record<string, unknown>>): unknown {
  const str = (k: string) => String(params[k] ?? '')
  switch (params.action) {
    case 'list':
      return rooms.list()
    case 'create':
      return rooms.create(str('name'))
    case 'invite':
      return rooms.invite(str('room'))
    case 'join':
      return rooms.join(str('link'))
    case 'post':
      return rooms.post(str('room'), str('text'))
    case 'history':
      return rooms.history(str('room'))
    case 'members':
      return rooms.members(str('room'))
    case 'leave':
      return rooms.leave(str('room'))
    case 'remove':
      return rooms.remove(str('room'), str('member'))
    case 'sync':
      return { asked: rooms.sync(str('room')) }
    default:
      throw new TalkenError('invalid_argument', `unknown rooms action "${String(params.action)}"`)
  }
}

/**
 * Messages one inbox or conversation call reads at most, per contact: a client's `limit` is the
 * page size of a query for every contact, and the answer is cut to fit a control frame anyway.
 */
const MAX_PAGE = 10_000

/** A client's `limit`, within 1…{@link MAX_PAGE}. */
function pageLimit(limit: number): number {
  return Number.isSafeInteger(limit) ? Math.min(Math.max(limit, 1), MAX_PAGE) : 200
}
