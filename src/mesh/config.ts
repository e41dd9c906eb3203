/**
 * The mesh core's tunables, with the reasoning behind each default.
 */

/** Tunables of {@link MeshCore}. All times in milliseconds. */
export interface MeshConfig {
  /** Transmissions an envelope may take: a bound on wandering (loops are prevented otherwise); Bitchat uses 7. */
  readonly hopLimit: number
  /** Copy budget L for messages with no known route (measured on the Helsinki trace: docs/limits.md). */
  readonly copies: number
  /**
   * Sprayed copies go only to neighbours with at least this share of the copy's threshold: the
   * most encounters of any node it was at or handed to (delegation forwarding).
   */
  readonly sprayCentrality: number
  /**
   * Copy budget of delivery acknowledgements: one, routed or carried (the proof also walks back the
   * message's path and spreads to copies' holders in answer to their Summaries). Four cost the
   * Helsinki trace 4.2 more transmissions per delivered message, and delivered nothing more.
   */
  readonly ackCopies: number
  /** Default message lifetime: one day. */
  readonly ttlMs: number
  /**
   * How long a relay keeps another node's envelope at most, whatever expiry its sender chose:
   * a relay lowers the expiry of what it takes to now plus this, and passes the lower one on, so
   * a far-off expiry cannot make strangers hold a copy for longer (custody quotas bound the bytes).
   */
  readonly custodyMaxMs: number
  /**
   * Full route dump to each neighbour this often. A new neighbour gets one at once, and changes
   * go out as triggered updates, so the periodic dump only repairs lost updates: rare, because
   * on a static mesh it is most of the routing traffic (one entry per destination per neighbour).
   */
  readonly updateIntervalMs: number
  /** A route not refreshed for this long is dropped: 3.5 update intervals, as in Babel. */
  readonly routeHoldMs: number
  /** Delay to batch triggered updates into one frame. */
  readonly triggerDelayMs: number
  /** Data frames awaiting a hop acknowledgement, per neighbour (the sending window). */
  readonly window: number
  /** A data frame not acknowledged by the neighbour after this long is retried. */
  readonly hopAckTimeoutMs: number
  /** First retry of a message whose copies are all handed out but not acknowledged end to end. */
  readonly retryBaseMs: number
  /** Cap of the retry backoff. */
  readonly retryMaxMs: number
  /** Route requests for one destination: first wait, doubling up to the max. */
  readonly routeRequestBaseMs: number
  readonly routeRequestMaxMs: number
  /**
   * Route requests this node forwards per second at most (flood protection), per origin; and the
   * budget of its own (route-discovery.ts: a token bucket of this many a second, bursts of as many,
   * whatever the number of destinations waiting for a route; RFC 3561's RREQ_RATELIMIT is 10).
   */
  readonly routeRequestsPerSecond: number
  /** Routes longer than this many hops are not advertised (found by route requests instead). */
  readonly advertiseRadius: number
  /** Destinations the routing table keeps at most. */
  readonly maxDestinations: number
  /** Message IDs remembered for duplicate suppression (exact, no false positives). */
  readonly seenCapacity: number
  /** Delivery proofs remembered, to purge copies met later. */
  readonly proofCapacity: number
  /**
   * Bytes of datagrams held in memory (never stored), each counted as its payload and its record
   * (held.ts, `datagramCharge`): other nodes' held for forwarding, from one neighbour and in all,
   * beyond which they are refused; and our own waiting to go out (room gossip answers), beyond
   * which new ones are dropped (datagrams are best-effort). Custody quotas bound the rest.
   */
  /**
   * Other nodes' envelopes in custody, from one neighbour and in all; beyond, refused. The
   * store's custody quotas count bytes, and an envelope can be 46 bytes: without a count, one
   * neighbour could make us hold 90,000 within its 4 MiB, each one looked at on every pump.
   */
  readonly custodyCount: { readonly perOrigin: number; readonly total: number }
  readonly datagramQuota: {
    readonly perOriginBytes: number
    readonly totalBytes: number
    readonly ownBytes: number
  }
}

/** Defaults for phones on Wi-Fi, hotspots and Bluetooth. */
export const DEFAULT_MESH_CONFIG: MeshConfig = {
  hopLimit: 32,
  copies: 12,
  sprayCentrality: 0.6,
  ackCopies: 1,
  ttlMs: 24 * 60 * 60 * 1000,
  custodyMaxMs: 7 * 24 * 60 * 60 * 1000,
  updateIntervalMs: 300_000,
  routeHoldMs: 1_050_000,
  triggerDelayMs: 20,
  window: 8,
  hopAckTimeoutMs: 10_000,
  retryBaseMs: 30 * 60 * 1000,
  retryMaxMs: 4 * 60 * 60 * 1000,
  routeRequestBaseMs: 2_000,
  routeRequestMaxMs: 120_000,
  routeRequestsPerSecond: 10,
  advertiseRadius: 32,
  maxDestinations: 1024,
  seenCapacity: 65_536,
  proofCapacity: 16_384,
  custodyCount: { perOrigin: 2_048, total: 16_384 },
  datagramQuota: { perOriginBytes: 1024 * 1024, totalBytes: 8 * 1024 * 1024, ownBytes: 16 * 1024 * 1024 },
}
