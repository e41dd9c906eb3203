/**
 * Multi-host tests on one machine: Linux network namespaces joined by veth pairs.
 *
 * Each node of a topology gets its own namespace; each link is a veth pair whose ends are
 * created directly inside the two namespaces (never in the machine's own namespace), with its
 * own /24 (`10.77.<link>.0/24`, `.1` and `.2`). Every namespace has `lo` up and IPv4 forwarding
 * off, and no default route: a node reaches only its direct neighbours, so anything that goes
 * further has to be relayed by the nodes themselves. Multicast stays on the veths of the
 * namespaces, so mDNS runs for real and never reaches the machine's interfaces.
 *
 * No route for 224.0.0.0/4 is added on purpose. With no route at all, a UDP send to
 * 224.0.0.251 fails with ENETUNREACH unless the socket names its outgoing interface
 * (IP_MULTICAST_IF); Talken's mDNS opens one socket per interface and sets it, so it must work
 * here as it does on a phone whose hotspot interface has no default route. A route would hide a
 * socket that forgot to pick its interface. `test/netns/harness.test.ts` checks both sides.
 *
 * Names are `tk<pid>x<counter><node>`, so parallel test files (separate processes) never
 * collide; namespaces left by a test process that died are removed when the next topology is
 * built. Namespaces are deleted, after their processes are killed, by {@link Topology.destroy},
 * and also on process exit, SIGINT and SIGTERM.
 *
 * Needs root and `iproute2`; {@link netnsSkipReason} says why not, for `{ skip }`.
 *
 * @example
 * const reason = netnsSkipReason()
 * test('A reaches C', { skip: reason ?? false }, async () => {
 *   const topo = createTopology(line(['A', 'B', 'C']))
 *   try {
 *     const b = topo.spawn('B', 'node', ['server.js'])
 *     await b.waitForLine(/listening/, 5_000)
 *   } finally {
 *     await topo.destroy()
 *   }
 * })
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'

/** One link of a topology: two node names. */
export type LinkSpec = readonly [string, string]

/** Links of a line: `line(['A', 'B', 'C'])` is A–B, B–C. */
export function line(names: readonly string[]): LinkSpec[] {
  const links: LinkSpec[] = []
  for (let i = 0; i + 1 < names.length; i++) links.push([names[i] as string, names[i + 1] as string])
  return links
}

/** Node names become parts of interface names (`to-<peer>`), which Linux caps at 15 bytes. */
const NODE_NAME = /^[A-Za-z0-9]{1,12}$/
const PREFIX = 'tk'
/** Bound on each `ip` invocation. */
const IP_TIMEOUT_MS = 10_000

/** Runs `ip` with `args`; throws with its stderr when it fails. */
function ip(args: readonly string[]): string {
  return execFileSync('ip', args, {
    encoding: 'utf8',
    timeout: IP_TIMEOUT_MS,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

/** Why namespace tests cannot run here, or undefined when they can. */
export function netnsSkipReason(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return 'network namespace tests need root (run as root, as CI does)'
  }
  // Named like a topology's namespaces (counter 0), so a probe left by a killed process is an orphan too.
  const probe = `${PREFIX}${process.pid}x0probe`
  try {
    ip(['netns', 'add', probe])
  } catch (err) {
    return `cannot create a network namespace: ${firstLine(err)}`
  }
  try {
    ip(['netns', 'del', probe])
  } catch (err) {
    return `cannot delete a network namespace: ${firstLine(err)}`
  }
  return undefined
}

/** A line of a child's output. */
export interface OutputLine {
  readonly stream: 'stdout' | 'stderr'
  readonly text: string
}

/** Options of {@link spawnIn}. */
export interface SpawnOptions {
  /** Added to the test process's environment. */
  readonly env?: Record<string, string>
  readonly cwd?: string
}

/** A process running inside a namespace, its output kept line by line. */
export class NsProcess {
  readonly child: ChildProcess
  /** Every line so far, both streams, in arrival order. */
  readonly lines: OutputLine[] = []
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  readonly #label: string
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
  readonly #waiters = new Set<() => void>()

  constructor(label: string, child: ChildProcess) {
    this.#label = label
    this.child = child
    for (const stream of ['stdout', 'stderr'] as const) {
      const source = child[stream]
      if (source === null) continue
      createInterface({ input: source }).on('line', (text) => {
        this.lines.push({ stream, text })
        if (process.env.NETNS_VERBOSE) process.stderr.write(`[${label} ${stream}] ${text}\n`)
        this.#wake()
      })
    }
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exit = { code, signal }
        resolve(this.#exit)
        this.#wake()
      })
    })
  }

  get pid(): number | undefined {
    return this.child.pid
  }

  /** Whether the process is still running. */
  get running(): boolean {
    return this.#exit === undefined
  }

  /** How many lines have arrived; pass it as `from` to wait only for later lines. */
  mark(): number {
    return this.lines.length
  }

  /** Stdout lines from index `from` on. */
  stdout(from = 0): string[] {
    return this.lines
      .slice(from)
      .filter((l) => l.stream === 'stdout')
      .map((l) => l.text)
  }

  /**
   * Resolves with the first line (from index `from`) that matches `pattern`; rejects after
   * `timeoutMs`, or when the process exits without printing one.
   */
  waitForLine(pattern: RegExp, timeoutMs: number, from = 0): Promise<string> {
    return this.waitFor(
      (line) => (pattern.test(line.text) ? line.text : undefined),
      timeoutMs,
      from,
      String(pattern),
    )
  }

  /** Resolves with the first non-undefined `pick(line)` from index `from` on; bounded like {@link waitForLine}. */
  waitFor<T>(
    pick: (line: OutputLine) => T | undefined,
    timeoutMs: number,
    from = 0,
    what = 'a matching line',
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      let index = from
      const check = (): void => {
        for (; index < this.lines.length; index++) {
          const found = pick(this.lines[index] as OutputLine)
          if (found !== undefined) {
            done(() => resolve(found))
            return
          }
        }
        if (this.#exit !== undefined) {
          done(() =>
            reject(
              new Error(
                `${this.#label} exited (${this.#exit?.code ?? this.#exit?.signal}) before ${what}\n${this.tail()}`,
              ),
            ),
          )
        }
      }
      const timer = setTimeout(
        () =>
          done(() => reject(new Error(`${this.#label}: no ${what} within ${timeoutMs} ms\n${this.tail()}`))),
        timeoutMs,
      )
      const done = (settle: () => void): void => {
        clearTimeout(timer)
        this.#waiters.delete(check)
        settle()
      }
      this.#waiters.add(check)
      check()
    })
  }

  /** Writes one line to the process's stdin. */
  write(line: string): void {
    this.child.stdin?.write(`${line}\n`)
  }

  /** Sends `signal` to the process and everything it started. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.#exit !== undefined || this.child.pid === undefined) return
    try {
      // The child leads its own process group (spawned detached): signal the whole group.
      process.kill(-this.child.pid, signal)
    } catch {
      // already gone
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  async stop(graceMs = 3_000): Promise<void> {
    if (this.#exit !== undefined) return
    this.kill('SIGTERM')
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs)
    await this.exited
    clearTimeout(timer)
  }

  /** The last lines of output, for error messages. */
  tail(count = 30): string {
    return this.lines
      .slice(-count)
      .map((l) => `  [${this.#label} ${l.stream}] ${l.text}`)
      .join('\n')
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter()
  }
}

