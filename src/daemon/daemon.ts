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
import { resentAs } from '../node/direct-messages.ts'
import {
  contactSummaries,
  conversation,
  type MessageView,
  messageView,
  recentMessages,
} from '../node/inbox.ts'
import {
  createNode,
  type MessageStateEvent,
  type NodeOptions,
  type SendHandle,
  type TalkenNode,
} from '../node/node.ts'
import type { NodeRooms } from '../node/rooms.ts'
import type { DeliveryState } from '../store/store.ts'
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
      // Every follower (another terminal's client, say) hears of the new message, before its states.
      const handle = followers.sending(() => node.send(to, text))
      const waitMs = typeof params.waitMs === 'number' ? Math.min(Math.max(params.waitMs, 0), 3600_000) : 0
      if (waitMs === 0 || handle.state === 'delivered' || handle.state === 'read') {
        return { id: handle.id, to: handle.to, state: handle.state, daemon: true }
      }
      // First the message as stored, so a client whose connection ends while it waits knows it
      // is in the outbox (and does not send it again).
      ctx.event({ id: handle.id, to: handle.to, state: handle.state })
      const end = await followSend(
        node,
        handle,
        AbortSignal.any([ctx.signal, AbortSignal.timeout(waitMs)]),
        ctx.event,
      )
      return {
        id: end.id,
        to: handle.to,
        state: end.state,
        daemon: true,
        ...(end.reason === undefined ? {} : { reason: end.reason }),
        ...(end.id === handle.id ? {} : { replaces: handle.id }),
      }
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

/** States after which a wait on a sent message is over (`read` may follow `delivered`, but is not waited for). */
const SEND_ENDS: ReadonlySet<DeliveryState> = new Set(['delivered', 'read', 'expired', 'failed'])

/** The copy that replaced a message given up because it was sent again, if it was. */
const sentAgainAs = (end: SendEnd): string | undefined =>
  end.state === 'failed' ? resentAs(end.reason) : undefined

/** Where the wait on a sent message ended: the message that now carries its text, and its state. */
interface SendEnd {
  readonly id: string
  readonly state: DeliveryState
  readonly reason?: string | undefined
}

/**
 * Follows a sent message until it is delivered (or read), ends (expired, failed), `signal`
 * aborts or the node stops, passing each state to `event` as `{state, reason}`. A copy the node
 * gave up because it sent the message again (its recipient could not open it: the reason names
 * the new copy, `resentAs`) is no end: the wait goes on with the new copy, announced first as
 * `{id, to, state, reason, replaces}`.
 */
function followSend(
  node: TalkenNode,
  handle: SendHandle,
  signal: AbortSignal,
  event: (value: unknown) => void,
): Promise<SendEnd> {
  return new Promise((resolve) => {
    let now: SendEnd = { id: handle.id, state: handle.state }
    const finish = (): void => {
      handle.off('state', onHandle)
      handle.off('closed', finish)
      node.off('state', onNode)
      node.off('stopped', finish)
      signal.removeEventListener('abort', finish)
      resolve(now)
    }
    // Sent again (the new copy is followed, as far as it has come), and then at an end or not.
    const settle = (): void => {
      for (let again = sentAgainAs(now); again !== undefined; again = sentAgainAs(now)) {
        const replaces = now.id
        const stored = node.store.getMessage(again)
        now = { id: again, state: stored?.state ?? 'queued', reason: stored?.stateReason }
        event({ id: again, to: handle.to, state: now.state, reason: now.reason, replaces })
      }
      if (SEND_ENDS.has(now.state)) finish()
    }
    const changed = (id: string, state: DeliveryState, reason: string | undefined): void => {
      now = { id, state, reason }
      event({ state, reason })
      settle()
    }
    // The first copy's states through its handle (which hears those of the send itself too), a
    // copy sent again through the node's events.
    const onHandle = (state: DeliveryState, reason: string | undefined): void => {
      if (now.id === handle.id) changed(handle.id, state, reason)
    }
    const onNode = (e: MessageStateEvent): void => {
      if (e.id === now.id && e.id !== handle.id) changed(e.id, e.state, e.reason)
    }
    if (signal.aborted) {
      resolve(now)
      return
    }
    handle.on('state', onHandle)
    handle.on('closed', finish)
    node.on('state', onNode)
    node.on('stopped', finish)
    signal.addEventListener('abort', finish)
    settle()
  })
}

interface Follower {
  event(value: unknown): void
  /** The follow ends: the client left, or the node stopped. */
  done(): void
}

/**
 * A message of ours as followers hear of it when a client sends it: `{type: "outgoing", …}` and
 * the message as `inbox` and `conversation` list it (direction `out`, `at` its creation time).
 * Its `state` is its first: the state events that follow it say the rest. A type of its own: a
 * client that knows only `message` (incoming, with `from`) does not take it for one it received.
 */
export type OutgoingEvent = { readonly type: 'outgoing' } & MessageView

/** An event as followers hear it: `{type, …}`. */
type FollowEvent = { readonly type: string } & Readonly<Record<string, unknown>>

/**
 * The event announcing a message just sent, undefined if it is not stored (any more). `during`:
 * the events its send raised, which follow it; its state is the first of them, if any.
 */
function outgoingEvent(
  node: TalkenNode,
  handle: SendHandle,
  during: readonly FollowEvent[],
): OutgoingEvent | undefined {
  const stored = node.store.getMessage(handle.id)
  if (stored === undefined) return undefined
  const first = during.find((e) => e.type === 'state' && e.id === handle.id)
  return {
    type: 'outgoing',
    ...messageView(stored, node.store.getContact(handle.to)?.name),
    ...(first === undefined ? {} : { state: first.state as DeliveryState }),
  }
}

/** The followers of one node: see {@link followerFanOut}. */
interface FollowerFanOut {
  add(f: Follower): void
  remove(f: Follower): void
  /**
   * Runs a client's send and tells every follower of the message it made (`outgoing`) before the
   * events the send raised itself (its first states): a follower hears of a message before its
   * states. Copies the node sends again on its own are not announced so: the old copy's `failed`
   * state names the new one (`resentAs`), which takes its place.
   */
  sending(send: () => SendHandle): SendHandle
}

/**
 * The followers of one node, behind one listener per node event: a listener each would pass
 * Node's default of 10 per event with the eleventh follower and print a MaxListenersExceeded
 * warning, though nothing leaks. The listeners are there only while someone follows.
 */
function followerFanOut(node: TalkenNode): FollowerFanOut {
  const followers = new Set<Follower>()
  /** Events raised while a send runs, told once it has been announced (see `sending`). */
  let held: FollowEvent[] | undefined
  const tell = (event: object): void => {
    for (const f of [...followers]) f.event(event)
  }
  const each =
    (type: string) =>
    (value: unknown): void => {
      const event: FollowEvent = { type, ...(value as object) }
      if (held !== undefined) held.push(event)
      else tell(event)
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
    sending(send) {
      // `send` is synchronous: nothing else runs while its events are held.
      if (followers.size === 0 || held !== undefined) return send()
      const during: FollowEvent[] = []
      held = during
      let handle: SendHandle | undefined
      try {
        handle = send()
      } finally {
        held = undefined
        const announced = handle === undefined ? undefined : outgoingEvent(node, handle, during)
        if (announced !== undefined) tell(announced)
        for (const event of during) tell(event)
      }
      return handle
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
