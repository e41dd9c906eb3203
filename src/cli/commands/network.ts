/**
 * `talken daemon`, `send`, `inbox`, `peers`, `routes`, `status`: the node and its control socket.
 *
 * Commands other than `daemon` talk to the running daemon of the data directory over its control
 * socket. With no daemon, `send` writes the message to the outbox itself (it goes out when the
 * node next runs), `inbox` and `status` read the store, and `peers`/`routes` say that nothing is
 * running.
 */
import type { Command } from 'commander'
import { ControlClient, DEFAULT_CALL_TIMEOUT_MS } from '../../daemon/control.ts'
import { lineLogger, runDaemon } from '../../daemon/daemon.ts'
import { acquireLockWhenFree, lockHolder } from '../../daemon/lock.ts'
import { isTalkenError, TalkenError } from '../../errors.ts'
import { toTextId } from '../../identity/text-id.ts'
import type { LogLevel } from '../../mesh/router.ts'
import { openHome, requireIdentity } from '../../node/data-dir.ts'
import { resentAs } from '../../node/direct-messages.ts'
import { type MessageView, recentMessages } from '../../node/inbox.ts'
import { createNode, type NodeStatus, type PeerInfo, type RouteInfo } from '../../node/node.ts'
import { checkBootstrapOption, checkListenOption } from '../address-options.ts'
import type { CommandContext } from '../context.ts'
import { messageLine } from '../message-lines.ts'
import { emit, isoTime } from '../output.ts'
import { unlockPassphrase } from '../passphrase.ts'
import { usageError } from '../usage-error.ts'

const collect = (value: string, previous: string[] = []): string[] => [...previous, value]

/** Connects to the daemon, waiting a moment if one is starting (its lock is taken, its socket not yet up). */
export async function daemonClient(home: string): Promise<ControlClient | undefined> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const client = await ControlClient.connect(home)
    if (client !== undefined) return client
    if (lockHolder(home)?.role !== 'daemon') return undefined
    await new Promise((r) => setTimeout(r, 100))
  }
  return undefined
}

async function withDaemon<T>(home: string, fn: (client: ControlClient) => Promise<T>): Promise<T> {
  const client = await daemonClient(home)
  if (client === undefined) {
    throw new TalkenError('not_running', `no daemon is running for ${home}: start one with \`talken daemon\``)
  }
  try {
    return await fn(client)
  } finally {
    client.close()
  }
}

function messageJson(m: MessageView) {
  return { ...m, at: isoTime(m.at) }
}

/** What the daemon's `send` answers (docs/protocol.md §Control socket). */
interface SendResult {
  readonly id: string
  readonly to: string
  readonly state: string
  readonly daemon: boolean
  /** Why it ended so, when it failed or expired. */
  readonly reason?: string
  /** The ID `send` gave first, when the node sent the message again under {@link id}. */
  readonly replaces?: string
}

/**
 * One event of a `send` with a wait as a line of text, or undefined for none: the first (the
 * message stored) says nothing, nor do `delivered` and `read` (the last line says them); a copy
 * given up because it was sent again says why (naming the new copy), and the new copy's states
 * follow as the first one's would.
 */
export function sendEventLine(e: {
  readonly id?: string
  readonly state: string
  readonly reason?: string
  readonly replaces?: string
}): string | undefined {
  if (e.id !== undefined && e.replaces === undefined) return undefined
  if (e.state === 'delivered' || e.state === 'read') return undefined
  if (e.state === 'failed' && resentAs(e.reason) !== undefined) return `given up: ${e.reason}`
  return e.reason ? `${e.state}: ${e.reason}` : e.state
}

/**
 * The last line of a `send` with a wait: delivered or read; or still on its way when the wait
 * ended (it goes on trying). A message that expired or failed (and was not sent again) is a
 * failure: `io_failed`, with its reason.
 */
