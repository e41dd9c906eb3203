/**
 * Network benchmark: Talken nodes against a plain js-libp2p stream and raw TCP, in one run, on
 * loopback (127.0.0.1 only, mDNS off).
 *
 * Every side moves the same work: {@link MESSAGES} messages of {@link MESSAGE_BYTES} bytes from
 * A to B, each acknowledged by B, at most {@link WINDOW} unacknowledged at a time; then
 * {@link ROUNDS} ping-pong rounds (A sends, B replies with a message of the same size, A waits
 * for the reply) after {@link WARMUP_ROUNDS} untimed ones.
 *
 * - talken: two real nodes with SQLite data directories; a message counts when A sees it
 *   `delivered` (acknowledged end to end by B, both sides' state persisted); the reply of a
 *   ping is a Talken message B sends on receipt.
 * - libp2p: two js-libp2p nodes with Talken's stack (TCP, Noise, yamux) and one protocol
 *   stream; frames are Talken's length-prefixed framing (`src/links/framing.ts`), each data
 *   frame answered by a 5-byte ack frame.
 * - tcp: one `node:net` connection (no delay), same frames, acks and window.
 *
 * Baseline frame layout (inside the varint length prefix):
 *
 *   offset  size  field
 *   0       1     kind: 0 data (ack wanted), 1 ack, 2 ping (reply wanted), 3 pong
 *   1       4     sequence number, big-endian
 *   5       n     payload (200 bytes for data, ping and pong; none for ack)
 *
 * Also measured: `storeFloor`, the sender's own durable writes per message with Talken's
 * statements and nothing else (no network, no encryption, no recipient): an upper bound for any
 * Talken that stores each message before `send` returns; `storeFloorRatioVsLibp2p` is that bound
 * against the libp2p side. `idleRssMB`, the resident memory of `talken daemon` idling on a fresh data
 * directory; and `perHopP50Ms`, from a line of network namespaces A–B–D–C (root only, using
 * `test/helpers/netns.ts`): the ping-pong p50 from A to C (3 hops, 2 relays) minus the p50
 * from A to B (1 hop), divided by 4 — a round trip to C crosses the two relays both ways, so
 * this is the one-way latency one relay hop adds. `perHopRttP50Ms` is the same difference
 * divided by 2: what each relay adds to a round trip.
 *
 * All latencies are round trips (`p50Ms`, `p99Ms`), in milliseconds, nearest-rank percentiles.
 * The machine's cores may be shared with other work: figures are noisy; compare sides of one run.
 */
import '../src/platform/node-shims.ts'
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { Stream } from '@libp2p/interface'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import Database from 'better-sqlite3'
import { createLibp2p, type Libp2p } from 'libp2p'
import { encodeFrame, FrameDecoder } from '../src/links/framing.ts'
import { initHome } from '../src/node/data-dir.ts'
import { createNode, type IncomingMessage, type TalkenNode } from '../src/node/node.ts'
import { migrate } from '../src/store/sqlite-migrations.ts'
import { prepareStatements } from '../src/store/sqlite-statements.ts'
import { introduce, until } from '../test/helpers/nodes.ts'

/** Messages per throughput run. */
const MESSAGES = 10_000
/** Bytes of each message (ASCII text, so characters = bytes). */
const MESSAGE_BYTES = 200
/** Messages sent but not yet acknowledged, at most. */
const WINDOW = 256
/** Untimed messages before each throughput run (JIT, connection warm-up). */
const WARMUP_MESSAGES = 500
/** Timed ping-pong rounds, after the untimed ones. */
const ROUNDS = 1_000
const WARMUP_ROUNDS = 50
/** Caps per phase: a side slower than this reports what it finished (`complete: false`). */
const THROUGHPUT_CAP_MS = 60_000
const PING_CAP_MS = 20_000
/** How long the daemon idles before its RSS is read. */
const IDLE_MS = 5_000
/** Ping-pong rounds per path in the namespace line, and its time cap. */
const LINE_ROUNDS = 200
const LINE_CAP_MS = 30_000
/** The whole bench gives up after this long. */
const OVERALL_MS = 175_000

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const LOOPBACK = '/ip4/127.0.0.1/tcp/0'
const PROTOCOL = '/talken-bench/net/1.0.0'

