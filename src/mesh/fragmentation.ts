/**
 * Fragmentation and reassembly of mesh link frames, for links whose MTU is smaller than a frame
 * (Bluetooth LE: 185–512 bytes). Hop by hop: fragments are never forwarded, only reassembled by
 * the neighbour that receives them. Sans-IO: the clock and the fragment ID are injected.
 *
 * ```
 * Fragment = [ kind: uint (15), fragId: bytes(8), index: uint (0–1023, < count),
 *              count: uint (2–1024), chunk: bytes (1–…) ]
 *
 * Offset  Size       Field           Encoding and range
 * 0       1          (array header)  0x85: 5 fields
 * 1       1          kind            0x0f: FRAGMENT
 * 2       9          fragId          0x48 + 8 bytes, random per frame, chosen by the sender
 * 11      1–3        index           uint 0–1023, less than count
 * 12–14   1–3        count           uint 2–1024
 * 13–17   1–3 + n    chunk           byte string, n ≥ 1; every chunk but the last is c bytes,
 *                                    the last 1–c; the frame is their concatenation by index
 * ```
 * Overhead = 11 + w(count − 1) + w(count) + w(n), where w(v) is the CBOR head length of v:
 * 1 (v ≤ 23), 2 (≤ 255), 3 (≤ 65,535), 5. The chunk size c for an MTU is the largest c with
 * overhead + c ≤ MTU (see {@link fragmentChunkSize}). Byte table: docs/protocol.md §Fragment.
 */
import { TalkenError } from '../errors.ts'
import { bytesEqual, decodeCbor, encodeCbor, FieldReader } from '../wire/cbor.ts'
import { MAX_ENVELOPE_BYTES } from '../wire/limits.ts'

/** The link frame kind of a fragment (field 0 of every link frame is its kind). */
export const FRAGMENT_FRAME_KIND = 15
/** Length of a fragment ID: 64 random bits, unique among one sender's frames in flight. */
export const FRAG_ID_LENGTH = 8
/** Most fragments one frame is cut into. */
export const MAX_FRAGMENTS = 1024

/** Largest link frame, fragmented or not: the largest envelope plus 256 bytes of frame wrapper. */
export const MAX_LINK_FRAME_BYTES = MAX_ENVELOPE_BYTES + 256

/**
 * Smallest MTU fragmentation supports: the largest link frame (65,856 bytes) must fit in 1,024
 * fragments, so c ≥ ⌈65,856 / 1,024⌉ = 65; with count > 256 the overhead is 11 + 3 + 3 + 2 = 19,
 * so MTU ≥ 84. (At 83, c = 64 and the frame needs 1,029 fragments.)
 */
export const MIN_FRAGMENT_MTU = 84

/** Array header, kind and fragId: the part of the overhead that does not vary. */
const FIXED_OVERHEAD = 1 + 1 + 1 + FRAG_ID_LENGTH

/**
 * Accounted cost of holding one chunk beyond its bytes (its own small buffer and its map entry:
 * about 235 bytes measured for one-byte chunks), and of one pending frame; they make
 * `maxPendingBytes` a bound on memory, not only on payload.
 */
const CHUNK_COST = 256
const PENDING_FRAME_COST = 256

/** The largest accounted cost of one pending frame; `maxPendingBytes` may not be lower. */
export const MAX_FRAME_REASSEMBLY_COST =
  MAX_LINK_FRAME_BYTES + MAX_FRAGMENTS * CHUNK_COST + PENDING_FRAME_COST

/** A decoded fragment. */
export interface Fragment {
  /** The sender's ID for the frame this fragment belongs to. */
  readonly fragId: Uint8Array
  /** Position of the chunk, 0 to count − 1. */
  readonly index: number
  /** How many fragments the frame was cut into, 2–1024. */
  readonly count: number
  /** The frame's bytes from index × c. */
  readonly chunk: Uint8Array
}

/** Length of the CBOR head of an unsigned integer or of a byte string of length `v`. */
function headLength(v: number): number {
  return v < 24 ? 1 : v < 0x100 ? 2 : v < 0x10000 ? 3 : 5
}

const invalid = (m: string) => new TalkenError('invalid_argument', `fragmentation: ${m}`)

