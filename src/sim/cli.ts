import { parseArgs } from 'node:util'
import { isMainModule } from '../cli/main-module.ts'
import { TalkenError } from '../errors.ts'
import type { LinkParams } from './link-model.ts'
import type { RouterMetrics } from './metrics.ts'
import { type RoomsReport, runRooms } from './rooms.ts'
import { ROUTERS, type RouterEntry } from './routers.ts'
import { buildScenario, SCENARIOS, type ScenarioName } from './scenarios.ts'
import { type PROGRESS_EVERY, type ScenarioInput, type SimProgress, simulate } from './simulator.ts'

/** Options of {@link runScenario}. */
export interface RunOptions {
  readonly scenario: ScenarioName
  readonly nodes: number
  readonly seed: number
  /** Router names to run, in order (default: every registered router). */
  readonly routers?: readonly string[]
  readonly traceDir?: string
  readonly messages?: number
  readonly durationSec?: number
  readonly link?: Partial<LinkParams>
  /** Per-router event budget; a run that hits it reports `completed: false`. */
  readonly maxEvents?: number
  /** Rethrow router exceptions instead of counting them. */
  readonly strict?: boolean
  /** Routers to choose from (default {@link ROUTERS}). */
  readonly registry?: Readonly<Record<string, RouterEntry>>
  /** How far each router's run is, now and then (see {@link SimulateOptions.onProgress}). */
  readonly onProgress?: (router: string, progress: SimProgress) => void
  /** Events between two progress reports (default {@link PROGRESS_EVERY}). */
  readonly progressEvery?: number
}

/** The fixed fields of a report; each router's {@link RouterMetrics} sits beside them under its name. */
export interface SimReportBase {
  readonly scenario: string
  readonly nodes: number
  readonly seed: number
  /** Attack scenario: the same routers on the same seed with the attacker behaving. */
  readonly withoutAttacker?: Readonly<Record<string, RouterMetrics>>
  readonly scenarioInfo: Readonly<Record<string, number | string>>
  readonly wallSeconds: number
  readonly peakRssMB: number
  /** Process CPU time (user + system) of the run: steadier than wall time on a shared machine. */
  readonly cpuSeconds: number
}

/** A report: the base fields plus one {@link RouterMetrics} per router name. */
export type SimReport = SimReportBase & { readonly [router: string]: unknown }

/** The metrics of `router` in `report`; throws `not_found` when that router did not run. */
export function routerMetrics(report: SimReport, router: string): RouterMetrics {
  const m = report[router]
  if (typeof m !== 'object' || m === null || !('deliveryRatio' in m)) {
    throw new TalkenError('not_found', `no results for router "${router}"`)
  }
  return m as RouterMetrics
}

function runAll(
  input: ScenarioInput,
  names: readonly string[],
  o: RunOptions,
  label = (name: string) => name,
): Record<string, RouterMetrics> {
  const registry = o.registry ?? ROUTERS
  const out: Record<string, RouterMetrics> = {}
  for (const name of names) {
    const report = o.onProgress
    out[name] = simulate(input, registry[name]!, {
      seed: o.seed,
      strict: o.strict,
      maxEvents: o.maxEvents,
      progressEvery: o.progressEvery,
      ...(report === undefined ? {} : { onProgress: (p: SimProgress) => report(label(name), p) }),
    })
  }
  return out
}

function cpuSeconds(usage: NodeJS.CpuUsage): number {
  return Math.round((usage.user + usage.system) / 10_000) / 100
}

/**
 * Builds the scenario and runs each router over it.
 *
 * @example
 * const report = await runScenario({ scenario: 'line', nodes: 10, seed: 1, routers: ['epidemic'] })
 * routerMetrics(report, 'epidemic').deliveryRatio // 1
 */
export async function runScenario(o: RunOptions): Promise<SimReport> {
  const started = performance.now()
  const cpuStart = process.cpuUsage()
  const registry = o.registry ?? ROUTERS
  const names = o.routers ?? Object.keys(registry)
  if (names.length === 0) throw new TalkenError('invalid_argument', 'no routers to run')
  for (const name of names) {
    if (!Object.hasOwn(registry, name)) {
      throw new TalkenError(
        'invalid_argument',
        `unknown router "${name}" (registered: ${Object.keys(registry).join(', ')})`,
      )
    }
  }
  const built = buildScenario({
    scenario: o.scenario,
    nodes: o.nodes,
    seed: o.seed,
    messages: o.messages,
    durationSec: o.durationSec,
    traceDir: o.traceDir,
    link: o.link,
  })
  const results = runAll(built.input, names, o)
  const without =
    built.withoutAttacker === undefined
      ? undefined
      : runAll(built.withoutAttacker, names, o, (name) => `${name} (without the attacker)`)
  return {
    scenario: o.scenario,
    nodes: built.input.nodes,
    seed: o.seed,
    ...results,
    ...(without === undefined ? {} : { withoutAttacker: without }),
    scenarioInfo: built.input.info,
    wallSeconds: Math.round((performance.now() - started) / 10) / 100,
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    cpuSeconds: cpuSeconds(process.cpuUsage(cpuStart)),
  }
}

