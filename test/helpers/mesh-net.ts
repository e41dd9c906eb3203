/**
 * A tiny deterministic network of mesh cores for unit tests: a virtual clock, links with a fixed
 * latency, and manual link and node control. The full simulator (src/sim) does the same at scale.
 */

import type { MeshConfig } from '../../src/mesh/config.ts'
import { MeshCore } from '../../src/mesh/mesh-core.ts'
import type { Delivery, RouterHost, StateChange } from '../../src/mesh/router.ts'
import { createMemoryStore } from '../../src/store/memory-store.ts'
import type { Store } from '../../src/store/store.ts'
import { prng } from './prng.ts'

interface Event {
  at: number
  seq: number
  run: () => void
}

/** One node of the test network. */
export interface TestNode {
  readonly name: string
  readonly tag: Uint8Array
  /** Its store; a test may put a fresh one in while it is stopped (its data directory lost). */
  store: Store
  core: MeshCore | undefined
  readonly delivered: Delivery[]
  readonly states: StateChange[]
  /** When set, deliveries it returns a reason for are refused (as an application that cannot open them). */
  refuse?: ((d: Delivery) => string | undefined) | undefined
  /**
   * Set for a node that receives messages sent with {@link MeshNet.sendSealed}: the proof its
   * application hands back on delivery, as a real one finds it after opening the body.
   */
  proofOf?: ((d: Delivery) => Uint8Array | undefined) | undefined
  /** The same for the sender's tag (default: none, so no acknowledgement envelope is sent). */
  sourceOf?: ((d: Delivery) => Uint8Array | undefined) | undefined
  /** The same for the ack tag (default: none, so the acknowledgement envelope carries the secret). */
  ackTagOf?: ((d: Delivery) => Uint8Array | undefined) | undefined
  txData: number
  txControl: number
}

/** The body {@link MeshNet.sendSealed} sends: ack secret ‖ sender's tag ‖ ack tag ‖ text. */
export function sealedBody(
  ackSecret: Uint8Array,
  source: Uint8Array,
  ackTag: Uint8Array,
  text: string,
): Uint8Array {
  return new Uint8Array([...ackSecret, ...source, ...ackTag, ...new TextEncoder().encode(text)])
}

/** A deterministic network of mesh cores. */
export class MeshNet {
  now = 0
  #seq = 0
  readonly #events: Event[] = []
  readonly nodes = new Map<string, TestNode>()
  readonly #links = new Set<string>()
  readonly #random: () => number
  readonly latencyMs: number
  readonly #config: Partial<MeshConfig>
  /** Frames in flight may be dropped with this probability. */
  loss = 0
  /** Nodes whose frames go nowhere (those of a step that will be undone, say). */
  readonly muted = new Set<string>()
  /** Every frame transmitted, when recording. */
  readonly frames: { from: string; to: string; frame: Uint8Array }[] = []
  record = false

  constructor(options: { seed?: number; latencyMs?: number; config?: Partial<MeshConfig> } = {}) {
    this.#random = prng(options.seed ?? 1)
    this.latencyMs = options.latencyMs ?? 5
    this.#config = options.config ?? {}
  }