/** Throughput and round-trip latency of one side. */
export interface SideResult {
  /** Messages acknowledged per second, first send to last acknowledgement. */
  readonly msgsPerSec: number
  /** Ping-pong round trip, median and 99th percentile, milliseconds. */
  readonly p50Ms: number
  readonly p99Ms: number
  /** Messages acknowledged within the cap (all of them unless `complete` is false). */
  readonly messages: number
  readonly complete: boolean
  readonly rounds: number
  readonly wallSeconds: number
}

/** The one-line result of {@link netBench}. */
export interface NetBenchResult {
  readonly bench: 'net'
  readonly talken: SideResult
  readonly libp2p: SideResult
  readonly tcp: SideResult
  /** talken.msgsPerSec / libp2p.msgsPerSec; the target is at least 0.5. */
  readonly ratioVsLibp2p: number
  /** The sender's durable writes alone, per message (see `storeFloorSide`): what no Talken can beat. */
  readonly storeFloor: { readonly msgsPerSec: number }
  /** storeFloor.msgsPerSec / libp2p.msgsPerSec: the highest ratioVsLibp2p any Talken that stores each send could reach. */
  readonly storeFloorRatioVsLibp2p: number
  /** One-way p50 latency added per relay hop (see the file comment); target at most 2 ms. */
  readonly perHopP50Ms: number | null
  /** Round-trip p50 added per relay; null with perHopP50Ms. */
  readonly perHopRttP50Ms: number | null
  /** Ping-pong p50 in the namespace line: A–B (1 hop) and A–C (3 hops). */
  readonly lineP50Ms: { readonly oneHop: number; readonly threeHops: number } | null
  readonly perHopNote?: string
  /** Resident memory of an idle daemon, MiB; target at most 150. */
  readonly idleRssMB: number | null
  readonly idleRssNote?: string
  readonly messageBytes: number
  readonly window: number
  readonly wallSeconds: number
  readonly note: string
}

// ------------------------------------------------------------------------------------------
// drivers shared by every side

/** Starts message `i`; calls `done` once it is acknowledged (or with an error). */
type Starter = (i: number, done: (err?: Error) => void) => void

/** Keeps `window` messages in flight until `n` are acknowledged or `capMs` passes. */
function windowed(
  n: number,
  window: number,
  start: Starter,
  capMs: number,
): Promise<{ acked: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    let next = 0
    let acked = 0
    let settled = false
    const t0 = performance.now()
    const finish = (): void => {
      settled = true
      clearTimeout(timer)
      resolve({ acked, seconds: (performance.now() - t0) / 1000 })
    }
    const timer = setTimeout(finish, capMs)
    const done = (err?: Error): void => {
      if (settled) return
      if (err !== undefined) {
        settled = true
        clearTimeout(timer)
        reject(err)
        return
      }
      acked++
      if (acked === n) finish()
      else launch()
    }
    const launch = (): void => {
      while (!settled && next < n && next - acked < window) start(next++, done)
    }
    launch()
  })
}

/** Round trips of `rounds` timed pings after `warmup` untimed ones, in ms; stops early at `capMs`. */
async function pingPong(
  rounds: number,
  warmup: number,
  rtt: (i: number) => Promise<void>,
  capMs: number,
): Promise<number[]> {
  const deadline = performance.now() + capMs
  const out: number[] = []
  for (let i = 0; i < warmup + rounds && performance.now() < deadline; i++) {
    const t0 = performance.now()
    await rtt(i)
    if (i >= warmup) out.push(performance.now() - t0)
  }
  return out
}

/** Nearest-rank percentile of `xs` (sorted copy). */
function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000

function sideResult(t: { acked: number; seconds: number }, rtts: number[], wallSeconds: number): SideResult {
  return {
    msgsPerSec: Math.round(t.acked / t.seconds),
    p50Ms: round3(percentile(rtts, 50)),
    p99Ms: round3(percentile(rtts, 99)),
    messages: t.acked,
    complete: t.acked === MESSAGES,
    rounds: rtts.length,
    wallSeconds: round3(wallSeconds),
  }
}

/** A 200-byte ASCII text that starts with `tag`. */
function text(tag: string): string {
  return `${tag}:`.padEnd(MESSAGE_BYTES, 'x')
}

// ------------------------------------------------------------------------------------------
// baselines: the same frames over libp2p and raw TCP

const Kind = { data: 0, ack: 1, ping: 2, pong: 3 } as const

