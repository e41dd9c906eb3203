/**
 * What every command receives: the global options and the output.
 */
import { resolveHome } from '../node/data-dir.ts'
import type { Output } from './output.ts'

/** Options every command accepts. */
export interface GlobalOptions {
  home?: string
  json?: boolean
}

/** Context built from the global options. */
export interface CommandContext {
  readonly home: string
  readonly output: Output
  /** Unix milliseconds; the one clock of a CLI run. */
  readonly now: () => number
}

/** Resolves the data directory from `--home`, `$TALKEN_HOME` or the default. */
export function homeFrom(options: GlobalOptions): string {
  return resolveHome(options.home)
}
