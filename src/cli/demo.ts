/**
 * `npm run demo`: multi-hop routing and store-and-forward on one machine, in under a minute.
 *
 * ```
 * npm run demo            # readable lines, one per event, each with a short step prefix
 * npm run demo -- --json  # one JSON object per event
 * ```
 *
 * Four real nodes (libp2p over TCP, SQLite stores, end-to-end encryption) run in this process,
 * each with its own temporary data directory and TCP port, on 127.0.0.1 only and with mDNS off:
 * nothing leaves loopback and nothing is multicast. They form the line A–B–D–C: every node
 * could dial every other on loopback (contact cards carry addresses, peers are remembered and
 * redialled), so each node is given the peer IDs of its line neighbours and its connection
 * gater (`allowPeer`) refuses every other peer, both ways. A and C are contacts; B and D are
 * strangers that relay sealed envelopes they cannot read.
 *
 * The demo then shows the line and A's route to C, sends A → C (states and hop count), stops C
 * and sends again (the message waits with a relay), restarts C from the same data directory
 * (the message arrives, A's state reaches delivered), prints a summary and removes everything.
 * Every wait has a deadline; a failure prints what was awaited and exits non-zero.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { writePrivateFile } from '../identity/key-file.ts'
import { tagKey } from '../mesh/routing-table.ts'
import { addContact } from '../node/contacts.ts'
import { initHome } from '../node/data-dir.ts'
import { destinationTag } from '../node/destination-tag.ts'
import { createNode, type IncomingMessage, PEER_KEY_FILE, type TalkenNode } from '../node/node.ts'
import type { DeliveryState } from '../store/store.ts'
import { isMainModule } from './main-module.ts'

/** The nodes, in line order. */
export const DEMO_NAMES = ['A', 'B', 'D', 'C'] as const
export type DemoName = (typeof DEMO_NAMES)[number]

/** Who links with whom: the line A–B–D–C. */
const LINE: Readonly<Record<DemoName, readonly DemoName[]>> = {
  A: ['B'],
  B: ['A', 'D'],
  D: ['B', 'C'],
  C: ['D'],
}

/** The demo's steps, each printed with its own prefix. */
export type DemoStep = 'setup' | 'line' | 'route' | 'send' | 'away' | 'back' | 'gater' | 'summary' | 'cleanup'

/** One thing that happened: `text` for people, the other fields for `--json`. */
export interface DemoEvent {
  readonly step: DemoStep
  readonly event: string
  /** Milliseconds since the demo started. */
  readonly t: number
  readonly text: string
  readonly data: Readonly<Record<string, unknown>>
}

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Receives every event as it happens. Default: none. */
  readonly output?: (event: DemoEvent) => void
  /** Deadline of the whole run (cleanup aside), milliseconds. Default 45,000. */
  readonly timeoutMs?: number
  /** How long C stays away once the second message is held by a relay, milliseconds. Default 2,000. */
  readonly awayMs?: number
  /** Aborts the run (Ctrl-C); everything is cleaned up before `runDemo` rejects. */
  readonly signal?: AbortSignal
}

/** A message's journey, for the summary. */
export interface DemoDelivery {
  readonly id: string
  readonly text: string
  /** A's delivery states, in the order they were reported. */
  readonly states: readonly DeliveryState[]
  /** Hops the message travelled, as C counted them. */
  readonly hops: number | undefined
  /** Milliseconds from A's send to A seeing it delivered. */
  readonly deliveredAfterMs: number
  /** Times C announced the message. */
  readonly arrivals: number
}

