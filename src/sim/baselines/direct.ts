/**
 * Direct delivery, as The ONE simulator implements it (`DirectDeliveryRouter.java`): the source
 * keeps its message and hands it over only when it meets the destination itself. No relaying,
 * one transmission per delivered message: the lower bound on cost and on delivery.
 */
import type { RouterFactory } from '../../mesh/router.ts'
import type { BaselineStore } from './baseline-store.ts'
import { type DtnOptions, type DtnPolicy, DtnRouter } from './dtn-router.ts'

/** The direct-delivery policy: never relay; forget a message once its destination has it. */
export const DIRECT_POLICY: DtnPolicy = {
  summaries: false,
  relays: false,
  initialCopies: 1,
  relayable: () => false,
  copiesGiven: (copies) => copies,
  copiesKept: (copies) => copies,
  dropWhenDelivered: true,
  splitsCopies: false,
}

/**
 * A factory of direct-delivery routers over {@link BaselineStore}s.
 *
 * @example
 * const entry = defineRouter({ factory: createDirectRouter(), makeStore: () => createBaselineStore() })
 */
export function createDirectRouter(options: DtnOptions = {}): RouterFactory<BaselineStore> {
  return (init) => new DtnRouter(init, DIRECT_POLICY, options)
}
