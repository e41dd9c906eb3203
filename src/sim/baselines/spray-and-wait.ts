/**
 * Spray and Wait (Spyropoulos, Psounis and Raghavendra, "Spray and Wait: An Efficient Routing
 * Scheme for Intermittently Connected Mobile Networks", WDTN 2005), as The ONE simulator
 * implements it (`SprayAndWaitRouter.java`). A message starts with L copies. Binary mode: a node
 * with n > 1 copies meeting a node without the message gives it ⌈n/2⌉ and keeps ⌊n/2⌋; with one
 * copy it waits to meet the destination. Standard mode hands out single copies. As in The ONE,
 * the sender's count is also reduced after a transfer to the destination.
 */
import { TalkenError } from '../../errors.ts'
import type { RouterFactory } from '../../mesh/router.ts'
import type { BaselineStore } from './baseline-store.ts'
import { type DtnOptions, type DtnPolicy, DtnRouter } from './dtn-router.ts'

/** Options of {@link createSprayAndWaitRouter}. */
export interface SprayAndWaitOptions extends DtnOptions {
  /** L, the copies a message starts with. Default 16. */
  readonly copies?: number
  /** Binary spraying (default) or standard (one copy per handover). */
  readonly binary?: boolean
}

/** The spray-and-wait policy for `copies` initial copies. */
export function sprayAndWaitPolicy(copies: number, binary: boolean): DtnPolicy {
  if (!Number.isInteger(copies) || copies < 1 || copies > 0xffff) {
    throw new TalkenError('invalid_argument', 'spray-and-wait copies must be an integer in [1, 65535]')
  }
  return {
    summaries: true,
    relays: true,
    initialCopies: copies,
    relayable: (m) => m.copies > 1,
    copiesGiven: (n) => (binary ? Math.ceil(n / 2) : 1),
    copiesKept: (n) => (binary ? Math.floor(n / 2) : Math.max(0, n - 1)),
    dropWhenDelivered: false,
    splitsCopies: true,
  }
}

/**
 * A factory of spray-and-wait routers over {@link BaselineStore}s.
 *
 * @example
 * const entry = defineRouter({ factory: createSprayAndWaitRouter({ copies: 6 }), makeStore: () => createBaselineStore() })
 */
export function createSprayAndWaitRouter(options: SprayAndWaitOptions = {}): RouterFactory<BaselineStore> {
  const policy = sprayAndWaitPolicy(options.copies ?? 16, options.binary ?? true)
  return (init) => new DtnRouter(init, policy, options)
}
