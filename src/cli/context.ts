/**
 * What every command receives: the global options and the output.
 */
import { resolveHome } from '../node/data-dir.ts'
import type { Output } from './output.ts'
import { usageError } from './usage-error.ts'

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

/**
 * Resolves the data directory from `--home`, `$TALKEN_HOME` or the default. An empty `--home` is
 * a usage error (resolveHome refuses it too, as any caller's bad argument).
 */
export function homeFrom(options: GlobalOptions): string {
  if (options.home === '') {
    throw usageError('--home is empty: give the data directory, or leave --home out')
  }
  return resolveHome(options.home)
}