// --- command line --------------------------------------------------------------------------------

const USAGE = `usage: npm run sim -- --scenario <${SCENARIOS.join('|')}> [--nodes N] [--seed S] [--json]
  [--routers a,b,…] [--trace DIR] [--messages M] [--duration SECONDS]
  [--latency MS] [--bandwidth BYTES_PER_S] [--loss P] [--mtu BYTES] [--max-events N] [--strict]
  [--progress]   (a progress line on stderr; on by default when stderr is a terminal)
       npm run sim -- --scenario rooms [--nodes N] [--seed S] [--members M] [--posts P] [--json]`

/** `parseArgs` with no positionals, its failures as `invalid_argument` with the usage. */
function flags(
  argv: readonly string[],
  options: Record<string, { type: 'string' | 'boolean' }>,
): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({ args: [...argv], strict: true, allowPositionals: false, options }).values
  } catch (err) {
    throw new TalkenError('invalid_argument', `${(err as Error).message}\n${USAGE}`)
  }
}

/** Parses the arguments of the rooms scenario (docs/simulator.md §rooms). */
export function parseRoomsCli(argv: readonly string[]): {
  options: { nodes: number; seed: number; members?: number; posts?: number }
  json: boolean
} {
  const values = flags(argv, {
    scenario: { type: 'string' },
    nodes: { type: 'string' },
    seed: { type: 'string' },
    members: { type: 'string' },
    posts: { type: 'string' },
    json: { type: 'boolean' },
  })
  const str = (k: string) => values[k] as string | undefined
  const members = integer('members', str('members'), 2)
  const posts = integer('posts', str('posts'), 1)
  return {
    json: values.json === true,
    options: {
      nodes: integer('nodes', str('nodes'), 2) ?? 1000,
      seed: integer('seed', str('seed'), 0) ?? 1,
      ...(members === undefined ? {} : { members }),
      ...(posts === undefined ? {} : { posts }),
    },
  }
}

function formatRooms(r: RoomsReport): string {
  const keys = [
    'deliveryRatio',
    'latencyP50',
    'latencyP95',
    'txPerPostPerMember',
    'upkeepPerPostPerMember',
    'duplicatesPerMember',
  ] as const
  const rows = [
    ['mode', ...keys],
    ...(['talken', 'flooding'] as const).map((m) => [m, ...keys.map((k) => String(r[m][k]))]),
  ]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)))
  const table = rows.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n')
  return `rooms: ${r.members} members in ${r.nodes} nodes, ${r.posts} posts, seed ${r.seed} (${r.wallSeconds} s wall, ${r.cpuSeconds} s CPU, ${r.peakRssMB} MB)\n${table}`
}

function integer(name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new TalkenError('invalid_argument', `--${name} must be an integer ≥ ${min}, got "${value}"`)
  }
  return n
}

function decimal(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new TalkenError('invalid_argument', `--${name} must be a number ≥ 0, got "${value}"`)
  }
  return n
}

/** Parses command-line arguments into {@link RunOptions} (and whether to print JSON). */
export function parseCli(argv: readonly string[]): { options: RunOptions; json: boolean; progress: boolean } {
  const values = flags(argv, {
    scenario: { type: 'string' },
    nodes: { type: 'string' },
    seed: { type: 'string' },
    json: { type: 'boolean' },
    trace: { type: 'string' },
    routers: { type: 'string' },
    messages: { type: 'string' },
    duration: { type: 'string' },
    latency: { type: 'string' },
    bandwidth: { type: 'string' },
    loss: { type: 'string' },
    mtu: { type: 'string' },
    'max-events': { type: 'string' },
    strict: { type: 'boolean' },
    progress: { type: 'boolean' },
  })
  const str = (k: string) => values[k] as string | undefined
  // `--trace DIR` alone means the trace scenario.
  const scenario = str('scenario') ?? (str('trace') === undefined ? undefined : 'trace')
  if (scenario === undefined || !(SCENARIOS as readonly string[]).includes(scenario)) {
    throw new TalkenError('invalid_argument', `--scenario must be one of ${SCENARIOS.join(', ')}\n${USAGE}`)
  }
  const link: { -readonly [K in keyof LinkParams]?: number } = {}
  const latency = decimal('latency', str('latency'))
  const bandwidth = decimal('bandwidth', str('bandwidth'))
  const loss = decimal('loss', str('loss'))
  const mtu = integer('mtu', str('mtu'), 1)
  if (latency !== undefined) link.latencyMs = latency
  if (bandwidth !== undefined) link.bandwidth = bandwidth
  if (loss !== undefined) link.loss = loss
  if (mtu !== undefined) link.mtu = mtu
  const routers = str('routers')
    ?.split(',')
    .map((r) => r.trim())
    .filter((r) => r !== '')
  return {
    json: values.json === true,
    progress: values.progress === true,
    options: {
      scenario: scenario as ScenarioName,
      nodes: integer('nodes', str('nodes'), 2) ?? 50,
      seed: integer('seed', str('seed'), 0) ?? 1,
      routers,
      traceDir: str('trace'),
      messages: integer('messages', str('messages'), 0),
      durationSec: decimal('duration', str('duration')),
      link,
      maxEvents: integer('max-events', str('max-events'), 1),
      strict: values.strict === true,
    },
  }
}