/** Runs `cmd args` inside namespace `ns` (`ip netns exec`), in its own process group. */
export function spawnIn(
  ns: string,
  cmd: string,
  args: readonly string[],
  options: SpawnOptions = {},
  label = ns,
): NsProcess {
  const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
    cwd: options.cwd ?? process.cwd(),
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  })
  // Writes to a process that died (on purpose, in crash tests) must not fail the test.
  child.stdin?.on('error', () => {})
  return new NsProcess(label, child)
}

interface Link {
  readonly a: string
  readonly b: string
  readonly subnet: number
}

/** A set of namespaces and veth links; build with {@link createTopology}. */
export class Topology {
  readonly nodes: readonly string[]
  readonly #ns = new Map<string, string>()
  readonly #links: Link[] = []
  readonly #processes = new Set<NsProcess>()
  #destroyed = false

  /** @internal Use {@link createTopology}. */
  constructor(id: number, links: readonly LinkSpec[]) {
    const nodes: string[] = []
    for (const [a, b] of links) {
      for (const name of [a, b]) {
        if (!NODE_NAME.test(name)) throw new Error(`node names are 1–12 letters or digits: ${name}`)
        if (!nodes.includes(name)) nodes.push(name)
      }
      if (a === b) throw new Error(`a link needs two nodes: ${a}`)
    }
    if (links.length > 250) throw new Error('at most 250 links (one /24 each)')
    this.nodes = nodes
    for (const node of nodes) this.#ns.set(node, `${PREFIX}${process.pid}x${id}${node}`)
    links.forEach(([a, b], i) => {
      this.#links.push({ a, b, subnet: i + 1 })
    })
  }

  /** The namespace of `node`. */
  ns(node: string): string {
    const ns = this.#ns.get(node)
    if (ns === undefined) throw new Error(`no node ${node} in this topology`)
    return ns
  }

  /** The interface in `node`'s namespace that leads to `peer`. */
  interfaceName(node: string, peer: string): string {
    this.#link(node, peer)
    return `to-${peer}`
  }

  /** `node`'s IPv4 address on its link to `peer`. */
  address(node: string, peer: string): string {
    const link = this.#link(node, peer)
    return `10.77.${link.subnet}.${link.a === node ? 1 : 2}`
  }

  /** Runs `ip` inside `node`'s namespace (`ip -n <ns> …`), synchronously. */
  ip(node: string, args: readonly string[]): string {
    return ip(['-n', this.ns(node), ...args])
  }

