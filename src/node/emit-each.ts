/**
 * Emitting to application listeners without letting them reach the node: `emit` stops at the
 * first listener that throws and throws on into its caller; here every listener is called, and
 * what they threw comes back for the caller to report.
 */
import type { EventEmitter } from 'node:events'

/** Calls each listener of `event` in turn, as `emit` would; returns what any of them threw. */
export function emitToEach(emitter: EventEmitter, event: string, args: readonly unknown[]): unknown[] {
  const thrown: unknown[] = []
  // A copy, with `once` listeners still wrapped so that they remove themselves, as `emit` does.
  for (const listener of emitter.rawListeners(event) as Array<(...a: unknown[]) => unknown>) {
    try {
      listener.apply(emitter, args as unknown[])
    } catch (err) {
      thrown.push(err)
    }
  }
  return thrown
}

/** One error for what {@link emitToEach} returned: undefined for none, itself for one. */
export function oneError(thrown: readonly unknown[]): unknown {
  if (thrown.length <= 1) return thrown[0]
  return new AggregateError(thrown, `${thrown.length} listeners threw`)
}
