/**
 * Fragmentation and reassembly: exact fit for every MTU, round trips in any order, expiry on a
 * fake clock, and bounded memory under a flood of hostile fragments. Randomized parts replay
 * with TALKEN_SEED=<seed>.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { TalkenError } from '../../src/errors.ts'
import {
  decodeFragment,
  encodeFragment,
  FRAG_ID_LENGTH,
  fragmentChunkSize,
  fragmentFrame,
  isFragment,
  MAX_FRAGMENTS,
  MAX_FRAME_REASSEMBLY_COST,
  MAX_LINK_FRAME_BYTES,
  MIN_FRAGMENT_MTU,
  planFragments,
  Reassembler,
  type ReassemblerOptions,
} from '../../src/mesh/fragmentation.ts'
import { encodeCbor } from '../../src/wire/cbor.ts'
import { MAX_ENVELOPE_BYTES } from '../../src/wire/limits.ts'
import { throwsCode } from '../helpers/errors.ts'
import { prng, testSeed } from '../helpers/prng.ts'

const seed = testSeed()
console.log(`# fragmentation seed ${seed} (replay with TALKEN_SEED=${seed})`)

type Rand = () => number
const int = (r: Rand, n: number) => Math.floor(r() * n)
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex')

/** Pseudo-random bytes; frames start like a 2-field link frame of kind 1, so never like a fragment. */
function frameBytes(r: Rand, length: number): Uint8Array {
  const out = new Uint8Array(length).map(() => int(r, 256))
  if (length > 0) out[0] = 0x82
  if (length > 1) out[1] = 0x01
  return out
}

function fragId(r: Rand): Uint8Array {
  return new Uint8Array(FRAG_ID_LENGTH).map(() => int(r, 256))
}

function shuffle<T>(r: Rand, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = int(r, i + 1)
    ;[items[i], items[j]] = [items[j]!, items[i]!]
  }
  return items
}

/** A fake clock the test moves by hand. */
function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t }
  return c
}

function reassembler(options: Partial<ReassemblerOptions> = {}) {
  const c = clock()
  return { c, r: new Reassembler({ now: c.now, timeoutMs: 10_000, ...options }) }
}

/** Feeds fragments in order; returns every frame delivered. */
function feed(r: Reassembler, neighbour: string, fragments: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = []
  for (const f of fragments) {
    const frame = r.accept(neighbour, f)
    if (frame) out.push(frame)
  }
  return out
}

