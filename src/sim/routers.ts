/**
 * The routers the simulator can run, by name. Each entry pairs a {@link RouterFactory} with the
 * function that creates one node's store: the simulator calls `makeStore()` once per node and
 * hands that same store to every router it creates for the node (again after churn).
 *
 * Adding a router is one line:
 * ```ts
 * talken: defineRouter({ factory: createMeshRouter, makeStore: () => createMemoryStore() }),
 * ```
 */
import { createMeshRouter } from '../mesh/mesh-core.ts'
import type { RouterFactory } from '../mesh/router.ts'
import { createMemoryStore } from '../store/memory-store.ts'
import { createBaselineStore } from './baselines/baseline-store.ts'
import { createDirectRouter } from './baselines/direct.ts'
import { createEpidemicRouter } from './baselines/epidemic.ts'
import { createSprayAndWaitRouter } from './baselines/spray-and-wait.ts'

/** A router kind the simulator can host. */
export interface RouterEntry {
  readonly factory: RouterFactory<unknown>
  readonly makeStore: () => unknown
}

/** Pairs a factory with its store maker, checking that their store types agree. */
export function defineRouter<S>(entry: {
  readonly factory: RouterFactory<S>
  readonly makeStore: () => S
}): RouterEntry {
  return entry as unknown as RouterEntry
}

/** Every registered router, in the order results are reported. */
export const ROUTERS: Readonly<Record<string, RouterEntry>> = {
  talken: defineRouter({ factory: createMeshRouter, makeStore: () => createMemoryStore() }),
  epidemic: defineRouter({ factory: createEpidemicRouter(), makeStore: () => createBaselineStore() }),
  direct: defineRouter({ factory: createDirectRouter(), makeStore: () => createBaselineStore() }),
  sprayAndWait: defineRouter({
    factory: createSprayAndWaitRouter({ copies: 16, binary: true }),
    makeStore: () => createBaselineStore(),
  }),
}