  #at(at: number, run: () => void): void {
    this.#events.push({ at, seq: this.#seq++, run })
    this.#events.sort((a, b) => a.at - b.at || a.seq - b.seq)
  }

  /** Adds a node (tag derived from its name; a fresh memory store unless given) and starts its core. */
  add(name: string, options: { store?: Store } = {}): TestNode {
    const tag = new Uint8Array(16)
    Buffer.from(name.padEnd(16, '.')).copy(Buffer.from(tag.buffer), 0, 0, 16)
    const node: TestNode = {
      name,
      tag,
      store: options.store ?? createMemoryStore(),
      core: undefined,
      delivered: [],
      states: [],
      txData: 0,
      txControl: 0,
    }
    this.nodes.set(name, node)
    this.start(name)
    return node
  }

  /** (Re)starts a node's core over its existing store. */
  start(name: string): void {
    const node = this.#node(name)
    const host: RouterHost = {
      now: () => this.now,
      random: this.#random,
      transmit: (to, frame, kind = 'data') => {
        if (kind === 'data') node.txData++
        else node.txControl++
        const key = this.#key(name, to)
        if (!this.#links.has(key) || this.muted.has(name)) return
        if (this.loss > 0 && this.#random() < this.loss) return
        const copy = new Uint8Array(frame)
        if (this.record) this.frames.push({ from: name, to, frame: copy })
        this.#at(this.now + this.latencyMs, () => {
          if (this.#links.has(key)) this.nodes.get(to)?.core?.receive(name, copy)
        })
      },
      deliver: (d) => {
        const refused = node.refuse?.(d)
        if (refused !== undefined) return { conversation: '.refused', body: new Uint8Array(0), refused }
        node.delivered.push(d)
        // Delivered inside the core's transaction: undone with it (a full disk, say).
        node.store.onRollback(() => node.delivered.splice(node.delivered.lastIndexOf(d), 1))
        if (node.proofOf === undefined) return undefined
        const proof = node.proofOf(d)
        const source = node.sourceOf?.(d)
        const ackTag = node.ackTagOf?.(d)
        return {
          conversation: 'in',
          body: d.payload,
          ...(proof ? { ackSecret: proof } : {}),
          ...(source ? { source } : {}),
          ...(ackTag ? { ackTag } : {}),
        }
      },
      stateChanged: (c) => node.states.push(c),
      wakeAt: (t) =>
        this.#at(Math.max(t, this.now), () => {
          if (node.core === core) core.timer()
        }),
      log: () => {},
    }
    const core = new MeshCore({ self: node.tag, host, store: node.store, config: this.#config })
    node.core = core
  }

  /** Stops a node: its links go down and its core is discarded (its store stays). */
  stop(name: string): void {
    for (const key of [...this.#links]) {
      const [a, b] = key.split('|') as [string, string]
      if (a === name || b === name) this.unlink(a, b)
    }
    this.#node(name).core = undefined
  }

  #node(name: string): TestNode {
    const n = this.nodes.get(name)
    if (!n) throw new Error(`no node ${name}`)
    return n
  }

  #key(a: string, b: string): string {
    return `${a}|${b}`
  }

  /** Brings a link up in both directions. */
  link(a: string, b: string, mtu = 65_600): void {
    this.#links.add(this.#key(a, b))
    this.#links.add(this.#key(b, a))
    this.#node(a).core?.linkUp(b, mtu)
    this.#node(b).core?.linkUp(a, mtu)
  }

  /** Takes a link down in both directions. */
  unlink(a: string, b: string): void {
    if (!this.#links.delete(this.#key(a, b))) return
    this.#links.delete(this.#key(b, a))
    this.#node(a).core?.linkDown(b)
    this.#node(b).core?.linkDown(a)
  }

  isLinked(a: string, b: string): boolean {
    return this.#links.has(this.#key(a, b))
  }

  /** Runs events until `until` (virtual ms) or until nothing is left, bounded by `maxEvents`. */
  run(untilMs: number, maxEvents = 1_000_000): void {
    let n = 0
    while (this.#events.length > 0 && this.#events[0]!.at <= untilMs && n++ < maxEvents) {
      const e = this.#events.shift()!
      this.now = Math.max(this.now, e.at)
      e.run()
    }
    this.now = Math.max(this.now, untilMs)
  }

  /** Sends `text` from `from` to `to`; returns the message ID. */
  send(from: string, to: string, text: string, ttlMs?: number): string {
    return this.#node(from).core!.send(
      this.#node(to).tag,
      new TextEncoder().encode(text),
      ttlMs ? { ttlMs } : {},
    )
  }

  /**
   * Sends `text` with its ack secret, the sender's tag and the ack tag inside the payload
   * ({@link sealedBody}), as the node does under end-to-end encryption: the mesh itself writes
   * none of them on the wire. Returns the message ID and the body, to look for on the wire.
   */
  sendSealed(
    from: string,
    to: string,
    text: string,
    ackSecret: Uint8Array,
  ): { id: string; body: Uint8Array } {
    const node = this.#node(from)
    const body = sealedBody(ackSecret, node.tag, node.core!.ackTagFor(ackSecret), text)
    return { id: node.core!.send(this.#node(to).tag, body, { ackSecret }), body }
  }
}

/** A tag from a name (padded with dots). */
export const nameTag = (s: string): Uint8Array =>
  Uint8Array.from(Buffer.from(s.padEnd(16, '.')).subarray(0, 16))

/**
 * A mesh core named Z over `store`, driven by hand: a host that does nothing, but for what
 * `host` gives (by default a clock that stands still).
 */
export function handCore(store: Store, host: Partial<RouterHost> = {}): MeshCore {
  return new MeshCore({
    self: nameTag('Z'),
    store,
    host: {
      now: () => 1_750_000_000_000,
      random: Math.random,
      transmit: () => {},
      deliver: () => undefined,
      stateChanged: () => {},
      wakeAt: () => {},
      log: () => {},
      ...host,
    },
  })
}