describe('fragment codec', () => {
  it('matches the known-answer example of docs/protocol.md §Fragment', () => {
    const f = {
      fragId: new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]),
      index: 0,
      count: 3,
      chunk: new TextEncoder().encode('hello'),
    }
    const bytes = encodeFragment(f)
    assert.equal(toHex(bytes), '850f48000102030405060700034568656c6c6f')
    assert.deepEqual(decodeFragment(bytes), f)
    assert.ok(isFragment(bytes))
  })

  it('refuses every malformed shape with a typed error', () => {
    const id = new Uint8Array(8)
    const ok = (index: number, count: number, chunk: Uint8Array) => encodeCbor([15, id, index, count, chunk])
    throwsCode(() => decodeFragment(new Uint8Array(0)), 'malformed')
    throwsCode(() => decodeFragment(new Uint8Array(MAX_LINK_FRAME_BYTES + 1)), 'too_large')
    throwsCode(() => decodeFragment(encodeCbor([14, id, 0, 2, new Uint8Array(1)])), 'malformed')
    throwsCode(() => decodeFragment(encodeCbor([15, id, 0, 2])), 'malformed')
    throwsCode(
      () => decodeFragment(encodeCbor([15, new Uint8Array(7), 0, 2, new Uint8Array(1)])),
      'malformed',
    )
    throwsCode(() => decodeFragment(ok(0, 1, new Uint8Array(1))), 'malformed')
    throwsCode(() => decodeFragment(ok(0, 1025, new Uint8Array(1))), 'malformed')
    throwsCode(() => decodeFragment(ok(2, 2, new Uint8Array(1))), 'malformed')
    throwsCode(() => decodeFragment(ok(1024, 1024, new Uint8Array(1))), 'malformed')
    throwsCode(() => decodeFragment(ok(0, 2, new Uint8Array(0))), 'malformed')
    throwsCode(() => decodeFragment(encodeCbor([15, id, 0, 2, 'text'])), 'malformed')
    // index 3 written as 0x18 0x03: the same value, not the one encoding.
    const bytes = ok(3, 4, new Uint8Array([9]))
    const long = new Uint8Array([...bytes.subarray(0, 11), 0x18, 0x03, ...bytes.subarray(12)])
    throwsCode(() => decodeFragment(long), 'non_canonical', 'malformed')
    throwsCode(() => decodeFragment(new Uint8Array([...bytes, 0])), 'malformed', 'non_canonical')
  })

  it('throws only TalkenError for mutated and random input', () => {
    const r = prng(seed)
    const base = fragmentFrame(frameBytes(r, 3000), 185, fragId(r))
    for (let i = 0; i < 20_000; i++) {
      const src = base[int(r, base.length)]!
      const bytes = i % 4 === 0 ? new Uint8Array(int(r, 300)).map(() => int(r, 256)) : new Uint8Array(src)
      if (i % 4 !== 0) for (let k = 1 + int(r, 3); k > 0; k--) bytes[int(r, bytes.length)] = int(r, 256)
      try {
        const f = decodeFragment(bytes)
        assert.ok(f.index < f.count && f.count >= 2 && f.count <= MAX_FRAGMENTS && f.chunk.length >= 1)
      } catch (err) {
        assert.ok(err instanceof TalkenError, `seed ${seed}: ${String(err)}`)
        assert.ok(['malformed', 'too_large', 'non_canonical'].includes(err.code), err.code)
      }
    }
  })

  it('tells fragments from other link frames by their first two bytes', () => {
    assert.equal(isFragment(new Uint8Array(0)), false)
    assert.equal(isFragment(new Uint8Array([0x85])), false)
    assert.equal(isFragment(new Uint8Array([0x88, 0x01])), false)
    assert.equal(isFragment(new Uint8Array([0x85, 0x0f])), true)
    assert.equal(isFragment(new Uint8Array([0x9f, 0x0f])), false)
  })
})