function frame(kind: number, seq: number, payload?: Uint8Array): Uint8Array {
  const f = new Uint8Array(5 + (payload?.length ?? 0))
  f[0] = kind
  new DataView(f.buffer).setUint32(1, seq)
  if (payload !== undefined) f.set(payload, 5)
  return f
}

const seqOf = (f: Uint8Array): number => new DataView(f.buffer, f.byteOffset, f.byteLength).getUint32(1)

/** B's side of a baseline: acks data, answers pings with a pong of the same payload. */
function serve(f: Uint8Array, reply: (bytes: Uint8Array) => void): void {
  if (f[0] === Kind.data) reply(encodeFrame(frame(Kind.ack, seqOf(f))).subarray())
  else if (f[0] === Kind.ping) reply(encodeFrame(frame(Kind.pong, seqOf(f), f.subarray(5))).subarray())
}

/** A's side of a baseline: sends data and pings, matches acks and pongs by sequence number. */
class FrameClient {
  readonly #waiting = new Map<number, () => void>()
  readonly #write: (bytes: Uint8Array) => void
  readonly #payload = new TextEncoder().encode(text('baseline'))

  constructor(write: (bytes: Uint8Array) => void) {
    this.#write = write
  }

  receive(f: Uint8Array): void {
    const key = f[0] === Kind.ack ? seqOf(f) : -1 - seqOf(f)
    const done = this.#waiting.get(key)
    this.#waiting.delete(key)
    done?.()
  }

  readonly start: Starter = (i, done) => {
    this.#waiting.set(i, done)
    this.#write(encodeFrame(frame(Kind.data, i, this.#payload)).subarray())
  }

  readonly rtt = (i: number): Promise<void> =>
    new Promise((resolve) => {
      this.#waiting.set(-1 - i, resolve)
      this.#write(encodeFrame(frame(Kind.ping, i, this.#payload)).subarray())
    })
}

/** Runs both measurements against a connected client; warm-up sequence numbers come after the timed ones. */
async function measureClient(client: FrameClient): Promise<SideResult> {
  const t0 = performance.now()
  await windowed(WARMUP_MESSAGES, WINDOW, (i, done) => client.start(MESSAGES + i, done), THROUGHPUT_CAP_MS)
  const t = await windowed(MESSAGES, WINDOW, client.start, THROUGHPUT_CAP_MS)
  const rtts = await pingPong(ROUNDS, WARMUP_ROUNDS, client.rtt, PING_CAP_MS)
  return sideResult(t, rtts, (performance.now() - t0) / 1000)
}

/** Writes to a libp2p stream, holding bytes back while it needs draining. */
function streamWriter(stream: Stream): (bytes: Uint8Array) => void {
  const queue: Uint8Array[] = []
  stream.addEventListener('drain', () => {
    while (queue.length > 0 && !stream.writableNeedsDrain) stream.send(queue.shift() as Uint8Array)
  })
  return (bytes) => {
    if (queue.length > 0 || stream.writableNeedsDrain) queue.push(bytes)
    else stream.send(bytes)
  }
}

function onFrames(stream: Stream, handle: (f: Uint8Array) => void): void {
  const decoder = new FrameDecoder()
  stream.addEventListener('message', (event) => {
    for (const f of decoder.push(event.data)) handle(f)
  })
}

async function libp2pNode(): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: [LOOPBACK] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ maxInboundStreams: 64, maxOutboundStreams: 64 })],
  })
}

async function libp2pSide(): Promise<SideResult> {
  const a = await libp2pNode()
  const b = await libp2pNode()
  try {
    await b.handle(PROTOCOL, (stream) => {
      const write = streamWriter(stream)
      onFrames(stream, (f) => serve(f, write))
    })
    const address = b.getMultiaddrs()[0]
    if (address === undefined) throw new Error('the libp2p node has no address')
    const stream = await a.dialProtocol(multiaddr(address.toString()), PROTOCOL)
    const client = new FrameClient(streamWriter(stream))
    onFrames(stream, (f) => client.receive(f))
    return await measureClient(client)
  } finally {
    await a.stop()
    await b.stop()
  }
}

function socketFrames(socket: Socket, handle: (f: Uint8Array) => void): void {
  const decoder = new FrameDecoder()
  socket.on('data', (chunk) => {
    for (const f of decoder.push(chunk)) handle(f)
  })
}

