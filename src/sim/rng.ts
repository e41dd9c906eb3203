/**
 * The simulator's seeded randomness: sfc32 (Chris Doty-Humphrey's Small Fast Counting generator,
 * 128-bit state, passes PractRand to 2^40+ bytes) keyed through a splitmix32-style mixer.
 *
 * Every consumer draws from its own named stream (`rng.fork('mobility')`, `fork('traffic')`,
 * `fork('router:7')`). A fork depends only on its parent's key and the name, never on how many
 * numbers the parent or a sibling already drew, so the contact schedule and the message schedule
 * are identical whichever router runs and however much randomness that router consumes.
 */

/** One 32-bit avalanche step (the finaliser of MurmurHash3 / splitmix32). */
function mix32(x: number): number {
  let z = x | 0
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  return (z ^ (z >>> 16)) >>> 0
}

/** FNV-1a over the UTF-16 code units of `name`, then mixed with `salt`. */
function hashName(name: string, salt: number): number {
  let h = (0x811c9dc5 ^ salt) >>> 0
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return mix32(h)
}

/** A deterministic pseudo-random generator with independent named sub-streams. */
export class Rng {
  /** The 128-bit key this stream (and its forks) derive from. */
  private readonly key: readonly [number, number, number, number]
  private a: number
  private b: number
  private c: number
  private d: number

  private constructor(key: readonly [number, number, number, number]) {
    this.key = key
    this.a = key[0]
    this.b = key[1]
    this.c = key[2]
    this.d = key[3] | 1
    // Warm-up: sfc32 needs a few rounds before nearby keys decorrelate.
    for (let i = 0; i < 16; i++) this.uint32()
  }

  /**
   * The root stream for a run. `seed` is any non-negative safe integer.
   *
   * @example
   * const rng = Rng.fromSeed(42)
   * const traffic = rng.fork('traffic')
   * traffic.int(10) // the same for every run with seed 42
   */
  static fromSeed(seed: number): Rng {
    const lo = seed >>> 0
    const hi = Math.floor(seed / 4294967296) >>> 0
    return new Rng([
      mix32(lo ^ 0x9e3779b9),
      mix32(hi ^ 0x7f4a7c15),
      mix32(lo + 0x3c6ef372),
      mix32(hi + 0xdaa66d2b),
    ])
  }

  /** An independent stream named `name`, a pure function of this stream's key and the name. */
  fork(name: string): Rng {
    const k = this.key
    return new Rng([
      mix32(k[0] ^ hashName(name, 0x01)),
      mix32(k[1] ^ hashName(name, 0x02)),
      mix32(k[2] ^ hashName(name, 0x03)),
      mix32(k[3] ^ hashName(name, 0x04)),
    ])
  }

  /** A uniformly distributed 32-bit unsigned integer. */
  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return t >>> 0
  }

  /** A uniformly distributed number in [0, 1) with 53 bits of precision. */
  next(): number {
    const hi = this.uint32() >>> 5 // 27 bits
    const lo = this.uint32() >>> 6 // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992
  }

  /** A uniformly distributed integer in [0, n); `n` a positive integer below 2^32. */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  /** A uniformly distributed number in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next()
  }

  /** An exponentially distributed number with the given mean. */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.next())
  }

  /** Fills `out` with random bytes and returns it. */
  fill(out: Uint8Array): Uint8Array {
    for (let i = 0; i < out.length; i += 4) {
      let w = this.uint32()
      for (let j = i; j < i + 4 && j < out.length; j++) {
        out[j] = w & 0xff
        w >>>= 8
      }
    }
    return out
  }

  /** A function drawing from this stream, in the shape {@link RouterHost.random} wants. */
  toFunction(): () => number {
    return () => this.next()
  }
}