describe('fragmentFrame', () => {
  it('derives the minimum MTU: the largest frame fits in 1,024 fragments at 84, not at 83', () => {
    const plan = planFragments(MAX_LINK_FRAME_BYTES, MIN_FRAGMENT_MTU)
    assert.deepEqual(plan, { count: 1014, chunkSize: 65 })
    const worst = encodeFragment({
      fragId: new Uint8Array(8),
      index: 1023,
      count: 1024,
      chunk: new Uint8Array(65),
    })
    assert.equal(worst.length, MIN_FRAGMENT_MTU)
    // At MTU 83 the chunk would be 64 bytes: 1,024 of them hold less than the largest frame.
    assert.ok(MAX_FRAGMENTS * 64 < MAX_LINK_FRAME_BYTES)
    assert.equal(MAX_LINK_FRAME_BYTES, MAX_ENVELOPE_BYTES + 256)
  })

  it('cuts to exactly the MTU for every MTU from the minimum to 1024, at every size boundary', () => {
    const r = prng(seed ^ 0x5a5a)
    const big = frameBytes(r, MAX_LINK_FRAME_BYTES)
    const id = fragId(r)
    let cases = 0
    for (let mtu = MIN_FRAGMENT_MTU; mtu <= 1024; mtu++) {
      // The chunk size is the largest that fits: one byte more overflows the MTU.
      for (const count of [2, 23, 24, 25, 255, 256, 257, MAX_FRAGMENTS]) {
        const c = fragmentChunkSize(mtu, count)
        const at = (chunk: number) =>
          encodeFragment({ fragId: id, index: count - 1, count, chunk: new Uint8Array(chunk) }).length
        assert.ok(at(c) <= mtu, `mtu ${mtu} count ${count}: chunk ${c} gives ${at(c)}`)
        assert.ok(at(c + 1) > mtu, `mtu ${mtu} count ${count}: chunk ${c + 1} also fits`)
      }
      const lengths = new Set([mtu, mtu + 1, MAX_LINK_FRAME_BYTES - 1, MAX_LINK_FRAME_BYTES])
      for (const t of [2, 24, 25, 256, 257]) {
        const c = fragmentChunkSize(mtu, t)
        for (const l of [(t - 1) * c, (t - 1) * c + 1, t * c, t * c + 1]) lengths.add(l)
      }
      for (const length of lengths) {
        if (length > MAX_LINK_FRAME_BYTES) continue
        const frame = big.subarray(0, length)
        const pieces = fragmentFrame(frame, mtu, id)
        cases++
        if (length <= mtu) {
          assert.deepEqual(pieces, [frame])
          continue
        }
        const { count, chunkSize } = planFragments(length, mtu)
        assert.equal(pieces.length, count)
        assert.ok(count >= 2 && count <= MAX_FRAGMENTS)
        for (const p of pieces)
          assert.ok(p.length <= mtu, `mtu ${mtu}, frame ${length}: fragment ${p.length}`)
        // Checking the first and last fragment's fields is enough here; full reassembly is below.
        const first = decodeFragment(pieces[0]!)
        const last = decodeFragment(pieces[count - 1]!)
        assert.equal(first.chunk.length, chunkSize)
        assert.equal(last.index, count - 1)
        assert.ok(last.chunk.length >= 1 && last.chunk.length <= chunkSize)
        assert.equal((count - 1) * chunkSize + last.chunk.length, length)
      }
    }
    assert.ok(cases > 10_000)
  })

  it('reassembles boundary sizes for a sample of MTUs', () => {
    const r = prng(seed ^ 0xa5a5)
    const big = frameBytes(r, MAX_LINK_FRAME_BYTES)
    const { r: re } = reassembler()
    for (const mtu of [MIN_FRAGMENT_MTU, 85, 100, 127, 185, 244, 255, 256, 512, 1023, 1024]) {
      for (const length of [mtu + 1, 24 * (mtu - 13), 256 * (mtu - 17), MAX_LINK_FRAME_BYTES]) {
        if (length > MAX_LINK_FRAME_BYTES) continue
        const frame = big.subarray(0, length)
        const pieces = shuffle(r, fragmentFrame(frame, mtu, fragId(r)))
        assert.deepEqual(feed(re, 'n', pieces), [frame])
      }
    }
    assert.deepEqual(re.pending('n'), { frames: 0, bytes: 0 })
  })

  it('refuses arguments outside its contract', () => {
    const frame = new Uint8Array(500)
    throwsCode(() => fragmentFrame(frame, MIN_FRAGMENT_MTU - 1, new Uint8Array(8)), 'invalid_argument')
    throwsCode(() => fragmentFrame(frame, 185.5, new Uint8Array(8)), 'invalid_argument')
    throwsCode(() => fragmentFrame(frame, 185, new Uint8Array(7)), 'invalid_argument')
    throwsCode(
      () => fragmentFrame(new Uint8Array(MAX_LINK_FRAME_BYTES + 1), 512, new Uint8Array(8)),
      'too_large',
    )
    const fragment = encodeFragment({
      fragId: new Uint8Array(8),
      index: 0,
      count: 2,
      chunk: new Uint8Array(400),
    })
    throwsCode(() => fragmentFrame(fragment, 185, new Uint8Array(8)), 'invalid_argument')
    assert.deepEqual(fragmentFrame(fragment, 512, new Uint8Array(8)), [fragment])
    throwsCode(() => fragmentChunkSize(185, 1), 'invalid_argument')
    throwsCode(() => fragmentChunkSize(185, MAX_FRAGMENTS + 1), 'invalid_argument')
    throwsCode(
      () => encodeFragment({ fragId: new Uint8Array(8), index: 2, count: 2, chunk: new Uint8Array(1) }),
      'invalid_argument',
    )
    throwsCode(
      () => encodeFragment({ fragId: new Uint8Array(8), index: 0, count: 2, chunk: new Uint8Array(0) }),
      'invalid_argument',
    )
  })
})