/**
 * The largest chunk whose fragment, in a frame cut into `count` pieces, encodes to at most `mtu`
 * bytes: the largest c with 11 + w(count − 1) + w(count) + w(c) + c ≤ mtu.
 */
export function fragmentChunkSize(mtu: number, count: number): number {
  if (!Number.isSafeInteger(mtu) || mtu < MIN_FRAGMENT_MTU) throw invalid(`MTU must be ≥ ${MIN_FRAGMENT_MTU}`)
  if (!Number.isInteger(count) || count < 2 || count > MAX_FRAGMENTS) throw invalid('count out of range')
  const room = mtu - FIXED_OVERHEAD - headLength(count - 1) - headLength(count)
  // The chunk's length head grows with the chunk: try the shortest head first, which leaves the most room.
  for (const head of [1, 2, 3]) if (headLength(room - head) <= head) return room - head
  return room - 5
}

/** How a frame of `frameLength` bytes is cut for `mtu`: `count` fragments of `chunkSize` bytes (the last shorter). */
export function planFragments(frameLength: number, mtu: number): { count: number; chunkSize: number } {
  // Guess a count, size chunks for its overhead, recount; head lengths only grow with the count,
  // so this settles within a few rounds on a count whose overhead the chunk size already allows.
  let count = 2
  for (;;) {
    const chunkSize = fragmentChunkSize(mtu, count)
    const needed = Math.ceil(frameLength / chunkSize)
    if (needed > MAX_FRAGMENTS) {
      throw new TalkenError(
        'too_large',
        `fragmentation: ${frameLength} bytes need more than ${MAX_FRAGMENTS} fragments at MTU ${mtu}`,
      )
    }
    if (needed <= count) return { count: needed, chunkSize }
    count = needed
  }
}

/** Encodes one fragment. Throws `invalid_argument` for fields out of range, `too_large` above the frame limit. */
export function encodeFragment(f: Fragment): Uint8Array {
  if (!(f.fragId instanceof Uint8Array) || f.fragId.length !== FRAG_ID_LENGTH)
    throw invalid('fragId is 8 bytes')
  if (!Number.isInteger(f.count) || f.count < 2 || f.count > MAX_FRAGMENTS)
    throw invalid('count out of range')
  if (!Number.isInteger(f.index) || f.index < 0 || f.index >= f.count) throw invalid('index out of range')
  if (!(f.chunk instanceof Uint8Array) || f.chunk.length === 0) throw invalid('chunk is 1 or more bytes')
  const bytes = encodeCbor([FRAGMENT_FRAME_KIND, f.fragId, f.index, f.count, f.chunk])
  if (bytes.length > MAX_LINK_FRAME_BYTES) {
    throw new TalkenError('too_large', `fragment of ${bytes.length} bytes exceeds ${MAX_LINK_FRAME_BYTES}`)
  }
  return bytes
}

/**
 * Cuts `frame` into fragments of at most `mtu` bytes each, or returns `[frame]` when it fits.
 * `fragId` must be fresh random bytes (from the host's generator) for every frame.
 * Throws `invalid_argument` (MTU below {@link MIN_FRAGMENT_MTU}, bad fragId, a frame that is
 * itself a fragment and does not fit) or `too_large` (frame above {@link MAX_LINK_FRAME_BYTES}).
 *
 * @example
 * const fragId = randomBytes(8) // from the host's generator, fresh for every frame
 * for (const piece of fragmentFrame(frame, mtu, fragId)) host.transmit(neighbour, piece)
 */
export function fragmentFrame(frame: Uint8Array, mtu: number, fragId: Uint8Array): Uint8Array[] {
  if (!Number.isSafeInteger(mtu) || mtu < MIN_FRAGMENT_MTU) throw invalid(`MTU must be ≥ ${MIN_FRAGMENT_MTU}`)
  if (!(fragId instanceof Uint8Array) || fragId.length !== FRAG_ID_LENGTH) throw invalid('fragId is 8 bytes')
  if (!(frame instanceof Uint8Array)) throw invalid('frame must be bytes')
  if (frame.length > MAX_LINK_FRAME_BYTES) {
    throw new TalkenError('too_large', `link frame of ${frame.length} bytes exceeds ${MAX_LINK_FRAME_BYTES}`)
  }
  if (frame.length <= mtu) return [frame]
  // Fragments are link-local; one that does not fit was cut for another link, which is a bug.
  if (isFragment(frame)) throw invalid('a fragment is never fragmented again')
  const { count, chunkSize } = planFragments(frame.length, mtu)
  const out: Uint8Array[] = []
  for (let index = 0; index < count; index++) {
    const chunk = frame.subarray(index * chunkSize, Math.min(frame.length, (index + 1) * chunkSize))
    out.push(encodeFragment({ fragId, index, count, chunk }))
  }
  return out
}

