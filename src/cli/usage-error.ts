/**
 * Usage errors: a command line that asks for something impossible (`--wait abc`, `--limit 0`),
 * found by Talken rather than by commander. They are `invalid_argument` like any bad argument,
 * and exit with status 2 like commander's own (docs/errors.md), so that a script can tell "you
 * typed it wrong" from "it failed".
 */
import { isTalkenError, TalkenError } from '../errors.ts'

/** An `invalid_argument` error that the CLI reports as a usage error (exit status 2). */
export function usageError(message: string, options: { cause?: unknown } = {}): TalkenError {
  return new TalkenError('invalid_argument', message, { ...options, details: { usage: true } })
}

/** Whether `err` is a usage error (made by {@link usageError}). */
export function isUsageError(err: unknown): boolean {
  return isTalkenError(err, 'invalid_argument') && err.details?.usage === true
}