const COLUMNS: readonly (keyof RouterMetrics)[] = [
  'deliveryRatio',
  'latencyP50',
  'latencyP95',
  'txPerDelivered',
  'controlPerDelivered',
  'peakStoredPerNode',
  'duplicatesDelivered',
]

/** A human-readable table of a report. */
export function formatReport(report: SimReport): string {
  const rows = [['router', ...COLUMNS]]
  for (const [name, value] of Object.entries(report)) {
    if (typeof value !== 'object' || value === null || !('deliveryRatio' in value)) continue
    const m = value as RouterMetrics
    rows.push([name, ...COLUMNS.map((c) => String(m[c]))])
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  const table = rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')).join('\n')
  return `${report.scenario}, ${report.nodes} nodes, seed ${report.seed} (${report.wallSeconds} s wall, ${report.cpuSeconds} s CPU, ${report.peakRssMB} MB)\n${table}`
}

/**
 * A progress line on `out`, at most every 2 s of wall time: rewritten in place on a terminal,
 * one line each otherwise.
 */
function progressLine(out: NodeJS.WriteStream): {
  update: (router: string, p: SimProgress) => void
  done: () => void
} {
  const started = performance.now()
  let last = Number.NEGATIVE_INFINITY
  let shown = false
  return {
    update(router, p) {
      const now = performance.now()
      if (now - last < 2_000) return
      last = now
      const pct = p.durationMs > 0 ? Math.min(100, (100 * p.simulatedMs) / p.durationMs) : 100
      const line =
        `${router}: ${pct.toFixed(1)}% of the simulated time (${Math.round(p.simulatedMs / 1000)} of ` +
        `${Math.round(p.durationMs / 1000)} s), ${(p.events / 1e6).toFixed(1)} M events, ` +
        `${p.delivered} of ${p.sent} sent delivered, ${Math.round((now - started) / 1000)} s`
      out.write(out.isTTY ? `\r\x1b[K${line}` : `${line}\n`)
      shown = true
    },
    done() {
      if (shown && out.isTTY) out.write('\r\x1b[K')
    },
  }
}

/** Runs the command line; returns the exit code (0, 1 for a failure, 2 for a usage error). */
export async function main(argv: readonly string[]): Promise<number> {
  const json = argv.includes('--json')
  try {
    const at = argv.indexOf('--scenario')
    if (at >= 0 && argv[at + 1] === 'rooms') {
      const parsed = parseRoomsCli(argv)
      const report = runRooms(parsed.options)
      process.stdout.write(`${parsed.json ? JSON.stringify(report) : formatRooms(report)}\n`)
      return 0
    }
    const parsed = parseCli(argv)
    const progress = parsed.progress || process.stderr.isTTY ? progressLine(process.stderr) : undefined
    const report = await runScenario({ ...parsed.options, onProgress: progress?.update })
    progress?.done()
    process.stdout.write(`${parsed.json ? JSON.stringify(report) : formatReport(report)}\n`)
    return 0
  } catch (err) {
    const e =
      err instanceof TalkenError
        ? err
        : new TalkenError('io_failed', `unexpected failure: ${String(err)}`, { cause: err })
    if (json) process.stdout.write(`${JSON.stringify({ error: e.toJSON() })}\n`)
    else process.stderr.write(`talken sim: ${e.message}\n`)
    return e.code === 'invalid_argument' ? 2 : 1
  }
}

if (isMainModule(import.meta.url)) process.exitCode = await main(process.argv.slice(2))