/**
 * True when a link frame's kind is FRAGMENT: a definite array of 1–23 items whose first item is 15.
 * Looks at two bytes only; {@link decodeFragment} checks the rest.
 */
export function isFragment(frame: Uint8Array): boolean {
  const head = frame[0]
  return head !== undefined && head >= 0x81 && head <= 0x97 && frame[1] === FRAGMENT_FRAME_KIND
}

/** Decodes without the cross-field check, so that the reassembler knows the fragId of a bad fragment. */
function readFragment(bytes: Uint8Array): Fragment {
  const r = new FieldReader(decodeCbor(bytes, MAX_LINK_FRAME_BYTES, 'fragment'), 'fragment', 5)
  const kind = r.uint('kind', 255)
  if (kind !== FRAGMENT_FRAME_KIND) throw new TalkenError('malformed', `fragment: frame kind ${kind}`)
  return {
    fragId: r.bytes('fragId', FRAG_ID_LENGTH),
    index: r.uint('index', MAX_FRAGMENTS - 1),
    count: r.uint('count', MAX_FRAGMENTS, 2),
    chunk: r.bytes('chunk', 1, MAX_LINK_FRAME_BYTES),
  }
}

/** Decodes one fragment. Throws `too_large`, `malformed` or `non_canonical`; never anything else. */
export function decodeFragment(bytes: Uint8Array): Fragment {
  const f = readFragment(bytes)
  if (f.index >= f.count) throw new TalkenError('malformed', `fragment: index ${f.index} of ${f.count}`)
  return f
}

/** Options of a {@link Reassembler}. Limits are per neighbour. */
export interface ReassemblerOptions {
  /** The host's clock, in milliseconds. */
  readonly now: () => number
  /** A partial frame is dropped this long after its first fragment arrived. Default 30,000. */
  readonly timeoutMs?: number
  /** Most partial frames held for one neighbour. Default 16. */
  readonly maxPending?: number
  /** Most accounted bytes held for one neighbour, at least {@link MAX_FRAME_REASSEMBLY_COST}. Default 384 KiB. */
  readonly maxPendingBytes?: number
}

/** Counters of a {@link Reassembler}; `pending*` are current, the rest count since construction. */
export interface ReassemblerStats {
  readonly pendingFrames: number
  /** Accounted bytes: chunk bytes plus a fixed cost per chunk and per partial frame. */
  readonly pendingBytes: number
  readonly completed: number
  readonly expired: number
  readonly evicted: number
  readonly rejected: number
  readonly duplicates: number
}

interface PendingFrame {
  readonly created: number
  readonly count: number
  readonly chunks: Map<number, Uint8Array>
  /** Length of every chunk but the last; 0 until one of them has arrived. */
  chunkSize: number
  /** Length of the last chunk; 0 until it has arrived. */
  lastLength: number
  cost: number
}

interface Neighbour {
  /** Partial frames by fragId (hex), oldest first. */
  readonly frames: Map<string, PendingFrame>
  bytes: number
  /** fragIds of the latest completed frames, so that late duplicates do not start new partials. */
  readonly recent: string[]
}

function hex(bytes: Uint8Array): string {
  let s = ''
  for (const b of bytes) s += b.toString(16).padStart(2, '0')
  return s
}

/**
 * Reassembles fragmented frames per (neighbour, fragId), in any order, in memory bounded per
 * neighbour: one neighbour's garbage only ever evicts that neighbour's partial frames. Call
 * {@link Reassembler.expire} when {@link Reassembler.nextExpiry} is due and
 * {@link Reassembler.forget} when a link goes down.
 *
 * @example
 * const reassembler = new Reassembler({ now: host.now })
 * const frame = isFragment(bytes) ? reassembler.accept(neighbour, bytes) : bytes
 * if (frame) handleFrame(neighbour, frame)
 */
