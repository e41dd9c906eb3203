/**
 * The real CLI inside network namespaces: one `talken daemon` per node, each with its own
 * `TALKEN_HOME`, and `talken --json …` commands run in the node's namespace. Shared by the
 * namespace tests that drive daemons (test/netns/daemon-line.test.ts, rooms-line.test.ts).
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import type { NsProcess, Topology } from './netns.ts'
import type { makeHome } from './nodes.ts'

const root = new URL('../..', import.meta.url).pathname
const bin = join(root, 'bin', 'talken.js')
/** Bound on any one wait for the mesh (discovery, routes, delivery). */
export const MESH_TIMEOUT_MS = 30_000

/** Daemons and homes of named nodes in a topology. */
export class NsCluster {
  readonly homes = new Map<string, ReturnType<typeof makeHome>>()
  readonly daemons = new Map<string, NsProcess>()
  topology: Topology | undefined

  home(name: string): string {
    const h = this.homes.get(name)
    if (h === undefined) throw new Error(`no home for ${name}`)
    return h.home
  }

  env(name: string): Record<string, string> {
    return { TALKEN_HOME: this.home(name), TALKEN_PASSPHRASE: '' }
  }

  topo(): Topology {
    if (this.topology === undefined) throw new Error('no topology')
    return this.topology
  }

  daemon(name: string): NsProcess {
    const proc = this.daemons.get(name)
    if (proc === undefined) throw new Error(`no daemon for ${name}`)
    return proc
  }

  /** Starts `talken daemon` for `name` in its namespace and waits for its ready line. */
  async startDaemon(name: string, extra: readonly string[] = []): Promise<{ addresses: string[] }> {
    const level = process.env.NETNS_LOG_LEVEL ?? 'info'
    const proc = this.topo().spawn(
      name,
      process.execPath,
      [bin, '--json', 'daemon', '--log-level', level, ...extra],
      {
        cwd: root,
        env: this.env(name),
      },
    )
    this.daemons.set(name, proc)
    return proc.waitFor(
      (l) => {
        if (l.stream !== 'stdout' || !l.text.startsWith('{')) return undefined
        const e = JSON.parse(l.text) as { event?: string; addresses?: string[] }
        return e.event === 'ready' ? { addresses: e.addresses ?? [] } : undefined
      },
      MESH_TIMEOUT_MS,
      0,
      'the ready line',
    )
  }

  /** Runs `talken --json …args` for `name`, inside its namespace; resolves with the parsed output. */
  cli<T>(name: string, args: readonly string[], timeoutMs = 20_000): Promise<T> {
    const started = Date.now()
    return new Promise((resolve, reject) => {
      execFile(
        'ip',
        ['netns', 'exec', this.topo().ns(name), process.execPath, bin, '--json', ...args],
        { cwd: root, env: { ...process.env, ...this.env(name) }, timeout: timeoutMs, encoding: 'utf8' },
        (err, stdout, stderr) => {
          if (err) {
            reject(
              new Error(`talken ${args.join(' ')} (${name}) failed: ${err.message}\n${stdout}\n${stderr}`),
            )
            return
          }
          if (process.env.NETNS_VERBOSE) {
            process.stderr.write(
              `[${name} cli] talken ${args.join(' ')} (${Date.now() - started} ms): ${stdout.trim()}\n`,
            )
          }
          try {
            resolve(JSON.parse(stdout) as T)
          } catch {
            reject(new Error(`talken ${args.join(' ')} (${name}) printed no JSON:\n${stdout}\n${stderr}`))
          }
        },
      )
    })
  }

  /** Stops every daemon, removes the namespaces and the homes. */
  async destroy(): Promise<void> {
    try {
      await Promise.all([...this.daemons.values()].map((p) => p.stop(5_000)))
      await this.topology?.destroy()
    } finally {
      for (const h of this.homes.values()) h.remove()
    }
  }
}

/** Polls `check` until it returns true; rejects after `timeoutMs` with what it last saw. */
export async function eventually(
  check: () => Promise<boolean>,
  timeoutMs: number,
  what: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}
