/**
 * The simulator's scale check: 10,000 nodes and 10,000 messages on `grid` and `rwp`, one child
 * process per (scenario, router) so that each peak RSS is its own. Prints one JSON line per run
 * and a summary line; the target is ≤ 120 s wall and < 4 GB per run on a 2-core machine.
 *
 * ```
 * node --import tsx bench/sim-scale.ts [--nodes 10000] [--messages M] [--scenarios grid,rwp]
 *   [--routers direct,sprayAndWait,epidemic] [--max-events N]
 * ```
 * Flooding (epidemic) cannot finish at this size: every message would be copied to every node
 * (10^8 copies). Give it `--max-events` to see how far it gets.
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '10000' },
    messages: { type: 'string' },
    routers: { type: 'string', default: 'direct,sprayAndWait' },
    scenarios: { type: 'string', default: 'grid,rwp' },
    'max-events': { type: 'string' },
  },
})
const root = fileURLToPath(new URL('..', import.meta.url))
const results: object[] = []
for (const scenario of values.scenarios.split(',')) {
  for (const router of values.routers.split(',')) {
    const args = ['--import', 'tsx', 'src/sim/cli.ts', '--scenario', scenario, '--nodes', values.nodes]
    args.push('--messages', values.messages ?? values.nodes, '--seed', '1', '--json', '--routers', router)
    if (values['max-events'] !== undefined) args.push('--max-events', values['max-events'])
    const child = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 })
    const report = child.status === 0 ? JSON.parse(child.stdout) : undefined
    const m = report?.[router]
    const line = {
      scenario,
      router,
      nodes: Number(values.nodes),
      messages: Number(values.messages ?? values.nodes),
      ok: child.status === 0,
      completed: m?.completed,
      simulatedSeconds: m?.simulatedSeconds,
      deliveryRatio: m?.deliveryRatio,
      txPerDelivered: m?.txPerDelivered,
      events: m?.events,
      wallSeconds: report?.wallSeconds,
      cpuSeconds: report?.cpuSeconds,
      peakRssMB: report?.peakRssMB,
      ...(child.status === 0 ? {} : { error: (child.stdout + child.stderr).slice(-500) }),
    }
    results.push(line)
    console.log(JSON.stringify(line))
  }
}
console.log(JSON.stringify({ bench: 'sim-scale', results: results.length }))