describe('Reassembler', () => {
  it('round-trips random frames at MTU 185, 244 and 512, shuffled and duplicated', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.oneof(fc.integer({ min: 0, max: 2048 }), fc.integer({ min: 0, max: MAX_LINK_FRAME_BYTES })),
        fc.constantFrom(185, 244, 512),
        (s, length, mtu) => {
          const r = prng(s)
          const frame = frameBytes(r, length)
          const pieces = fragmentFrame(frame, mtu, fragId(r))
          if (length <= mtu) return assert.deepEqual(pieces, [frame])
          const dups = pieces.filter(() => r() < 0.3)
          const order = shuffle(r, [...pieces, ...dups])
          const { r: re } = reassembler()
          const out = feed(re, 'n', order)
          assert.deepEqual(out, [frame])
          const stats = re.stats()
          assert.equal(stats.completed, 1)
          assert.equal(stats.duplicates, dups.length)
          assert.equal(stats.pendingFrames, 0)
          assert.equal(stats.pendingBytes, 0)
        },
      ),
      { seed: seed | 0, numRuns: 300 },
    )
  })

  it('delivers nothing when a fragment is lost, and expires the partial after the timeout', () => {
    const r = prng(seed ^ 1)
    const { c, r: re } = reassembler({ timeoutMs: 5_000 })
    const pieces = fragmentFrame(frameBytes(r, 2000), 185, fragId(r))
    const lost = int(r, pieces.length)
    assert.deepEqual(
      feed(
        re,
        'n',
        pieces.filter((_, i) => i !== lost),
      ),
      [],
    )
    assert.equal(re.stats().pendingFrames, 1)
    assert.equal(re.nextExpiry(), c.t + 5_000)
    c.t += 4_999
    assert.equal(re.expire(), 0)
    assert.equal(re.stats().pendingFrames, 1)
    c.t += 1
    assert.equal(re.expire(), 1)
    assert.deepEqual(re.stats(), {
      pendingFrames: 0,
      pendingBytes: 0,
      completed: 0,
      expired: 1,
      evicted: 0,
      rejected: 0,
      duplicates: 0,
    })
    assert.equal(re.nextExpiry(), undefined)
    // The lost piece arriving late starts a new partial rather than completing the expired one.
    assert.equal(re.accept('n', pieces[lost]!), undefined)
    assert.equal(re.stats().pendingFrames, 1)
  })

  it('expires lazily when the same neighbour sends again', () => {
    const r = prng(seed ^ 2)
    const { c, r: re } = reassembler({ timeoutMs: 1_000 })
    const a = fragmentFrame(frameBytes(r, 1000), 244, fragId(r))
    re.accept('n', a[0]!)
    c.t += 1_000
    const b = fragmentFrame(frameBytes(r, 1000), 244, fragId(r))
    re.accept('n', b[0]!)
    assert.equal(re.stats().expired, 1)
    assert.equal(re.pending('n').frames, 1)
  })

  it('keeps interleaved frames from two neighbours apart, even under the same fragId', () => {
    const r = prng(seed ^ 3)
    const id = fragId(r)
    const fa = frameBytes(r, 3000)
    const fb = frameBytes(r, 2500)
    const a = fragmentFrame(fa, 185, id)
    const b = fragmentFrame(fb, 244, id)
    const { r: re } = reassembler()
    const got: Record<string, Uint8Array[]> = { a: [], b: [] }
    const order = shuffle(r, [...a.map((p) => ['a', p] as const), ...b.map((p) => ['b', p] as const)])
    for (const [who, p] of order) {
      const frame = re.accept(who, p)
      if (frame) got[who]!.push(frame)
    }
    assert.deepEqual(got, { a: [fa], b: [fb] })
  })

  it('ignores late duplicates of a completed frame', () => {
    const r = prng(seed ^ 4)
    const frame = frameBytes(r, 600)
    const pieces = fragmentFrame(frame, 185, fragId(r))
    const { r: re } = reassembler()
    assert.deepEqual(feed(re, 'n', pieces), [frame])
    assert.deepEqual(feed(re, 'n', pieces), [])
    assert.equal(re.stats().pendingFrames, 0)
    assert.equal(re.stats().duplicates, pieces.length)
  })

  it('rejects inconsistent fragments with a typed error and drops their partial frame', () => {
    const id = new Uint8Array(8).fill(1)
    const frag = (index: number, count: number, len: number, fill = 7) =>
      encodeCbor([15, id, index, count, new Uint8Array(len).fill(fill)])
    const cases: [string, Uint8Array[]][] = [
      ['count mismatch', [frag(0, 4, 100), frag(1, 5, 100)]],
      ['index ≥ count', [frag(0, 4, 100), frag(4, 4, 100)]],
      ['same index, other bytes', [frag(0, 4, 100), frag(0, 4, 100, 8)]],
      ['chunk sizes differ', [frag(0, 4, 100), frag(1, 4, 99)]],
      ['last chunk longer', [frag(0, 4, 100), frag(3, 4, 101)]],
      ['last chunk longer, seen first', [frag(3, 4, 101), frag(0, 4, 100)]],
      ['total over the limit', [frag(0, 1024, 100)]],
      ['total over the limit, from the last chunk', [frag(1023, 1024, 65)]],
    ]
    for (const [name, fragments] of cases) {
      const { r: re } = reassembler()
      const last = fragments.length - 1
      for (const f of fragments.slice(0, last)) assert.equal(re.accept('n', f), undefined, name)
      throwsCode(() => re.accept('n', fragments[last]!), 'malformed')
      assert.deepEqual(re.pending('n'), { frames: 0, bytes: 0 }, name)
      assert.equal(re.stats().rejected, 1, name)
    }
  })

  it('rejects a frame that reassembles into another fragment', () => {
    const inner = encodeFragment({
      fragId: new Uint8Array(8),
      index: 0,
      count: 2,
      chunk: new Uint8Array(300),
    })
    const id = new Uint8Array(8).fill(2)
    const half = Math.ceil(inner.length / 2)
    const { r: re } = reassembler()
    re.accept('n', encodeFragment({ fragId: id, index: 0, count: 2, chunk: inner.subarray(0, half) }))
    throwsCode(
      () => re.accept('n', encodeFragment({ fragId: id, index: 1, count: 2, chunk: inner.subarray(half) })),
      'malformed',
    )
    assert.equal(re.stats().pendingFrames, 0)
  })

  it("evicts the oldest partial of the same neighbour only, never another neighbour's", () => {
    const r = prng(seed ^ 5)
    const { r: re } = reassembler({ maxPending: 4 })
    const good = frameBytes(r, 1500)
    const goodPieces = fragmentFrame(good, 185, fragId(r))
    re.accept('good', goodPieces[0]!)
    const first = fragmentFrame(frameBytes(r, 1000), 185, fragId(r))
    re.accept('evil', first[0]!)
    for (let i = 0; i < 10; i++) re.accept('evil', fragmentFrame(frameBytes(r, 1000), 185, fragId(r))[0]!)
    assert.equal(re.pending('evil').frames, 4)
    assert.equal(re.stats().evicted, 7)
    // The evicted oldest one no longer completes from its remaining pieces.
    assert.deepEqual(feed(re, 'evil', first.slice(1)), [])
    assert.deepEqual(feed(re, 'good', goodPieces.slice(1)), [good])
  })

  it('evicts to stay within the byte budget', () => {
    const r = prng(seed ^ 6)
    const { r: re } = reassembler({ maxPendingBytes: MAX_FRAME_REASSEMBLY_COST })
    const a = fragmentFrame(frameBytes(r, 60_000), 100, fragId(r))
    const b = fragmentFrame(frameBytes(r, 60_000), 100, fragId(r))
    feed(re, 'n', a.slice(0, -1))
    const fb = feed(re, 'n', b)
    assert.equal(fb.length, 1)
    assert.equal(re.stats().evicted, 1)
    assert.ok(re.pending('n').bytes <= MAX_FRAME_REASSEMBLY_COST)
  })

  it('forgets a neighbour on link-down', () => {
    const r = prng(seed ^ 7)
    const { r: re } = reassembler()
    re.accept('n', fragmentFrame(frameBytes(r, 1000), 185, fragId(r))[0]!)
    re.accept('m', fragmentFrame(frameBytes(r, 1000), 185, fragId(r))[0]!)
    re.forget('n')
    assert.deepEqual(re.pending('n'), { frames: 0, bytes: 0 })
    assert.equal(re.stats().pendingFrames, 1)
  })

  it('refuses options outside their range', () => {
    const now = () => 0
    throwsCode(() => new Reassembler({ now, timeoutMs: 0 }), 'invalid_argument')
    throwsCode(() => new Reassembler({ now, maxPending: 0 }), 'invalid_argument')
    throwsCode(
      () => new Reassembler({ now, maxPendingBytes: MAX_FRAME_REASSEMBLY_COST - 1 }),
      'invalid_argument',
    )
    assert.ok(new Reassembler({ now, maxPendingBytes: MAX_FRAME_REASSEMBLY_COST }))
  })

  it('stays within its bounds and throws only TalkenError under a flood of hostile fragments', () => {
    const r = prng(seed ^ 8)
    const maxPending = 16
    const maxPendingBytes = 384 * 1024
    const { c, r: re } = reassembler({ maxPending, maxPendingBytes, timeoutMs: 120_000 })
    const ids = Array.from({ length: 8 }, () => fragId(r))
    const good = frameBytes(r, 20_000)
    const goodPieces = shuffle(r, fragmentFrame(good, 244, fragId(r)))
    const delivered: Uint8Array[] = []
    const codes = new Map<string, number>()
    const hostile = (): Uint8Array => {
      const id = r() < 0.5 ? ids[int(r, ids.length)]! : fragId(r)
      const count = r() < 0.3 ? MAX_FRAGMENTS : 2 + int(r, r() < 0.5 ? 10 : MAX_FRAGMENTS - 1)
      const index = r() < 0.05 ? count + int(r, 5) : int(r, count)
      const len = r() < 0.1 ? 1 + int(r, 60_000) : 1 + int(r, 500)
      switch (int(r, 6)) {
        case 0:
          return new Uint8Array(int(r, 64)).map(() => int(r, 256))
        case 1: {
          const bytes = encodeCbor([15, id, Math.min(index, 1023), count, new Uint8Array(len)])
          bytes[int(r, bytes.length)] = int(r, 256)
          return bytes
        }
        default:
          return encodeCbor([15, id, Math.min(index, 1023), count, new Uint8Array(len).fill(int(r, 3))])
      }
    }
    for (let i = 0; i < 30_000; i++) {
      c.t += int(r, 20)
      try {
        if (i % 50 === 25 && goodPieces.length > 0) {
          const frame = re.accept('good', goodPieces.pop()!)
          if (frame) delivered.push(frame)
        }
        re.accept(`evil${int(r, 2)}`, hostile())
      } catch (err) {
        assert.ok(err instanceof TalkenError, `seed ${seed}, step ${i}: ${String(err)}`)
        codes.set(err.code, (codes.get(err.code) ?? 0) + 1)
      }
      const totals = ['evil0', 'evil1', 'good'].map((n) => re.pending(n))
      assert.equal(
        totals.reduce((sum, p) => sum + p.bytes, 0),
        re.stats().pendingBytes,
      )
      for (const n of ['evil0', 'evil1', 'good']) {
        const p = re.pending(n)
        assert.ok(
          p.frames <= maxPending && p.bytes <= maxPendingBytes,
          `seed ${seed}, step ${i}: ${n} ${p.bytes}`,
        )
      }
      if (i % 5000 === 0) re.expire()
    }
    assert.deepEqual(delivered, [good])
    assert.deepEqual(
      [...codes.keys()].sort().filter((k) => !['malformed', 'non_canonical', 'too_large'].includes(k)),
      [],
    )
    const s = re.stats()
    assert.ok(s.evicted > 0 && s.rejected > 0, JSON.stringify(s))
    // Everything hostile left behind expires.
    c.t += 120_000
    assert.equal(re.expire(), s.pendingFrames)
    assert.equal(re.stats().pendingFrames, 0)
    assert.equal(re.stats().pendingBytes, 0)
  })
})
