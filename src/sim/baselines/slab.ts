/**
 * A bump allocator of small byte arrays carved out of shared slabs. A busy baseline router
 * allocates millions of small frames and message records; giving each its own ArrayBuffer makes
 * V8 account external memory per array and run full collections far more often (measured: six
 * times the CPU per allocation with a large live heap). Slabs start at 1 KiB and double up to
 * 8 KiB (larger slabs measured slower with thousands of routers: each zero-filled slab is paid
 * for but mostly wasted), so idle routers cost little. A slab is freed when no array carved from
 * it is reachable any more; arrays never overlap.
 */

/** Largest slab. */
const MAX_SLAB = 8 * 1024

/** Hands out `Uint8Array`s that share a few large buffers. */
export class Slab {
  private buffer: ArrayBuffer | undefined
  private offset = 0
  private next: number

  constructor(initial = 1024) {
    this.next = initial
  }

  /** A zero-filled array of `length` bytes. */
  alloc(length: number): Uint8Array {
    if (length > MAX_SLAB / 8) return new Uint8Array(length)
    if (this.buffer === undefined || this.offset + length > this.buffer.byteLength) {
      this.buffer = new ArrayBuffer(Math.max(this.next, length))
      this.offset = 0
      if (this.next < MAX_SLAB) this.next *= 2
    }
    const out = new Uint8Array(this.buffer, this.offset, length)
    this.offset += (length + 7) & ~7
    return out
  }
}