export class Reassembler {
  readonly #now: () => number
  readonly #timeoutMs: number
  readonly #maxPending: number
  readonly #maxPendingBytes: number
  readonly #neighbours = new Map<string, Neighbour>()
  #pendingFrames = 0
  #pendingBytes = 0
  #completed = 0
  #expired = 0
  #evicted = 0
  #rejected = 0
  #duplicates = 0

  /** Throws `invalid_argument` for options out of range. */
  constructor(options: ReassemblerOptions) {
    const { now, timeoutMs = 30_000, maxPending = 16, maxPendingBytes = 384 * 1024 } = options
    if (typeof now !== 'function') throw invalid('now must be a function')
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw invalid('timeoutMs must be positive')
    if (!Number.isSafeInteger(maxPending) || maxPending < 1) throw invalid('maxPending must be ≥ 1')
    if (!Number.isSafeInteger(maxPendingBytes) || maxPendingBytes < MAX_FRAME_REASSEMBLY_COST) {
      throw invalid(`maxPendingBytes must be ≥ ${MAX_FRAME_REASSEMBLY_COST}, the cost of one frame`)
    }
    this.#now = now
    this.#timeoutMs = timeoutMs
    this.#maxPending = maxPending
    this.#maxPendingBytes = maxPendingBytes
  }