async function tcpSide(): Promise<SideResult> {
  const server: Server = createServer({ noDelay: true }, (socket) => {
    socketFrames(socket, (f) => serve(f, (bytes) => socket.write(bytes)))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  const socket = createConnection({ host: '127.0.0.1', port, noDelay: true })
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    const client = new FrameClient((bytes) => socket.write(bytes))
    socketFrames(socket, (f) => client.receive(f))
    return await measureClient(client)
  } finally {
    socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  }
}

// ------------------------------------------------------------------------------------------
// store floor: the sender's own durable writes, and nothing else

/** Sizes of what the sender stores per message in the Talken side (measured there, steady state). */
const FLOOR_SESSION_RECORD_BYTES = 460
const FLOOR_ENVELOPE_BYTES = 1_077

/**
 * What the sender's store alone costs per message: Talken's own statements (`prepareStatements`,
 * the same schema and pragmas) on a fresh file, and nothing else. One transaction when a message
 * is sent (the session record, the message, its outbox entry, its state `sent`): one commit per
 * send, because `send` returns only once the message is stored. One when it is delivered (its
 * state, its outbox entry removed), with {@link WINDOW} messages in flight. The recipient's writes,
 * the encryption, the mesh and the network are all left out, so no Talken can be faster.
 */
function storeFloorSide(dir: string): { msgsPerSec: number } {
  const db = new Database(join(dir, 'store-floor.db'))
  try {
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.pragma('foreign_keys = ON')
    migrate(db)
    const q = prepareStatements(db)
    const session = new Uint8Array(FLOOR_SESSION_RECORD_BYTES).fill(1)
    const envelope = new Uint8Array(FLOOR_ENVELOPE_BYTES).fill(2)
    const body = new TextEncoder().encode(text('floor'))
    const sent = db.transaction((id: string, now: number) => {
      q.kvSet.run('e2e-session', 'peer', session)
      q.addMessage.run(id, 'conversation', 'out', body, now, 'queued', null, now)
      q.putOutbox.run(id, envelope, 0, now + 1_800_000, now + 86_400_000)
      q.setMessageState.run('sent', null, now, id)
    })
    const delivered = db.transaction((id: string, now: number) => {
      q.setMessageState.run('delivered', null, now, id)
      q.removeOutbox.run(id)
    })
    const id = (i: number): string => i.toString(16).padStart(32, '0')
    const run = (from: number, n: number): number => {
      const t0 = performance.now()
      for (let i = from; i < from + n + WINDOW; i++) {
        if (i < from + n) sent(id(i), Date.now())
        if (i >= from + WINDOW) delivered(id(i - WINDOW), Date.now())
      }
      return (performance.now() - t0) / 1000
    }
    run(MESSAGES, WARMUP_MESSAGES)
    return { msgsPerSec: Math.round(MESSAGES / run(0, MESSAGES)) }
  } finally {
    db.close()
  }
}

// ------------------------------------------------------------------------------------------
// Talken

/** A fresh data directory under `dir` with identity `name`. */
function makeHome(dir: string, name: string): { home: string; link: string; id: string } {
  const home = join(dir, name.toLowerCase())
  const created = initHome({ home, name })
  const result = { home, link: created.link, id: created.identity.id }
  created.close()
  return result
}

/** Calls the waiter of each delivered message; fails it on expired or failed. */
function deliveries(node: TalkenNode): Map<string, (err?: Error) => void> {
  const waiting = new Map<string, (err?: Error) => void>()
  node.on('state', (e) => {
    const done = waiting.get(e.id)
    if (done === undefined) return
    if (e.state === 'delivered' || e.state === 'read') done()
    else if (e.state === 'expired' || e.state === 'failed') done(new Error(`message ${e.id} ${e.state}`))
    else return
    waiting.delete(e.id)
  })
  return waiting
}

/** Resolves the waiter whose text an incoming message carries. */
function replies(node: TalkenNode): Map<string, () => void> {
  const waiting = new Map<string, () => void>()
  node.on('message', (m: IncomingMessage) => {
    const done = waiting.get(m.text)
    waiting.delete(m.text)
    done?.()
  })
  return waiting
}

/** Answers every incoming message with the same text, until the node stops. */
async function echo(node: TalkenNode): Promise<void> {
  for await (const m of node.messages()) node.send(m.from, m.text)
}

async function talkenSide(dir: string): Promise<SideResult> {
  const ha = makeHome(dir, 'Ada')
  const hb = makeHome(dir, 'Bob')
  introduce(ha, hb)
  const nb = await createNode({ home: hb.home, listen: [LOOPBACK], mdns: false })
  await nb.start()
  const na = await createNode({ home: ha.home, listen: [LOOPBACK], mdns: false, bootstrap: nb.addresses() })
  try {
    await na.start()
    await until(
      () => na.peers().some((p) => p.mesh) && nb.peers().some((p) => p.mesh),
      10_000,
      'the mesh link',
    )
    const t0 = performance.now()
    const delivered = deliveries(na)
    const start: Starter = (i, done) => {
      const handle = na.send(hb.id, text(`m${i}`))
      if (handle.state === 'delivered') done()
      else delivered.set(handle.id, done)
    }
    await windowed(WARMUP_MESSAGES, WINDOW, start, THROUGHPUT_CAP_MS)
    const t = await windowed(MESSAGES, WINDOW, start, THROUGHPUT_CAP_MS)
    // A run cut short by the cap leaves messages in flight: let them land before timing pings.
    await until(() => delivered.size === 0, 15_000, 'the last deliveries').catch(() => {})
    void echo(nb)
    const answered = replies(na)
    const rtts = await pingPong(
      ROUNDS,
      WARMUP_ROUNDS,
      (i) =>
        new Promise<void>((resolve) => {
          const body = text(`p${i}`)
          answered.set(body, resolve)
          na.send(hb.id, body)
        }),
      PING_CAP_MS,
    )
    return sideResult(t, rtts, (performance.now() - t0) / 1000)
  } finally {
    await na.stop()
    await nb.stop()
  }
}

// ------------------------------------------------------------------------------------------
// idle daemon

/** Spawns `talken daemon` on a fresh data directory, lets it idle, and reads its VmRSS. */
async function idleRss(dir: string): Promise<{ mb: number | null; note?: string }> {
  if (process.platform !== 'linux') return { mb: null, note: 'reads /proc, so Linux only' }
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
    execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore', timeout: 120_000 })
  }
  const bin = join(ROOT, 'bin', 'talken.js')
  const env = { ...process.env, TALKEN_HOME: join(dir, 'daemon') }
  execFileSync(process.execPath, [bin, 'init', '--name', 'Bench', '--json'], {
    env,
    stdio: 'ignore',
    timeout: 30_000,
  })
  const child = spawn(process.execPath, [bin, 'daemon', '--no-mdns', '--listen', LOOPBACK, '--json'], {
    env,
    stdio: ['ignore', 'pipe', 'ignore'],
  })
  try {
    await lineFrom(child, /"event":"ready"/, 30_000)
    await new Promise((r) => setTimeout(r, IDLE_MS))
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
    const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1])
    return Number.isFinite(kb) ? { mb: round3(kb / 1024) } : { mb: null, note: 'no VmRSS in /proc status' }
  } finally {
    await stopChild(child)
  }
}

