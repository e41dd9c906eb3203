/**
 * How the CLI speaks: human text by default, one JSON document under `--json`, and errors as one
 * line (`talken: …`) or `{"error":{"code":…,"message":…}}` with a non-zero exit code.
 */
import { TalkenError } from '../errors.ts'

/** Exit codes: 1 for a failed operation, 2 for a usage error. */
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2

/** Where the CLI writes; injected so that tests can capture it. */
export interface Output {
  readonly json: boolean
  out(text: string): void
  err(text: string): void
}

/** Output on the process's stdout and stderr. */
export function processOutput(json: boolean): Output {
  return {
    json,
    out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
    err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
  }
}

/** Prints `value` as JSON under `--json`, else the human text `human()` returns. */
export function emit(output: Output, value: unknown, human: () => string): void {
  output.out(output.json ? JSON.stringify(value) : human())
}

/** Converts anything thrown into a TalkenError (unexpected errors keep their message). */
export function asTalkenError(err: unknown): TalkenError {
  if (err instanceof TalkenError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new TalkenError('io_failed', `unexpected failure: ${message}`, { cause: err })
}

/** Reports an error and returns the exit code to use. */
export function report(output: Output, err: unknown, exitCode = EXIT_FAILURE): number {
  const e = asTalkenError(err)
  if (output.json) output.out(JSON.stringify({ error: e.toJSON() }))
  else output.err(`talken: ${e.message.split('\n')[0]}`)
  if (process.env.TALKEN_DEBUG && e.cause) output.err(String((e.cause as Error).stack ?? e.cause))
  return exitCode
}

/** ISO time for JSON output. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString()
}