export function sendResultLine(result: SendResult): string {
  switch (result.state) {
    case 'delivered':
      return `delivered  ${result.id}`
    case 'read':
      return `read  ${result.id} (delivered and read)`
    case 'expired':
    case 'failed':
      throw new TalkenError(
        'io_failed',
        `message ${result.id} ${result.state}${result.reason ? `: ${result.reason}` : ''}`,
        { details: { id: result.id, state: result.state, reason: result.reason } },
      )
    default:
      return `${result.state}  ${result.id}\nIt goes on trying; \`talken inbox --all\` shows its state.`
  }
}

/** Registers the node commands. */
export function registerNetworkCommands(program: Command, context: () => CommandContext): void {
  program
    .command('daemon')
    .description('run the node in the foreground: discover peers, relay, deliver (Ctrl-C stops it)')
    .option('--listen <multiaddr>', 'address to listen on, repeatable (default /ip4/0.0.0.0/tcp/0)', collect)
    .option('--bootstrap <multiaddr>', 'peer address to keep connected, repeatable', collect)
    .option('--no-mdns', 'do not discover peers on the local network')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .option(
      '--passphrase-file <file>',
      'read the key file passphrase from a file (else $TALKEN_PASSPHRASE, or asked)',
    )
    .action((opts: DaemonCommandOptions) => runDaemonCommand(context(), opts))

  program
    .command('send')
    .description('send a message to a contact (it waits in the outbox until a path appears)')
    .argument('<contact>', 'name, ID or unique prefix of a contact')
    .argument('<text...>', 'the message (after `--` when it starts with "-")')
    .option('--wait <seconds>', 'follow the delivery state this long (0: return at once)', '5')
    .option(
      '--passphrase-file <file>',
      'with no daemon running: read the key file passphrase from a file (else $TALKEN_PASSPHRASE, or asked)',
    )
    .addHelpText(
      'after',
      [
        '',
        'Text that starts with "-" goes after `--`, which ends the options (give them before it):',
        '  talken send Bob -- -5 degrees outside',
        '  talken send Bob --wait 0 -- "-5 degrees outside"',
      ].join('\n'),
    )
    .action(async (contact: string, words: string[], opts: { wait: string; passphraseFile?: string }) => {
      const ctx = context()
      const wait = Number(opts.wait)
      if (opts.wait.trim() === '' || !Number.isFinite(wait) || wait < 0)
        throw usageError(`--wait is seconds, ≥ 0, not "${opts.wait}"`)
      const text = words.join(' ')
      const client = await daemonClient(ctx.home)
      if (client === undefined) {
        const result = await sendOffline(ctx, contact, text, opts.passphraseFile)
        emit(ctx.output, result, () =>
          [
            `queued  ${result.id}`,
            'No daemon is running: the message is in the outbox and goes out when the node next runs (`talken daemon`).',
          ].join('\n'),
        )
        return
      }
      try {
        let stored: SendResult | undefined
        const waitMs = Math.round(wait * 1000)
        const result = await client
          .call<SendResult>(
            'send',
            { to: contact, text, waitMs },
            (event) => {
              const e = event as {
                id?: string
                to?: string
                state: string
                reason?: string
                replaces?: string
              }
              // The message as stored, or the copy the node sent again: the one to name if the
              // daemon goes away.
              if (e.id !== undefined) stored = { id: e.id, to: String(e.to), state: e.state, daemon: true }
              else if (stored !== undefined) stored = { ...stored, state: e.state }
              // Each state as it comes; `delivered` is said by the last line, with the ID.
              const line = ctx.output.json ? undefined : sendEventLine(e)
              if (line !== undefined) ctx.output.out(line)
            },
            // The daemon answers once the wait is over: give it that, and the usual deadline on top.
            { timeoutMs: waitMs + DEFAULT_CALL_TIMEOUT_MS },
          )
          .catch((err: unknown) => {
            // The daemon stopped (or stopped answering) while we waited: the message is stored
            // all the same.
            if (stored !== undefined) return { ...stored, interrupted: true }
            if (isTalkenError(err) && err.details?.reason === 'no_answer') {
              // The request was written: a stuck daemon may yet carry it out, or has already.
              throw new TalkenError(
                'not_running',
                `${err.message}. The message may have been stored all the same: check with \`talken inbox --all\` before sending it again`,
                { cause: err, details: err.details },
              )
            }
            throw err
          })
        if ('interrupted' in result) {
          emit(ctx.output, result, () =>
            [
              `${result.state}  ${result.id}`,
              'The daemon stopped (or stopped answering) while waiting: the message is in the outbox and goes out when the node next runs.',
            ].join('\n'),
          )
          return
        }
        // An end other than delivered or read fails the command (exit 1), under --json too.
        const last = sendResultLine(result)
        emit(ctx.output, result, () => last)
      } finally {
        client.close()
      }
    })

  program
    .command('inbox')
    .description('show recent messages (with --follow, keep showing new ones)')
    .option('--follow', 'keep running and print messages as they arrive (needs the daemon)')
    .option(
      '--all',
      'include the messages you sent, with their delivery state (with --follow: as they are sent, from any client)',
    )
    .option('--limit <n>', 'how many recent messages', '20')
    .action(async (opts: { follow?: boolean; all?: boolean; limit: string }) => {
      const ctx = context()
      const limit = Number(opts.limit)
      if (!Number.isSafeInteger(limit) || limit < 1)
        throw usageError(`--limit is a whole number ≥ 1, not "${opts.limit}"`)
      const params = { limit, all: Boolean(opts.all) }
      if (opts.follow) {
        await withDaemon(ctx.home, async (client) => {
          const print = (m: MessageView): void =>
            ctx.output.out(ctx.output.json ? JSON.stringify(messageJson(m)) : messageLine(m))
          // Follow first, then read the snapshot: what arrives in between is in one or both, and
          // is printed once. Events wait until the snapshot is out.
          let shown: Set<string> | undefined
          const early: Array<() => void> = []
          const onEvent = (event: unknown): void => {
            const e = event as { type: string } & Record<string, unknown>
            const show = (): void => {
              if (e.type === 'message') {
                if (shown?.has(String(e.id))) return
                print({
                  id: String(e.id),
                  conversation: String(e.from),
                  contact: String(e.fromName),
                  direction: 'in',
                  text: String(e.text),
                  at: Number(e.receivedAt),
                  state: 'received',
                })
              } else if (opts.all && e.type === 'outgoing') {
                // Ours, sent from this client or another, as `inbox --all` lists it. Copies the
                // node sends again are not announced: the first one stands for them.
                if (shown?.has(String(e.id))) return
                print({
                  id: String(e.id),
                  conversation: String(e.conversation),
                  contact: typeof e.contact === 'string' ? e.contact : undefined,
                  direction: 'out',
                  text: String(e.text),
                  at: Number(e.at),
                  state: e.state as MessageView['state'],
                })
              } else if (opts.all && e.type === 'state') {
                ctx.output.out(
                  ctx.output.json ? JSON.stringify(e) : `${String(e.id).slice(0, 8)}… ${String(e.state)}`,
                )
              }
            }
            if (shown === undefined) early.push(show)
            else show()
          }
          let stopping = false
          const stop = (): void => {
            stopping = true
            client.close()
          }
          process.once('SIGINT', stop)
          process.once('SIGTERM', stop)
          const following = client.call('follow', {}, onEvent)
          following.catch(() => {}) // awaited below
          const snapshot = await client.call<MessageView[]>('inbox', params)
          for (const m of snapshot) print(m)
          shown = new Set(snapshot.map((m) => m.id))
          for (const show of early.splice(0)) show()
          try {
            await following
          } catch (err) {
            if (stopping) return
            // The daemon stopped (or let us go): say so, rather than end as if all were well.
            throw new TalkenError('not_running', 'the daemon stopped: no more messages will be shown', {
              cause: err,
            })
          }
        })
        return
      }
      const client = await daemonClient(ctx.home)
      let messages: MessageView[]
      if (client !== undefined) {
        try {
          messages = await client.call<MessageView[]>('inbox', params)
        } finally {
          client.close()
        }
      } else {
        const home = openHome({ home: ctx.home })
        try {
          messages = recentMessages(home.store, params)
        } finally {
          home.close()
        }
      }
      emit(ctx.output, { messages: messages.map(messageJson) }, () =>
        messages.length === 0 ? 'No messages yet.' : messages.map(messageLine).join('\n'),
      )
    })

  program
    .command('peers')
    .description('devices connected to this node, and which of them are mesh links')
    .action(async () => {
      const ctx = context()
      const peers = await withDaemon(ctx.home, (c) => c.call<PeerInfo[]>('peers'))
      emit(ctx.output, { peers }, () =>
        peers.length === 0
          ? 'No peers yet.'
          : peers
              .map(
                (p) =>
                  `${p.peerId}  ${p.mesh ? 'mesh' : '    '}  ${p.contact ?? ''}  ${p.addresses.join(' ')}`,
              )
              .join('\n'),
      )
    })

  program
    .command('routes')
    .description('destinations the mesh knows a path to')
    .action(async () => {
      const ctx = context()
      const routes = await withDaemon(ctx.home, (c) => c.call<RouteInfo[]>('routes'))
      emit(ctx.output, { routes }, () =>
        routes.length === 0
          ? 'No routes yet.'
          : routes
              .map(
                (r) =>
                  `${r.contact ?? r.destination}  via ${r.nextHop}  (${r.metric} hop${r.metric === 1 ? '' : 's'})`,
              )
              .join('\n'),
      )
    })

  program
    .command('status')
    .description('whether the daemon runs, and what it holds')
    .action(async () => {
      const ctx = context()
      const client = await daemonClient(ctx.home)
      if (client === undefined) {
        const home = openHome({ home: ctx.home })
        try {
          // The identity as a running daemon's status gives it: a script reads `id` either way.
          const status = {
            running: false,
            id: toTextId(home.profile.accountKey),
            name: home.profile.name,
            outbox: home.store.outboxSize(),
            custody: home.store.custodyUsage(),
          }
          emit(
            ctx.output,
            status,
            () =>
              `Not running (${status.name}, ${status.id}). ${status.outbox} message(s) wait in the outbox; start the node with \`talken daemon\`.`,
          )
        } finally {
          home.close()
        }
        return
      }
      let status: NodeStatus
      try {
        status = await client.call<NodeStatus>('status')
      } finally {
        client.close()
      }
      emit(ctx.output, status, () =>
        [
          `Running as ${status.name} (${status.id})`,
          `Peer ID   ${status.peerId}`,
          `Addresses ${status.addresses.join(' ') || '-'}`,
          `Peers ${status.peers}, routes ${status.routes}, outbox ${status.outbox}, custody ${status.custody.count} (${status.custody.bytes} bytes)`,
        ].join('\n'),
      )
    })
}