/** What {@link runDemo} returns. */
export interface DemoSummary {
  /** Each node's mesh neighbours once the line had formed. */
  readonly line: Readonly<Record<DemoName, readonly DemoName[]>>
  /** A's route to C once the line had formed. */
  readonly route: { readonly from: 'A'; readonly to: 'C'; readonly nextHop: string; readonly metric: number }
  readonly first: DemoDelivery
  readonly second: DemoDelivery & {
    /** A's state while C was away (never delivered). */
    readonly stateWhileAway: DeliveryState
    /** Relays that held the message in custody while C was away. */
    readonly heldBy: readonly DemoName[]
  }
  /** Per node, the peers its gater refused to link with (by name, or peer ID when unknown). */
  readonly refused: Readonly<Record<DemoName, readonly string[]>>
  readonly durationMs: number
}

interface DemoNode {
  readonly name: DemoName
  readonly home: string
  readonly peerId: string
  /** Destination tag (hex) of the node's account, as routes name it. */
  readonly tag: string
  /** Peer IDs this node may link with. */
  readonly allowed: Set<string>
  readonly refused: Set<string>
  port: number
  node: TalkenNode | undefined
}

/**
 * Runs the demo; resolves with its summary, or rejects with an error that says what did not
 * happen in time. Nodes and temporary directories are removed either way.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoSummary> {
  const started = Date.now()
  const deadline = started + (options.timeoutMs ?? 45_000)
  const awayMs = options.awayMs ?? 2_000
  const signal = options.signal
  const say = (step: DemoStep, event: string, text: string, data: Record<string, unknown> = {}): void => {
    options.output?.({ step, event, t: Date.now() - started, text, data })
  }
  let failure: Error | undefined
  const fail = (err: Error): void => {
    failure ??= err
  }

  /** Resolves once `check` holds; rejects at `ms` (or the run's deadline), on abort, or on a node error. */
  const waitFor = async (what: string, check: () => boolean, ms: number, detail?: () => string) => {
    const until = Math.min(deadline, Date.now() + ms)
    for (;;) {
      if (failure !== undefined) throw failure
      signal?.throwIfAborted()
      if (check()) return
      if (Date.now() >= until) {
        const seconds = ((Date.now() - started) / 1000).toFixed(1)
        throw new Error(
          `timed out waiting for ${what} (${seconds} s into the demo)${detail ? `: ${detail()}` : ''}`,
        )
      }
      await sleep(25)
    }
  }

  const root = mkdtempSync(join(tmpdir(), 'talken-demo-'))
  const nodes = new Map<DemoName, DemoNode>()
  const byPeer = new Map<string, DemoName>()
  const byTag = new Map<string, DemoName>()
  const nameOfPeer = (peerId: string): string => byPeer.get(peerId) ?? peerId
  const get = (name: DemoName): DemoNode => nodes.get(name)!
  const running = (name: DemoName): TalkenNode => {
    const node = get(name).node
    if (node === undefined) throw new Error(`node ${name} is not running`)
    return node
  }
  /** A node's mesh neighbours, by name, sorted. */
  const neighbours = (name: DemoName): string[] =>
    (get(name).node?.peers() ?? [])
      .filter((p) => p.mesh)
      .map((p) => nameOfPeer(p.peerId))
      .sort()
  /** A node's routes, readably. */
  const routesOf = (name: DemoName) =>
    running(name)
      .routes()
      .map((r) => ({
        to: byTag.get(r.destination) ?? r.destination,
        via: nameOfPeer(r.nextHop),
        metric: r.metric,
      }))
      .sort((a, b) => a.metric - b.metric || a.to.localeCompare(b.to))
  const routeText = (name: DemoName): string =>
    routesOf(name)
      .map((r) => `${r.to} via ${r.via} (metric ${r.metric})`)
      .join(', ') || 'none'

  /** Every state change A reports, by message ID (states arrive inside `send`, before its ID is known). */
  const statesOf = new Map<string, DeliveryState[]>()
  /** What C announced, across its two runs. */
  const arrived: IncomingMessage[] = []
  const sendAt = new Map<string, number>()
  const deliveredAt = new Map<string, number>()

  /** The step under way, for events that arrive on their own (states, messages). */
  let phase: DemoStep = 'setup'
  /** When the send under way started (its states arrive before `send` returns the ID). */
  let sending: number | undefined

  const startNode = async (n: DemoNode): Promise<TalkenNode> => {
    const node = await createNode({
      home: n.home,
      listen: [`/ip4/127.0.0.1/tcp/${n.port}`],
      mdns: false,
      allowPeer: (peerId) => {
        if (n.allowed.has(peerId)) return true
        const who = nameOfPeer(peerId)
        if (!n.refused.has(who)) {
          n.refused.add(who)
          say('gater', 'refused', `${n.name} refused to link with ${who}: not its neighbour on the line`, {
            node: n.name,
            peer: who,
          })
        }
        return false
      },
    })
    n.node = node
    node.on('link:up', (peer) => {
      if (phase === 'back' && n.name === 'C')
        say('back', 'link', `C is linked to ${nameOfPeer(peer)} again (they redial each other)`, {
          node: n.name,
          peer: nameOfPeer(peer),
        })
    })
    node.on('error', (err) => fail(new Error(`node ${n.name} failed: ${err.message}`, { cause: err })))
    if (n.name === 'A') {
      node.on('state', (change) => {
        const list = statesOf.get(change.id) ?? []
        list.push(change.state)
        statesOf.set(change.id, list)
        if (change.state === 'delivered') deliveredAt.set(change.id, Date.now())
        const at = sendAt.get(change.id) ?? sending
        const since = at === undefined ? '' : ` (+${Date.now() - at} ms)`
        say(
          phase,
          'state',
          `A: message ${short(change.id)} is ${change.state}${since}${explain(change.state)}`,
          {
            node: 'A',
            id: change.id,
            state: change.state,
          },
        )
      })
    }
    if (n.name === 'C') {
      node.on('message', (m) => {
        arrived.push(m)
        say(phase, 'message', `C received "${m.text}" from ${m.fromName} after ${m.hops ?? '?'} hops`, {
          node: 'C',
          id: m.id,
          from: m.fromName,
          text: m.text,
          hops: m.hops ?? null,
        })
      })
    }
    await node.start()
    n.port = Number(/\/tcp\/(\d+)\//.exec(node.addresses()[0] ?? '')?.[1] ?? 0)
    return node
  }
  const send = (text: string): string => {
    sending = Date.now()
    const id = running('A').send('C', text).id
    sendAt.set(id, sending)
    sending = undefined
    return id
  }
  const delivery = (id: string, text: string): DemoDelivery => ({
    id,
    text,
    states: [...(statesOf.get(id) ?? [])],
    hops: arrived.find((m) => m.id === id)?.hops,
    deliveredAfterMs: (deliveredAt.get(id) ?? Number.NaN) - (sendAt.get(id) ?? Number.NaN),
    arrivals: arrived.filter((m) => m.id === id).length,
  })

  try {
    // ---- setup: four identities, each in its own data directory, with a pre-made peer key --
    const created = new Map<DemoName, ReturnType<typeof initHome>>()
    try {
      for (const name of DEMO_NAMES) {
        const home = join(root, name)
        const made = initHome({ home, name })
        created.set(name, made)
        const tag = tagKey(destinationTag(made.identity.account.publicKey))
        // The device key is made here (as the node would on first start) so that every node's
        // peer ID is known before any goes online: the allow-lists are complete from the start.
        const key = await generateKeyPair('Ed25519')
        writePrivateFile(join(home, PEER_KEY_FILE), privateKeyToProtobuf(key))
        const peerId = peerIdFromPrivateKey(key).toString()
        nodes.set(name, {
          name,
          home,
          peerId,
          tag,
          allowed: new Set(),
          refused: new Set(),
          port: 0,
          node: undefined,
        })
        byPeer.set(peerId, name)
        byTag.set(tag, name)
      }
      // A and C know each other (as after swapping contact links); B and D are strangers to both.
      const a = created.get('A')!
      const c = created.get('C')!
      addContact(a.store, a.identity.account.publicKey, c.link, { now: Date.now() })
      addContact(c.store, c.identity.account.publicKey, a.link, { now: Date.now() })
    } finally {
      for (const made of created.values()) made.close()
    }
    for (const name of DEMO_NAMES) {
      for (const other of LINE[name]) get(name).allowed.add(get(other).peerId)
    }
    say('setup', 'homes', `4 nodes, each with its own data directory under ${root}`, { dir: root })
    say('setup', 'contacts', 'A and C are contacts; B and D only relay (they cannot read what they carry)')

    for (const name of DEMO_NAMES) {
      const n = get(name)
      await startNode(n)
      say(
        'setup',
        'started',
        `${name} listens on 127.0.0.1:${n.port} (peer ..${n.peerId.slice(-6)}), mDNS off`,
        {
          node: name,
          port: n.port,
          peerId: n.peerId,
          allows: LINE[name],
        },
      )
    }
    for (const [from, to] of [
      ['A', 'B'],
      ['B', 'D'],
      ['D', 'C'],
    ] as const) {
      await running(from).dial(running(to).addresses()[0]!)
    }

    // ---- 1. the line forms; A learns a route to C ---------------------------------------------
    const lineSeen = (): boolean => DEMO_NAMES.every((n) => same(neighbours(n), [...LINE[n]].sort()))
    await waitFor('the line A-B-D-C to form', lineSeen, 15_000, () =>
      DEMO_NAMES.map((n) => `${n}: [${neighbours(n).join(', ')}]`).join('; '),
    )
    const line = Object.fromEntries(DEMO_NAMES.map((n) => [n, neighbours(n) as DemoName[]])) as Record<
      DemoName,
      DemoName[]
    >
    for (const name of DEMO_NAMES) {
      say('line', 'peers', `${name} is linked to ${line[name].join(' and ')}`, {
        node: name,
        peers: line[name],
      })
    }
    const routeToC = () =>
      running('A')
        .routes()
        .find((r) => byTag.get(r.destination) === 'C')
    await waitFor(
      'A to learn a route to C',
      () => routeToC()?.metric === 3,
      15_000,
      () => `A's routes: ${routeText('A')}`,
    )
    const route = routeToC()!
    say('route', 'routes', `A's routes: ${routeText('A')}`, { node: 'A', routes: routesOf('A') })
    say(
      'route',
      'route',
      `A reaches C through ${nameOfPeer(route.nextHop)}, metric ${route.metric} (A never links with C or D)`,
      { from: 'A', to: 'C', nextHop: nameOfPeer(route.nextHop), metric: route.metric },
    )

    // ---- 2. A sends to C: three hops -----------------------------------------------------------
    const firstText = 'Hello C, from A (through B and D)'
    phase = 'send'
    say('send', 'send', `A sends "${firstText}" to C`)
    const first = send(firstText)
    await waitFor(
      'the first message to reach C and A to see it delivered',
      () => arrived.some((m) => m.id === first) && deliveredAt.has(first),
      15_000,
      () =>
        `A's states: ${(statesOf.get(first) ?? []).join(' -> ') || 'none'}; C received it: ${arrived.some((m) => m.id === first)}`,
    )
    const firstDelivery = delivery(first, firstText)

    // ---- 3. C goes away; the second message waits with a relay ---------------------------------
    const c = get('C')
    await running('C').stop()
    c.node = undefined
    phase = 'away'
    say('away', 'stopped', `C goes offline (its node stops; its data directory ${c.home} stays)`, {
      node: 'C',
    })
    await waitFor('D to notice that C is gone', () => !neighbours('D').includes('C'), 10_000)
    say('away', 'peers', `D noticed: it is linked to ${neighbours('D').join(' and ') || 'nobody'} now`, {
      node: 'D',
      peers: neighbours('D'),
    })
    const secondText = 'Are you back, C? (sent while you were away)'
    say('away', 'send', `A sends "${secondText}" to C, who is offline`)
    const second = send(secondText)
    const relays: DemoName[] = ['B', 'D']
    const holders = (): DemoName[] => relays.filter((r) => running(r).store.getCustody(second) !== undefined)
    await waitFor(
      'a relay to take custody of the second message',
      () => holders().length > 0 && (statesOf.get(second) ?? []).includes('relayed'),
      10_000,
      () =>
        `A's states: ${(statesOf.get(second) ?? []).join(' -> ') || 'none'}; held by: ${holders().join(', ') || 'nobody'}`,
    )
    say(
      'away',
      'held',
      `${holders().join(' and ')} took custody (stored it, to hand on later); C stays offline for ${(awayMs / 1000).toFixed(1)} s`,
      { id: second, heldBy: holders() },
    )
    await sleepUntil(Math.min(deadline, Date.now() + awayMs), signal)
    if (failure !== undefined) throw failure
    if (deliveredAt.has(second) || arrived.some((m) => m.id === second))
      throw new Error('the second message was delivered while C was offline')
    const heldBy = holders()
    const stateWhileAway = running('A').store.getMessage(second)?.state ?? 'queued'
    say(
      'away',
      'waiting',
      `still waiting: A's state is ${stateWhileAway}, held by ${heldBy.join(' and ') || 'no relay'}, C has not seen it`,
      { id: second, state: stateWhileAway, heldBy },
    )

    // ---- C comes back: the relay hands the message over ----------------------------------------
    phase = 'back'
    say('back', 'restart', `C starts again from the same data directory, on 127.0.0.1:${c.port}`, {
      node: 'C',
    })
    await startNode(c)
    await waitFor(
      'the second message to reach C and A to see it delivered',
      () => arrived.some((m) => m.id === second) && deliveredAt.has(second),
      20_000,
      () =>
        `A's states: ${(statesOf.get(second) ?? []).join(' -> ')}; C's links: [${neighbours('C').join(', ')}]; held by: ${holders().join(', ') || 'nobody'}; B's routes: ${routeText('B')}; D's routes: ${routeText('D')}`,
    )
    await waitFor(
      'the relays to drop their copies',
      () => holders().length === 0,
      10_000,
      () => `still held by ${holders().join(', ')}`,
    )
    say('back', 'dropped', 'no relay keeps a copy: B and D dropped theirs once C had it', { id: second })
    await waitFor(
      'C to be linked with D alone',
      () => same(neighbours('C'), ['D']),
      10_000,
      () => `C's links: [${neighbours('C').join(', ')}]`,
    )
    const secondDelivery = delivery(second, secondText)

    // ---- 4. summary ------------------------------------------------------------------------------
    const summary: DemoSummary = {
      line,
      route: { from: 'A', to: 'C', nextHop: nameOfPeer(route.nextHop), metric: route.metric },
      first: firstDelivery,
      second: { ...secondDelivery, stateWhileAway, heldBy },
      refused: Object.fromEntries(DEMO_NAMES.map((n) => [n, [...get(n).refused].sort()])) as Record<
        DemoName,
        string[]
      >,
      durationMs: Date.now() - started,
    }
    const offLine = DEMO_NAMES.flatMap((n) => summary.refused[n].map((p) => `${n} refused ${p}`))
    const lines = [
      `the line A-B-D-C formed; A reached C through ${summary.route.nextHop}, metric ${summary.route.metric}`,
      `message 1: ${summary.first.states.join(' -> ')} in ${summary.first.deliveredAfterMs} ms, ${summary.first.hops} hops, received ${times(summary.first.arrivals)}`,
      `message 2: held by ${summary.second.heldBy.join(' and ')} (A: ${summary.second.stateWhileAway}) while C was away, then ${summary.second.states.join(' -> ')}, ${summary.second.hops} hops, received ${times(summary.second.arrivals)}`,
      `links off the line refused by the gaters: ${offLine.join(', ') || 'none attempted'}`,
    ]
    for (const text of lines) say('summary', 'line', text)
    say('summary', 'summary', `done in ${(summary.durationMs / 1000).toFixed(1)} s`, { ...summary })
    return summary
  } finally {
    const stopped = await Promise.allSettled(
      [...nodes.values()].map(async (n) => {
        if (n.node === undefined) return
        const node = n.node
        n.node = undefined
        await withTimeout(node.stop(), 5_000, `stopping ${n.name}`)
      }),
    )
    rmSync(root, { recursive: true, force: true })
    const problems = stopped.filter((s) => s.status === 'rejected').length
    say(
      'cleanup',
      'cleanup',
      `stopped every node${problems > 0 ? ` (${problems} did not stop cleanly)` : ''} and removed ${root}`,
      { dir: root },
    )
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

async function sleepUntil(at: number, signal: AbortSignal | undefined): Promise<void> {
  while (Date.now() < at) {
    signal?.throwIfAborted()
    await sleep(Math.min(50, at - Date.now()))
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

function same(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

function times(n: number): string {
  return n === 1 ? 'once' : `${n} times`
}

function short(id: string): string {
  return id.length > 12 ? `${id.slice(0, 8)}..` : id
}

function explain(state: DeliveryState): string {
  switch (state) {
    case 'queued':
      return ": stored in A's outbox"
    case 'sent':
      return ': handed to a link'
    case 'relayed':
      return ': a relay took custody'
    case 'delivered':
      return ": C's proof of delivery came back"
    default:
      return ''
  }
}

/** The command line: `npm run demo [-- --json]`. Returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let json = false
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    })
    if (values.help) {
      process.stdout.write(
        'usage: npm run demo [-- --json]\n\nRuns four Talken nodes on 127.0.0.1 as the line A-B-D-C and shows a message\nrouted over three hops, then one that waits for its offline recipient.\n',
      )
      return 0
    }
    json = values.json === true
  } catch (err) {
    process.stderr.write(`talken demo: ${(err as Error).message}\n`)
    return 2
  }
  const write = (event: DemoEvent): void => {
    if (json) {
      process.stdout.write(
        `${JSON.stringify({ t: event.t, step: event.step, event: event.event, text: event.text, ...event.data })}\n`,
      )
    } else {
      process.stdout.write(`${`[${event.step}]`.padEnd(10)}${event.text}\n`)
    }
  }
  const abort = new AbortController()
  let interrupted = 0
  const onSignal = (): void => {
    interrupted++
    if (interrupted > 1) process.exit(130) // a second Ctrl-C: leave now, cleanup or not
    process.stderr.write('talken demo: interrupted, cleaning up (Ctrl-C again to quit at once)\n')
    abort.abort(new Error('interrupted'))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  // The run and its cleanup are bounded; this catches anything that would hang regardless.
  const watchdog = setTimeout(() => {
    process.stderr.write('talken demo: did not finish within 58 s; giving up\n')
    process.exit(1)
  }, 58_000)
  watchdog.unref()
  try {
    await runDemo({ output: write, signal: abort.signal })
    return 0
  } catch (err) {
    if (interrupted > 0) {
      if (json) process.stdout.write(`${JSON.stringify({ step: 'error', event: 'interrupted' })}\n`)
      process.stderr.write('talken demo: interrupted (cleaned up)\n')
      return 130
    }
    const message = (err as Error).message
    if (json) process.stdout.write(`${JSON.stringify({ step: 'error', event: 'failed', message })}\n`)
    process.stderr.write(`talken demo: FAILED: ${message}\n`)
    return 1
  } finally {
    clearTimeout(watchdog)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

// Exit explicitly: the nodes are stopped, and nothing left over should keep a finished demo alive.
if (isMainModule(import.meta.url)) process.exit(await main(process.argv.slice(2)))
