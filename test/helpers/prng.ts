/** A small seeded PRNG (mulberry32) so that randomized tests can be replayed from their seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The seed for a randomized test: `$TALKEN_SEED` if set, else a fresh one (printed by the caller). */
export function testSeed(): number {
  const env = process.env.TALKEN_SEED
  return env ? Number(env) >>> 0 : (Math.random() * 2 ** 32) >>> 0
}
