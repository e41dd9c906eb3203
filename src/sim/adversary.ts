/**
 * The attack scenario's adversary: besides flooding through its own router (100× the normal
 * message load, planned in the scenario's traffic), the attacking node injects frames of its own
 * making into its links. It knows nothing of any router's format, so it forges from what it
 * sees: frames its router sent and frames it received, replayed verbatim, with bytes flipped,
 * truncated or extended, plus pure garbage and empty frames. Every injected frame travels the
 * link model (it costs airtime) and reaches the neighbour's `Router.receive`.
 */
import type { Rng } from './rng.ts'

/** Frames remembered for forging. */
const CAPTURE = 64

/** Crafts hostile frames from a capture of recent traffic. */
export class Adversary {
  private readonly rng: Rng
  private readonly captured: Uint8Array[] = []
  private next = 0

  constructor(rng: Rng) {
    this.rng = rng
  }

  /** Remembers a frame the attacking node sent or received. */
  capture(frame: Uint8Array): void {
    if (this.captured.length < CAPTURE) this.captured.push(frame)
    else this.captured[this.next] = frame
    this.next = (this.next + 1) % CAPTURE
  }

  /** A new hostile frame of at most `mtu` bytes. */
  forge(mtu: number): Uint8Array {
    const rng = this.rng
    const kind = this.captured.length === 0 ? 0 : rng.int(6)
    const base = this.captured[rng.int(Math.max(1, this.captured.length))]
    switch (kind) {
      case 1: {
        // replay verbatim
        return base!.slice(0, mtu)
      }
      case 2: {
        // flip 1–4 bytes
        const out = base!.slice(0, mtu)
        const flips = 1 + rng.int(4)
        for (let i = 0; i < flips && out.length > 0; i++) {
          const at = rng.int(out.length)
          out[at] = out[at]! ^ (1 + rng.int(255))
        }
        return out
      }
      case 3: {
        // truncate
        return base!.slice(0, rng.int(Math.min(base!.length, mtu) + 1))
      }
      case 4: {
        // extend with garbage
        const extra = 1 + rng.int(64)
        const len = Math.min(mtu, base!.length + extra)
        const out = new Uint8Array(len)
        out.set(base!.subarray(0, len))
        rng.fill(out.subarray(Math.min(base!.length, len)))
        return out
      }
      case 5:
        return new Uint8Array(0)
      default:
        return rng.fill(new Uint8Array(1 + rng.int(Math.min(mtu, 512))))
    }
  }
}
