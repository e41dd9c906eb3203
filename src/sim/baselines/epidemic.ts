/**
 * Epidemic routing (Vahdat and Becker, "Epidemic Routing for Partially-Connected Ad Hoc
 * Networks", Duke CS-2000-06), as The ONE simulator implements it (`EpidemicRouter.java`): every
 * encounter copies every message the neighbour lacks, deliverable ones first, the rest in random
 * order; drop-oldest buffer; copies live until their lifetime ends; a node receives each message
 * at most once (the OFFER handshake of dtn-router.ts). The upper bound on delivery that flooding
 * can reach, at the highest cost; its latency is flooding's plus one offer round trip per hop.
 */
import type { RouterFactory } from '../../mesh/router.ts'
import type { BaselineStore } from './baseline-store.ts'
import { type DtnOptions, type DtnPolicy, DtnRouter } from './dtn-router.ts'

/** The epidemic policy: relay everything to everyone who lacks it. */
export const EPIDEMIC_POLICY: DtnPolicy = {
  summaries: true,
  relays: true,
  initialCopies: 1,
  relayable: () => true,
  copiesGiven: (copies) => copies,
  copiesKept: (copies) => copies,
  dropWhenDelivered: false,
  splitsCopies: false,
}

/**
 * A factory of epidemic routers over {@link BaselineStore}s.
 *
 * @example
 * const entry = defineRouter({ factory: createEpidemicRouter(), makeStore: () => createBaselineStore() })
 */
export function createEpidemicRouter(options: DtnOptions = {}): RouterFactory<BaselineStore> {
  return (init) => new DtnRouter(init, EPIDEMIC_POLICY, options)
}