  /**
   * Takes one fragment from `neighbour`; returns the whole frame when this was its last missing
   * piece, else `undefined` (also for an exact duplicate). A fragment that contradicts its
   * partial frame drops that frame and throws `malformed`; undecodable bytes throw `too_large`,
   * `malformed` or `non_canonical`. Never throws anything but a TalkenError.
   */
  accept(neighbour: string, bytes: Uint8Array): Uint8Array | undefined {
    let f: Fragment
    try {
      f = readFragment(bytes)
    } catch (err) {
      this.#rejected++
      throw err
    }
    const now = this.#now()
    const n = this.#neighbour(neighbour)
    this.#expireIn(n, now)
    const key = hex(f.fragId)
    const reject = (why: string): TalkenError => {
      this.#drop(n, key)
      this.#rejected++
      return new TalkenError('malformed', `fragment ${key}: ${why}`)
    }
    if (f.index >= f.count) throw reject(`index ${f.index} of ${f.count}`)
    if (n.recent.includes(key)) {
      this.#duplicates++
      return undefined
    }
    const existing = n.frames.get(key)
    const frame = existing ?? {
      created: now,
      count: f.count,
      chunks: new Map(),
      chunkSize: 0,
      lastLength: 0,
      cost: 0,
    }
    if (frame.count !== f.count) throw reject(`count ${f.count}, earlier ${frame.count}`)
    const held = frame.chunks.get(f.index)
    if (held) {
      if (!bytesEqual(held, f.chunk)) throw reject(`index ${f.index} sent twice with different bytes`)
      this.#duplicates++
      return undefined
    }
    const isLast = f.index === f.count - 1
    if (!isLast && frame.chunkSize !== 0 && f.chunk.length !== frame.chunkSize) {
      throw reject(`chunk of ${f.chunk.length} bytes, others ${frame.chunkSize}`)
    }
    const chunkSize = isLast ? frame.chunkSize : f.chunk.length
    const lastLength = isLast ? f.chunk.length : frame.lastLength
    // The smallest total the fragments so far allow must fit the limit (the last chunk is 1–c bytes).
    if (chunkSize !== 0 && lastLength > chunkSize) throw reject(`last chunk longer than the others`)
    const least = chunkSize !== 0 ? (f.count - 1) * chunkSize + Math.max(lastLength, 1) : f.count * lastLength
    if (least > MAX_LINK_FRAME_BYTES)
      throw reject(`declares at least ${least} bytes, over ${MAX_LINK_FRAME_BYTES}`)

    const cost = f.chunk.length + CHUNK_COST + (existing ? 0 : PENDING_FRAME_COST)
    if (!existing) while (n.frames.size >= this.#maxPending && this.#evictOldest(n, key)) {}
    while (n.bytes + cost > this.#maxPendingBytes && this.#evictOldest(n, key)) {}
    if (n.bytes + cost > this.#maxPendingBytes) {
      // Unreachable while maxPendingBytes ≥ MAX_FRAME_REASSEMBLY_COST; kept so the bound never breaks.
      if (existing) this.#drop(n, key)
      this.#evicted++
      return undefined
    }
    if (!existing) {
      n.frames.set(key, frame)
      this.#pendingFrames++
    }
    // A copy, so a chunk never pins the (possibly large) buffer it was received in.
    frame.chunks.set(f.index, f.chunk.slice())
    frame.chunkSize = chunkSize
    frame.lastLength = lastLength
    frame.cost += cost
    n.bytes += cost
    this.#pendingBytes += cost
    if (frame.chunks.size < frame.count) return undefined
    return this.#complete(n, key, frame)
  }

  #complete(n: Neighbour, key: string, frame: PendingFrame): Uint8Array {
    this.#drop(n, key)
    n.recent.push(key)
    if (n.recent.length > this.#maxPending) n.recent.shift()
    const out = new Uint8Array((frame.count - 1) * frame.chunkSize + frame.lastLength)
    for (const [index, chunk] of frame.chunks) out.set(chunk, index * frame.chunkSize)
    if (isFragment(out)) {
      this.#rejected++
      throw new TalkenError('malformed', `fragment ${key}: reassembled into another fragment`)
    }
    this.#completed++
    return out
  }

  /** Drops every partial frame whose timeout has passed; returns how many. */
  expire(): number {
    const now = this.#now()
    let dropped = 0
    for (const n of this.#neighbours.values()) dropped += this.#expireIn(n, now)
    return dropped
  }

  /** When the oldest partial frame expires (host clock), or `undefined` when none is pending. */
  nextExpiry(): number | undefined {
    let first: number | undefined
    for (const n of this.#neighbours.values()) {
      for (const frame of n.frames.values())
        if (first === undefined || frame.created < first) first = frame.created
    }
    return first === undefined ? undefined : first + this.#timeoutMs
  }

  /** Drops everything held for `neighbour` (its link went down). */
  forget(neighbour: string): void {
    const n = this.#neighbours.get(neighbour)
    if (!n) return
    for (const key of [...n.frames.keys()]) this.#drop(n, key)
    this.#neighbours.delete(neighbour)
  }

  /** What one neighbour's partial frames hold now. */
  pending(neighbour: string): { frames: number; bytes: number } {
    const n = this.#neighbours.get(neighbour)
    return { frames: n?.frames.size ?? 0, bytes: n?.bytes ?? 0 }
  }

  /** Totals over all neighbours. */
  stats(): ReassemblerStats {
    return {
      pendingFrames: this.#pendingFrames,
      pendingBytes: this.#pendingBytes,
      completed: this.#completed,
      expired: this.#expired,
      evicted: this.#evicted,
      rejected: this.#rejected,
      duplicates: this.#duplicates,
    }
  }

  #neighbour(id: string): Neighbour {
    let n = this.#neighbours.get(id)
    if (!n) {
      n = { frames: new Map(), bytes: 0, recent: [] }
      this.#neighbours.set(id, n)
    }
    return n
  }

  #expireIn(n: Neighbour, now: number): number {
    let dropped = 0
    for (const [key, frame] of n.frames) {
      if (now - frame.created < this.#timeoutMs) continue
      this.#drop(n, key)
      dropped++
    }
    this.#expired += dropped
    return dropped
  }

  /** Evicts the oldest partial frame other than `keep`; false when there is none. */
  #evictOldest(n: Neighbour, keep: string): boolean {
    for (const key of n.frames.keys()) {
      if (key === keep) continue
      this.#drop(n, key)
      this.#evicted++
      return true
    }
    return false
  }

  #drop(n: Neighbour, key: string): void {
    const frame = n.frames.get(key)
    if (!frame) return
    n.frames.delete(key)
    n.bytes -= frame.cost
    this.#pendingFrames--
    this.#pendingBytes -= frame.cost
  }
}