/** Options of `talken daemon` (and `talken start`). */
export interface DaemonCommandOptions {
  readonly listen?: string[]
  readonly bootstrap?: string[]
  readonly mdns: boolean
  readonly logLevel: string
  readonly passphraseFile?: string
}

/** Runs the daemon in the foreground until SIGINT or SIGTERM. */
export async function runDaemonCommand(ctx: CommandContext, opts: DaemonCommandOptions): Promise<void> {
  if (!['debug', 'info', 'warn', 'error'].includes(opts.logLevel)) {
    throw usageError(`--log-level is debug, info, warn or error, not ${opts.logLevel}`)
  }
  checkListenOption(opts.listen ?? [])
  checkBootstrapOption(opts.bootstrap ?? [])
  const json = ctx.output.json
  const logger = lineLogger(opts.logLevel as LogLevel, json, json ? ctx.output.out : ctx.output.err)
  // The identity and the directory are checked first: nothing in an unsafe directory is read.
  requireIdentity(ctx.home)
  const passphrase = await unlockPassphrase(ctx.home, opts.passphraseFile)
  const daemon = await runDaemon({
    home: ctx.home,
    logger,
    mdns: opts.mdns,
    ...(opts.listen ? { listen: opts.listen } : {}),
    ...(opts.bootstrap ? { bootstrap: opts.bootstrap } : {}),
    ...(passphrase ? { passphrase } : {}),
  })
  const node = daemon.node
  // Handlers stay until the daemon has stopped: a second Ctrl-C, or the SIGTERM that `timeout`
  // sends its whole process group, would otherwise end the process in the middle of the
  // shutdown, lock and database journal left behind. A repeat only says that it is stopping.
  let signalled = false
  const stop = (signal: NodeJS.Signals): void => {
    if (signalled) {
      logger('warn', 'stopping already: the daemon exits once the lock is released', { signal })
      return
    }
    signalled = true
    void daemon.stop()
  }
  // @libp2p/yamux (8.0.3) may write a frame from a microtask after the connection under it
  // closed; the StreamStateError it throws there reaches no caller. It concerns one dying
  // connection, not the node: log it and carry on. Anything else still ends the process.
  const survive = (err: Error): void => {
    if (err?.name === 'StreamStateError') {
      logger('warn', 'a write on a closing libp2p connection failed', { error: err.message })
      return
    }
    throw err
  }
  process.on('uncaughtException', survive)
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  // Ready only once a signal stops it cleanly: a supervisor (or a test) may send SIGTERM as soon
  // as it reads the line, and before the handlers it would end the process as it stands, lock
  // and socket left behind.
  emit(
    ctx.output,
    {
      event: 'ready',
      id: node.id,
      peerId: node.peerId,
      addresses: node.addresses(),
      link: node.link,
      home: ctx.home,
    },
    () =>
      [
        `Talken is running as ${node.id}`,
        `Listening on ${node.addresses().join(', ') || '(no addresses)'}`,
        `Your link, with this device's addresses: ${node.link}`,
        `Data directory ${ctx.home}. In another terminal: \`npx talken peers\`, \`npx talken send <contact> <text>\`, \`npx talken inbox --follow\`. Ctrl-C stops.`,
      ].join('\n'),
  )
  await daemon.stopped
  process.off('SIGINT', stop)
  process.off('SIGTERM', stop)
  process.off('uncaughtException', survive)
  // Stopped, and the lock released: libp2p may take a second more to close its sockets before
  // the process ends. A signal now only ends that wait, as the clean exit it is (not 130 or 143).
  const exitNow = (): void => process.exit()
  process.once('SIGINT', exitNow)
  process.once('SIGTERM', exitNow)
}

/** `send` with no daemon: write the message to the outbox under the data directory's lock. */
async function sendOffline(
  ctx: CommandContext,
  contact: string,
  text: string,
  passphraseFile: string | undefined,
): Promise<{ id: string; to: string; state: string; daemon: false }> {
  requireIdentity(ctx.home)
  // Asked before the lock is taken: others wait for the lock a few seconds, not for our typing.
  const passphrase = await unlockPassphrase(ctx.home, passphraseFile)
  const release = await acquireLockWhenFree(ctx.home, 'cli')
  try {
    const node = await createNode({ home: ctx.home, mdns: false, ...(passphrase ? { passphrase } : {}) })
    try {
      const handle = node.send(contact, text)
      return { id: handle.id, to: handle.to, state: handle.state, daemon: false }
    } finally {
      await node.stop()
    }
  } finally {
    release()
  }
}