function lineFrom(child: ChildProcess, pattern: RegExp, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
    const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${ms} ms`)), ms)
    child.once('exit', (code) => reject(new Error(`the process exited (${code}) before ${pattern}`)))
    lines.on('line', (line) => {
      if (!pattern.test(line)) return
      clearTimeout(timer)
      resolve(line)
    })
  })
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  await exited
  clearTimeout(timer)
}

// ------------------------------------------------------------------------------------------
// the namespace line A–B–D–C

/** Port every line node listens on (each in its own namespace, so they never clash). */
const LINE_PORT = 4_001

interface LineResult {
  readonly perHopP50Ms: number | null
  readonly perHopRttP50Ms: number | null
  readonly lineP50Ms: { readonly oneHop: number; readonly threeHops: number } | null
  readonly note?: string
}

/**
 * Ping-pong p50 over the namespace line A–B–D–C, one process per node; null figures with a note
 * when namespaces are unavailable (not root, no `ip`, helper missing).
 */
export async function lineHops(dir: string): Promise<LineResult> {
  const none = (note: string): LineResult => ({
    perHopP50Ms: null,
    perHopRttP50Ms: null,
    lineP50Ms: null,
    note,
  })
  const helper = join(ROOT, 'test', 'helpers', 'netns.ts')
  if (!existsSync(helper)) return none('test/helpers/netns.ts is missing')
  const netns = (await import(pathToFileURL(helper).href)) as typeof import('../test/helpers/netns.ts')
  const skip = netns.netnsSkipReason()
  if (skip !== undefined) return none(skip)
  const names = ['A', 'B', 'D', 'C'] as const
  const homes = names.map((n) => makeHome(join(dir, 'line'), n))
  introduce(...homes)
  const topo = netns.createTopology(netns.line(names))
  try {
    const procs = names.map((name, i) => {
      const next = names[i + 1]
      const bootstrap = next === undefined ? [] : [`/ip4/${topo.address(next, name)}/tcp/${LINE_PORT}`]
      return topo.spawn(name, process.execPath, [
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        'line-node',
        i === 0 ? 'pinger' : 'echo',
        (homes[i] as { home: string }).home,
        ...bootstrap,
      ])
    })
    await Promise.all(procs.map((p) => p.waitForLine(/"event":"ready"/, 30_000)))
    const [a] = procs
    const [, hb, , hc] = homes
    if (a === undefined || hb === undefined || hc === undefined) throw new Error('unreachable')
    a.write(JSON.stringify({ cmd: 'ping', targets: [hb.id, hc.id], rounds: LINE_ROUNDS, capMs: LINE_CAP_MS }))
    const line = await a.waitForLine(/"event":"rtts"/, LINE_CAP_MS + 45_000)
    const parsed = JSON.parse(line) as { rtts: Record<string, number[]>; error?: string }
    if (parsed.error !== undefined) return none(`the line did not answer: ${parsed.error}`)
    const one = percentile(parsed.rtts[hb.id] ?? [], 50)
    const three = percentile(parsed.rtts[hc.id] ?? [], 50)
    if (!Number.isFinite(one) || !Number.isFinite(three)) return none('no timed rounds on the line')
    return {
      perHopP50Ms: round3((three - one) / 4),
      perHopRttP50Ms: round3((three - one) / 2),
      lineP50Ms: { oneHop: round3(one), threeHops: round3(three) },
    }
  } finally {
    await topo.destroy()
  }
}

/**
 * One line node, run inside its namespace: `bench/net.ts line-node <echo|pinger> <home> [bootstrap]`.
 * An echo node answers every message with the same text. The pinger never echoes (or every
 * answer would bounce back and forth for ever); on `{"cmd":"ping","targets","rounds","capMs"}`
 * it pings the targets in turn (one round each, alternating, so drift hits both alike) and
 * prints their round trips.
 */
async function lineNode(role: string, home: string, bootstrap: string[]): Promise<void> {
  const node = await createNode({ home, listen: [`/ip4/0.0.0.0/tcp/${LINE_PORT}`], bootstrap, mdns: false })
  await node.start()
  const stop = (): void => {
    void node.stop().then(() => process.exit(0))
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  const answered = replies(node)
  if (role === 'echo') void echo(node)
  const rtt = (to: string, tag: string, ms: number): Promise<number | undefined> =>
    new Promise((resolve) => {
      const body = text(tag)
      const t0 = performance.now()
      const timer = setTimeout(() => {
        answered.delete(body)
        resolve(undefined)
      }, ms)
      answered.set(body, () => {
        clearTimeout(timer)
        resolve(performance.now() - t0)
      })
      node.send(to, body)
    })
  console.log(JSON.stringify({ event: 'ready', peerId: node.peerId }))
  createInterface({ input: process.stdin }).on('line', (input) => {
    const cmd = JSON.parse(input) as { targets: string[]; rounds: number; capMs: number }
    void (async () => {
      const rtts: Record<string, number[]> = {}
      let error: string | undefined
      // Until each target answers once (links and routes come up), then a few untimed rounds.
      for (const to of cmd.targets) {
        rtts[to] = []
        const deadline = Date.now() + 30_000
        let k = 0
        while ((await rtt(to, `w${k++}`, 2_000)) === undefined) {
          if (Date.now() > deadline) error = `no answer from ${to.slice(0, 12)}… within 30 s`
          if (error !== undefined) break
        }
      }
      const deadline = performance.now() + cmd.capMs
      for (
        let i = 0;
        error === undefined && i < WARMUP_ROUNDS + cmd.rounds && performance.now() < deadline;
        i++
      ) {
        for (const to of cmd.targets) {
          const ms = await rtt(to, `r${i}${to}`, 5_000)
          if (ms !== undefined && i >= WARMUP_ROUNDS) rtts[to]?.push(ms)
        }
      }
      console.log(JSON.stringify({ event: 'rtts', rtts, ...(error === undefined ? {} : { error }) }))
    })()
  })
}

// ------------------------------------------------------------------------------------------

/**
 * Runs the network benchmark and prints one JSON line (`json: true`) or a short table.
 *
 * @example
 * // npm run bench -- net --json
 * const result = await netBench({ json: true })
 */
export async function netBench(opts: { json: boolean }): Promise<NetBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'talken-bench-net-'))
  const watchdog = setTimeout(() => {
    rmSync(dir, { recursive: true, force: true })
    console.error(`net bench: gave up after ${OVERALL_MS / 1000} s`)
    process.exit(1)
  }, OVERALL_MS)
  watchdog.unref()
  const t0 = performance.now()
  try {
    const rss = await idleRss(dir)
    const tcpResult = await tcpSide()
    const libp2pResult = await libp2pSide()
    const storeFloor = storeFloorSide(dir)
    const talken = await talkenSide(dir)
    let line: LineResult
    try {
      line = await lineHops(dir)
    } catch (err) {
      line = {
        perHopP50Ms: null,
        perHopRttP50Ms: null,
        lineP50Ms: null,
        note: `failed: ${(err as Error).message.split('\n')[0]}`,
      }
    }
    const result: NetBenchResult = {
      bench: 'net',
      talken,
      libp2p: libp2pResult,
      tcp: tcpResult,
      ratioVsLibp2p: round3(talken.msgsPerSec / libp2pResult.msgsPerSec),
      storeFloor,
      storeFloorRatioVsLibp2p: round3(storeFloor.msgsPerSec / libp2pResult.msgsPerSec),
      perHopP50Ms: line.perHopP50Ms,
      perHopRttP50Ms: line.perHopRttP50Ms,
      lineP50Ms: line.lineP50Ms,
      ...(line.note === undefined ? {} : { perHopNote: line.note }),
      idleRssMB: rss.mb,
      ...(rss.note === undefined ? {} : { idleRssNote: rss.note }),
      messageBytes: MESSAGE_BYTES,
      window: WINDOW,
      wallSeconds: round3((performance.now() - t0) / 1000),
      note: 'latencies are round trips; perHopP50Ms is one-way per relay: (p50 A-C over 3 hops - p50 A-B over 1 hop) / 4',
    }
    if (opts.json) console.log(JSON.stringify(result))
    else printTable(result)
    return result
  } finally {
    clearTimeout(watchdog)
    rmSync(dir, { recursive: true, force: true })
  }
}

function printTable(r: NetBenchResult): void {
  const row = (name: string, s: SideResult) =>
    `${name.padEnd(8)}${String(s.msgsPerSec).padStart(12)}${String(s.p50Ms).padStart(10)}${String(s.p99Ms).padStart(10)}${s.complete ? '' : `  (only ${s.messages} within the cap)`}`
  console.log(
    `net bench: ${MESSAGES} × ${r.messageBytes} B, window ${r.window}; ping-pong ${ROUNDS} rounds (round trip, ms)`,
  )
  console.log(`${''.padEnd(8)}${'msgs/s'.padStart(12)}${'p50'.padStart(10)}${'p99'.padStart(10)}`)
  console.log(row('talken', r.talken))
  console.log(row('libp2p', r.libp2p))
  console.log(row('tcp', r.tcp))
  console.log(`ratio vs libp2p ${r.ratioVsLibp2p} (target >= 0.5)`)
  console.log(
    `store floor (the sender's durable writes alone) ${r.storeFloor.msgsPerSec} msgs/s: ${r.storeFloorRatioVsLibp2p} x libp2p`,
  )
  console.log(
    r.perHopP50Ms === null
      ? `per relay hop: n/a (${r.perHopNote})`
      : `per relay hop p50 ${r.perHopP50Ms} ms one-way (line p50 1 hop ${r.lineP50Ms?.oneHop}, 3 hops ${r.lineP50Ms?.threeHops}; target <= 2)`,
  )
  console.log(`idle daemon RSS ${r.idleRssMB ?? `n/a (${r.idleRssNote})`} MB (target <= 150)`)
  console.log(`wall ${r.wallSeconds} s`)
}

const invokedAs = process.argv[1] === undefined ? '' : pathToFileURL(process.argv[1]).href
const [command, role, home, ...bootstrap] = process.argv.slice(2)
if (invokedAs === import.meta.url && command === 'line-node' && role !== undefined && home !== undefined) {
  await lineNode(role, home, bootstrap)
}