  /** Runs a short command inside `node`'s namespace and returns its stdout. */
  exec(node: string, cmd: string, args: readonly string[], timeoutMs = 10_000): string {
    return execFileSync('ip', ['netns', 'exec', this.ns(node), cmd, ...args], {
      encoding: 'utf8',
      timeout: timeoutMs,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
  }

  /** Takes the link between `a` and `b` down, on both ends. */
  linkDown(a: string, b: string): void {
    this.ip(a, ['link', 'set', 'dev', this.interfaceName(a, b), 'down'])
    this.ip(b, ['link', 'set', 'dev', this.interfaceName(b, a), 'down'])
  }

  /** Brings the link between `a` and `b` back up, on both ends. */
  linkUp(a: string, b: string): void {
    this.ip(a, ['link', 'set', 'dev', this.interfaceName(a, b), 'up'])
    this.ip(b, ['link', 'set', 'dev', this.interfaceName(b, a), 'up'])
  }

  /** Starts `cmd args` in `node`'s namespace; it is killed by {@link destroy}. */
  spawn(node: string, cmd: string, args: readonly string[], options: SpawnOptions = {}): NsProcess {
    if (this.#destroyed) throw new Error('this topology was destroyed')
    const proc = spawnIn(this.ns(node), cmd, args, options, node)
    this.#processes.add(proc)
    void proc.exited.then(() => this.#processes.delete(proc))
    return proc
  }

  /** Creates the namespaces and links. Called by {@link createTopology}. */
  build(): void {
    for (const node of this.nodes) {
      ip(['netns', 'add', this.ns(node)])
      this.ip(node, ['link', 'set', 'dev', 'lo', 'up'])
      // The default in a new namespace, set anyway: a relay must be Talken, never the kernel.
      this.exec(node, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=0'])
    }
    for (const { a, b } of this.#links) {
      const ifA = this.interfaceName(a, b)
      const ifB = this.interfaceName(b, a)
      // Both ends are born inside their namespaces: nothing appears in the machine's own.
      this.ip(a, ['link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB, 'netns', this.ns(b)])
      this.ip(a, ['addr', 'add', `${this.address(a, b)}/24`, 'dev', ifA])
      this.ip(b, ['addr', 'add', `${this.address(b, a)}/24`, 'dev', ifB])
      this.ip(a, ['link', 'set', 'dev', ifA, 'up'])
      this.ip(b, ['link', 'set', 'dev', ifB, 'up'])
    }
  }

  /** Kills every process started here (SIGTERM, then SIGKILL), then deletes the namespaces. Idempotent. */
  async destroy(graceMs = 3_000): Promise<void> {
    if (this.#destroyed) return
    await Promise.all([...this.#processes].map((p) => p.stop(graceMs)))
    this.destroySync()
  }

  /** Kills what is left with SIGKILL and deletes the namespaces, synchronously (for exit handlers). */
  destroySync(): void {
    if (this.#destroyed) return
    this.#destroyed = true
    live.delete(this)
    for (const proc of this.#processes) proc.kill('SIGKILL')
    // Deleting a namespace removes its veths; a namespace a dying process still holds goes when
    // the process does.
    for (const ns of this.#ns.values()) {
      try {
        ip(['netns', 'del', ns])
      } catch {
        // not created (build failed part way) or already gone
      }
    }
  }

  #link(node: string, peer: string): Link {
    const link = this.#links.find((l) => (l.a === node && l.b === peer) || (l.a === peer && l.b === node))
    if (link === undefined) throw new Error(`no link ${node}–${peer}`)
    return link
  }
}

// The exit hooks need to find every live topology of this process, whichever test made it:
// this registry is the one piece of module state, and it holds only what must be torn down.
const live = new Set<Topology>()
let topologies = 0
let hooked = false

/** Builds namespaces and veth links for `links` (see the file comment). Destroy it when done. */
export function createTopology(links: readonly LinkSpec[]): Topology {
  hookExit()
  removeOrphans()
  const topology = new Topology(++topologies, links)
  live.add(topology)
  try {
    topology.build()
  } catch (err) {
    topology.destroySync()
    throw err
  }
  return topology
}

function hookExit(): void {
  if (hooked) return
  hooked = true
  const cleanup = (): void => {
    for (const topology of [...live]) topology.destroySync()
  }
  process.once('exit', cleanup)
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(signal, () => {
      cleanup()
      process.exit(code)
    })
  }
}

/** Deletes namespaces this harness made in processes that are gone (killed before they cleaned up). */
function removeOrphans(): void {
  let listing: string
  try {
    listing = ip(['netns', 'list'])
  } catch {
    return
  }
  for (const entry of listing.split('\n')) {
    const name = entry.split(' ')[0] ?? ''
    const match = /^tk(\d+)x\d+[A-Za-z0-9]+$/.exec(name)
    if (match === null) continue
    const pid = Number(match[1])
    if (pid === process.pid || isAlive(pid)) continue
    try {
      ip(['netns', 'del', name])
    } catch {
      // another process removed it first
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function firstLine(err: unknown): string {
  const stderr = (err as { stderr?: unknown }).stderr
  const text = typeof stderr === 'string' && stderr.trim() !== '' ? stderr : (err as Error).message
  return text.trim().split('\n')[0] ?? ''
}
