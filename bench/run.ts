/**
 * Benchmark dispatcher: `node --import tsx bench/run.ts <name> [--json]`
 * (or `npm run bench -- <name> --json`). Each bench compares Talken against a baseline measured in
 * the same run; `--json` prints one machine-readable line. Unknown names exit with status 2.
 */
import { cryptoBench } from './crypto.ts'
import { netBench } from './net.ts'
import { relayBench } from './relay.ts'
import { roomLogBench } from './room-log.ts'
import { storeBench } from './store.ts'

/** The benchmarks by name. */
const BENCHES: Readonly<Record<string, (opts: { json: boolean }) => Promise<object>>> = {
  crypto: cryptoBench,
  net: netBench,
  relay: relayBench,
  'room-log': roomLogBench,
  store: storeBench,
}

const USAGE = `usage: bench/run.ts <${Object.keys(BENCHES).join('|')}> [--json]`

async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json')
  const names = argv.filter((a) => !a.startsWith('-'))
  const unknownFlags = argv.filter((a) => a.startsWith('-') && a !== '--json')
  const name = names[0]
  const bench = name === undefined ? undefined : BENCHES[name]
  if (bench === undefined || names.length !== 1 || unknownFlags.length > 0) {
    console.error(name === undefined || bench !== undefined ? USAGE : `unknown bench "${name}"\n${USAGE}`)
    return 2
  }
  await bench({ json })
  return 0
}

process.exitCode = await main(process.argv.slice(2))
