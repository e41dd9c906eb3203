/**
 * Helpers for the simulator tests: hand-built scenario inputs (a few nodes, scripted contacts,
 * churn and messages) and a probe router that records what it is given and sends what it is told.
 */
import { fileURLToPath } from 'node:url'
import type {
  Delivery,
  NeighbourId,
  Router,
  RouterFactory,
  RouterHost,
  RouterLoad,
} from '../../src/mesh/router.ts'
import { DEFAULT_LINK, type LinkParams } from '../../src/sim/link-model.ts'
import { Rng } from '../../src/sim/rng.ts'
import { InputKind, ScheduleBuilder } from '../../src/sim/schedule.ts'
import type { ScenarioInput } from '../../src/sim/simulator.ts'
import { makePlan, type PlannedMessage } from '../../src/sim/traffic.ts'

/** A scripted contact: at `t` ms the link a–b goes up or down. */
export type Contact = readonly [t: number, state: 'up' | 'down', a: number, b: number]
/** A scripted churn event: at `t` ms node `a` leaves or returns. */
export type Churn = readonly [t: number, what: 'leave' | 'return', a: number]

/** Options of {@link tinyInput}. */
export interface TinyOptions {
  readonly nodes: number
  readonly durationMs: number
  readonly contacts?: readonly Contact[]
  readonly churn?: readonly Churn[]
  readonly messages?: readonly (Partial<PlannedMessage> & { src: number; dst: number; createdAt: number })[]
  readonly link?: Partial<LinkParams>
  readonly seed?: number
}

/** A scenario input built by hand. */
export function tinyInput(o: TinyOptions): ScenarioInput {
  const root = Rng.fromSeed(o.seed ?? 1)
  const b = new ScheduleBuilder()
  for (const [t, state, x, y] of o.contacts ?? [])
    b.add(t, state === 'up' ? InputKind.linkUp : InputKind.linkDown, x, y)
  for (const [t, what, x] of o.churn ?? []) b.add(t, what === 'leave' ? InputKind.leave : InputKind.return, x)
  const messages = (o.messages ?? []).map((m) => ({ size: 100, ttlMs: o.durationMs * 10, ...m }))
  const link = { ...DEFAULT_LINK, ...o.link }
  const tags = root.fork('tags')
  return {
    name: 'tiny',
    nodes: o.nodes,
    durationMs: o.durationMs,
    // Node i's tag starts with byte i, so probes can tell who they are.
    tags: Array.from({ length: o.nodes }, (_, i) => {
      const tag = tags.fill(new Uint8Array(16))
      tag[0] = i
      return tag
    }),
    schedule: b.build(),
    messages: makePlan(messages),
    link: () => link,
    info: {},
  }
}

/** What a probe saw. */
export interface ProbeLog {
  readonly node: number
  readonly events: string[]
  readonly received: { time: number; from: NeighbourId; length: number; frame: Uint8Array }[]
  host: RouterHost
}

/** Behaviour of probe routers, per node. */
export interface ProbeScript {
  /** Called when a link comes up at this node. */
  onLinkUp?(log: ProbeLog, neighbour: NeighbourId, mtu: number): void
  onTimer?(log: ProbeLog): void
  onReceive?(log: ProbeLog, neighbour: NeighbourId, frame: Uint8Array): void
}

/**
 * A factory of probe routers: each records its events in a {@link ProbeLog} (pushed to `logs`)
 * and runs `script`. The store is ignored.
 */
export function probeFactory(logs: ProbeLog[], script: ProbeScript = {}): RouterFactory {
  return ({ host, self }) => {
    const log: ProbeLog = { node: self[0]!, events: [], received: [], host }
    logs.push(log)
    const router: Router = {
      linkUp(n, mtu) {
        log.events.push(`${host.now()} up ${n} ${mtu}`)
        script.onLinkUp?.(log, n, mtu)
      },
      linkDown(n) {
        log.events.push(`${host.now()} down ${n}`)
      },
      receive(n, frame) {
        log.events.push(`${host.now()} rx ${n} ${frame.length}`)
        log.received.push({ time: host.now(), from: n, length: frame.length, frame })
        script.onReceive?.(log, n, frame)
      },
      timer() {
        log.events.push(`${host.now()} timer`)
        script.onTimer?.(log)
      },
      send() {
        log.events.push(`${host.now()} send`)
        return `probe-${log.node}-${log.events.length}`
      },
      load(): RouterLoad {
        return { storedMessages: 0, storedBytes: 0 }
      },
    }
    return router
  }
}

/** The Helsinki chat trace (The ONE), kept with the tests (test/fixtures/helsinki-chat/README.md). */
export const HELSINKI = fileURLToPath(new URL('../fixtures/helsinki-chat', import.meta.url))

/** A delivery seen through `onDeliver`. */
export interface SeenDelivery {
  readonly node: number
  readonly id: string
  readonly time: number
  readonly payload: Uint8Array
  readonly hops: number | undefined
}

/** Deliveries collected through `onDeliver`. */
export function deliveries(): {
  list: SeenDelivery[]
  onDeliver: (node: number, d: Delivery, now: number) => void
} {
  const list: SeenDelivery[] = []
  return {
    list,
    onDeliver: (node, d, time) =>
      list.push({ node, id: d.id, time, payload: d.payload.slice(), hops: d.hops }),
  }
}
