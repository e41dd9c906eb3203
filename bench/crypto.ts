/**
 * Crypto benchmark: sealing and opening one message in a live end-to-end session, against the
 * same primitives called directly through `node:crypto`, in the same run.
 *
 * One operation is one message sealed by one side and opened by the other; figures are
 * operations per second (`unit`), for a small message ({@link SMALL_BYTES}) and a large one
 * ({@link LARGE_BYTES}: the most content a sealed body carries, 64,680 bytes — the 64 KiB bucket
 * less 512 bytes, less the 344 bytes a first-contact body adds without an introduction).
 *
 * - talken: `encrypt` of the sender's session then `decrypt` of the receiver's (`session.ts`),
 *   sessions in memory, in steady state: one direction only (A to B, within one sending chain, so
 *   no DH ratchet step), the session values replaced by the returned ones after each call. The
 *   plaintext is the message itself, with no padding. Per message this is two chain-key steps
 *   (sender and receiver), the header sealed and opened (random 12-byte nonce) and the body sealed
 *   and opened, with the session's 128-byte associated data.
 * - floor: one chain-key step (HMAC-SHA-256 of the chain key with 0x01 and with 0x02), one
 *   ChaCha20-Poly1305 seal and one open of the same plaintext (zero nonce, no associated data),
 *   `node:crypto` called directly. This is the least any ratchet must do per message.
 * - ratio: talken ÷ floor (ops/s), per size. The target is at least 0.67 (Talken at most 1.5 × the
 *   floor's cost).
 * - ratchetFloor (extra): what the Double Ratchet with header encryption needs per message, with
 *   `node:crypto` directly: a chain-key step on each side, the 40-byte header sealed and opened
 *   under a random nonce (drawn from a pool, as Talken does), the body sealed and opened with 128 bytes of associated data.
 *   `ratchetFloorRatio` = talken ÷ ratchetFloor: the implementation's own cost. For small messages
 *   this floor is about twice the first one, so the first ratio cannot reach much above 0.5.
 * - replies (extra): A and B take turns, each message a reply, so each opens a new sending chain:
 *   a DH ratchet step (a fresh X25519 key and two agreements, two root-key derivations) besides
 *   the work above. Against `replyFloor`, the same primitives through `node:crypto` directly, keys
 *   going into OpenSSL the fastest way it offers (JWK); `replyRatio` = replies ÷ replyFloor.
 * - sealed (extra): the same message through `openSessionStore` `seal` then `open` over memory
 *   stores: padding to the bucket (512 bytes and 65,024 bytes), the session record re-encoded as
 *   CBOR and written in a store transaction on both sides. `sealedRatio` = sealed ÷ floor.
 *
 * Timing: after a few untimed batches, short timed batches ({@link BATCH} operations) of the three
 * sides interleaved, their order rotated, for at most {@link SIZE_BUDGET_MS} per size; each figure
 * is the median over its batches (about 30 s in all). The machine's cores may be shared with other
 * work (`loadAverage` records it): compare the sides of one run, not runs.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  randomBytes,
} from 'node:crypto'
import { loadavg } from 'node:os'
import { PrekeyStore } from '../src/e2e/prekey-store.ts'
import { bufferedRandom, systemRandom } from '../src/e2e/primitives.ts'
import { MAX_SEALED_CONTENT } from '../src/e2e/sealed.ts'
import { acceptSession, decrypt, encrypt, initiateSession, type Session } from '../src/e2e/session.ts'
import { openSessionStore, type SessionStore } from '../src/e2e/session-store.ts'
import { e2eIdentity } from '../src/e2e/x3dh.ts'
import { generateSigningKey } from '../src/identity/ed25519.ts'
import { createMemoryStore } from '../src/store/memory-store.ts'

/** Bytes of a small message. */
const SMALL_BYTES = 200
/** Bytes of a large message: the largest content of a sealed body. */
const LARGE_BYTES = MAX_SEALED_CONTENT
/** Operations per timed batch, by size: a few milliseconds each. */
const BATCH = { small: 200, large: 40 } as const
/** Timed batches per side and size, at most. */
const MAX_BATCHES = 200
/** Time spent measuring each size (all three sides together), at most. */
const SIZE_BUDGET_MS = 12_000
/** Untimed batches per side and size first (JIT, caches). */
const WARMUP_BATCHES = 5

type Size = keyof typeof BATCH

/** Operations per second, by message size. */
export interface CryptoRates {
  readonly small: number
  readonly large: number
}

/** The one-line result of {@link cryptoBench}. */
export interface CryptoBenchResult {
  readonly bench: 'crypto'
  readonly unit: 'ops/s, one op = seal + open of one message'
  readonly mode: 'session in memory, steady state, one direction'
  readonly talken: CryptoRates
  readonly floor: CryptoRates
  /** talken ÷ floor; the target is at least 0.67. */
  readonly ratio: CryptoRates
  /** The primitives the ratchet with header encryption needs per message, called directly. */
  readonly ratchetFloor: CryptoRates
  /** talken ÷ ratchetFloor: what the implementation adds to what the protocol needs. */
  readonly ratchetFloorRatio: CryptoRates
  /** A conversation of replies: every message a DH ratchet step (see the file's comment). */
  readonly replies: CryptoRates
  /** The primitives a reply needs, called directly. */
  readonly replyFloor: CryptoRates
  /** replies ÷ replyFloor. */
  readonly replyRatio: CryptoRates
  /** The same messages through the session store's seal and open over memory stores. */
  readonly sealed: CryptoRates
  readonly sealedRatio: CryptoRates
  readonly messageBytes: CryptoRates
  /** Operations timed per side: batches × batch size. */
  readonly iterations: CryptoRates
  readonly batch: CryptoRates
  /** Figures are the median over this many batches per side. */
  readonly batches: CryptoRates
  /** `uptime` load averages (1, 5, 15 minutes) when the bench started: the cores may be shared. */
  readonly loadAverage: readonly number[]
}

/** One side of the bench: seals and opens one message, checking that it came back. */
type Op = (plaintext: Uint8Array) => void

function check(got: Uint8Array, want: Uint8Array): void {
  if (got.length !== want.length || got[0] !== want[0] || got[got.length - 1] !== want[want.length - 1]) {
    throw new Error('crypto bench: a message did not round-trip')
  }
}

/** A's and B's sessions, past first contact and one reply. */
function livePair(): [Session, Session] {
  const a = e2eIdentity(generateSigningKey())
  const b = e2eIdentity(generateSigningKey())
  const prekeys = new PrekeyStore(createMemoryStore(), b, systemRandom, Date.now)
  const hello = new Uint8Array(16)
  const first = initiateSession(a, prekeys.bundle(), hello)
  const sb = acceptSession(b, prekeys, first.message.bytes).session
  const reply = encrypt(sb, hello)
  return [decrypt(first.session, reply.message.bytes).session, reply.session]
}

/** Two live sessions: A sends in steady state, or (`replies`) A and B take turns. */
function sessionSide(replies = false): Op {
  let [sa, sb] = livePair()
  // Header nonces as the session store draws them: from the CSPRNG a pool at a time.
  const nonces = bufferedRandom()
  let turn = 0
  return (plaintext) => {
    const aSends = !replies || turn++ % 2 === 0
    const sent = encrypt(aSends ? sa : sb, plaintext, undefined, { random: nonces })
    const got = decrypt(aSends ? sb : sa, sent.message.bytes)
    if (aSends) [sa, sb] = [sent.session, got.session]
    else [sb, sa] = [sent.session, got.session]
    check(got.plaintext, plaintext)
  }
}

const ZERO_NONCE = Buffer.alloc(12)
const ONE = Buffer.of(0x01)
const TWO = Buffer.of(0x02)

/** KDF_CK on two chains that move in step: the sender's (`next`) and the receiver's (`peer`). */
function floorStep(): { next(): Buffer; peer(): Buffer } {
  let ck = randomBytes(32)
  let peerCk = Buffer.from(ck)
  return {
    next() {
      const mk = createHmac('sha256', ck).update(ONE).digest()
      ck = createHmac('sha256', ck).update(TWO).digest()
      return mk
    },
    peer() {
      const mk = createHmac('sha256', peerCk).update(ONE).digest()
      peerCk = createHmac('sha256', peerCk).update(TWO).digest()
      return mk
    },
  }
}

function seal(key: Buffer, nonce: Buffer, plaintext: Uint8Array, ad: Uint8Array | undefined) {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 })
  if (ad !== undefined) c.setAAD(ad, { plaintextLength: plaintext.length })
  const ct = Buffer.concat([c.update(plaintext), c.final()])
  return { ct, tag: c.getAuthTag() }
}

function open(key: Buffer, nonce: Buffer, ct: Buffer, tag: Buffer, ad: Uint8Array | undefined): Buffer {
  const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 })
  if (ad !== undefined) d.setAAD(ad, { plaintextLength: ct.length })
  d.setAuthTag(tag)
  return Buffer.concat([d.update(ct), d.final()])
}

/** The floor: one chain-key step and one AEAD seal and open, `node:crypto` directly. */
function floorSide(): Op {
  const step = floorStep()
  return (plaintext) => {
    const mk = step.next()
    const b = seal(mk, ZERO_NONCE, plaintext, undefined)
    check(open(mk, ZERO_NONCE, b.ct, b.tag, undefined), plaintext)
  }
}

/**
 * What the Double Ratchet with header encryption needs per message at the least, `node:crypto`
 * directly: a chain-key step on each side, and the 40-byte header and the body each sealed and
 * opened (the header under a random nonce, the body with the 128-byte associated data).
 */
function ratchetFloorSide(): Op {
  const step = floorStep()
  const hk = randomBytes(32)
  const header = randomBytes(40)
  const ad = randomBytes(128)
  // Nonces drawn from the CSPRNG a pool at a time, as Talken draws them.
  let pool = randomBytes(1020)
  let at = pool.length
  return (plaintext) => {
    const sender = step.next()
    const receiver = step.peer()
    if (at === pool.length) {
      pool = randomBytes(1020)
      at = 0
    }
    const nonce = pool.subarray(at, at + 12)
    at += 12
    const h = seal(hk, nonce, header, undefined)
    check(open(hk, nonce, h.ct, h.tag, undefined), header)
    const b = seal(sender, ZERO_NONCE, plaintext, ad)
    check(open(receiver, ZERO_NONCE, b.ct, b.tag, ad), plaintext)
  }
}

/** An X25519 key pair from 32 random bytes, and agreement, the fastest way `node:crypto` has. */
function floorDhKey(): { agree(theirPublic: string): Buffer; publicKey: string } {
  const privateKey = createPrivateKey({
    key: { kty: 'OKP', crv: 'X25519', d: randomBytes(32).toString('base64url'), x: '' },
    format: 'jwk',
  })
  const publicKey = createPublicKey(privateKey).export({ format: 'jwk' }).x!
  return {
    publicKey,
    agree: (x) =>
      diffieHellman({
        privateKey,
        publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' }),
      }),
  }
}

/**
 * What a reply needs at the least on top of {@link ratchetFloorSide}: the receiver's DH ratchet
 * step, a fresh key and two agreements with the sender's new public key, each followed by a
 * root-key derivation (HKDF-SHA-256, 96 bytes: root key, chain key, next header key).
 */
function replyFloorSide(): Op {
  const message = ratchetFloorSide()
  let rk = randomBytes(32)
  let ours = floorDhKey()
  let theirs = floorDhKey()
  return (plaintext) => {
    message(plaintext)
    // The receiver's step with the sender's new key: the chain it receives on, then its own.
    const receiving = hkdfSync('sha256', ours.agree(theirs.publicKey), rk, 'bench', 96)
    ours = floorDhKey()
    const sending = hkdfSync(
      'sha256',
      ours.agree(theirs.publicKey),
      Buffer.from(receiving, 0, 32),
      'bench',
      96,
    )
    rk = Buffer.from(sending, 0, 32)
    // The next message goes the other way.
    ;[ours, theirs] = [theirs, ours]
  }
}

/** Two session stores over memory stores, past first contact and one reply: A seals, B opens. */
function sealedSide(): Op {
  const now = () => Date.now()
  const aKey = generateSigningKey()
  const bKey = generateSigningKey()
  const a: SessionStore = openSessionStore({ store: createMemoryStore(), device: aKey, now })
  const b: SessionStore = openSessionStore({ store: createMemoryStore(), device: bKey, now })
  const hello = new Uint8Array(16)
  b.open(a.seal({ deviceKey: bKey.publicKey, bundle: b.bundle() }, hello))
  a.open(b.seal({ deviceKey: aKey.publicKey }, hello))
  const to = { deviceKey: bKey.publicKey }
  return (plaintext) => {
    check(b.open(a.seal(to, plaintext)).content, plaintext)
  }
}

/** Runs `n` operations; returns operations per second. */
function timeOps(op: Op, plaintext: Uint8Array, n: number): number {
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) op(plaintext)
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  return n / s
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

const round3 = (x: number) => Math.round(x * 1000) / 1000

/**
 * Runs the crypto benchmark and prints one JSON line (`json: true`) or a short table.
 *
 * @example
 * // npm run bench -- crypto --json
 * const result = await cryptoBench({ json: true })
 */
export async function cryptoBench(opts: { json: boolean }): Promise<CryptoBenchResult> {
  const loadAverage = loadavg().map((x) => Math.round(x * 100) / 100)
  const sides = {
    talken: sessionSide(),
    floor: floorSide(),
    ratchetFloor: ratchetFloorSide(),
    replies: sessionSide(true),
    replyFloor: replyFloorSide(),
    sealed: sealedSide(),
  }
  const names = Object.keys(sides) as (keyof typeof sides)[]
  const messages: Record<Size, Uint8Array> = {
    small: randomBytes(SMALL_BYTES),
    large: randomBytes(LARGE_BYTES),
  }
  const rates: Record<keyof typeof sides, Record<Size, number[]>> = {
    talken: { small: [], large: [] },
    floor: { small: [], large: [] },
    ratchetFloor: { small: [], large: [] },
    replies: { small: [], large: [] },
    replyFloor: { small: [], large: [] },
    sealed: { small: [], large: [] },
  }
  for (const size of ['small', 'large'] as const) {
    for (let i = 0; i < WARMUP_BATCHES; i++) {
      for (const name of names) timeOps(sides[name], messages[size], BATCH[size])
    }
    // Short batches, the sides interleaved and their order rotated, so that each side sees the
    // same share of whatever else the machine is doing.
    const started = Date.now()
    for (let b = 0; b < MAX_BATCHES && Date.now() - started < SIZE_BUDGET_MS; b++) {
      for (let k = 0; k < names.length; k++) {
        const name = names[(b + k) % names.length]!
        rates[name][size].push(timeOps(sides[name], messages[size], BATCH[size]))
      }
      if (b % 16 === 15) await new Promise((resolve) => setImmediate(resolve))
    }
  }
  const med = (name: keyof typeof sides): CryptoRates => ({
    small: Math.round(median(rates[name].small)),
    large: Math.round(median(rates[name].large)),
  })
  const talken = med('talken')
  const floor = med('floor')
  const sealed = med('sealed')
  const ratchetFloor = med('ratchetFloor')
  const replies = med('replies')
  const replyFloor = med('replyFloor')
  const batches = { small: rates.talken.small.length, large: rates.talken.large.length }
  const result: CryptoBenchResult = {
    bench: 'crypto',
    unit: 'ops/s, one op = seal + open of one message',
    mode: 'session in memory, steady state, one direction',
    talken,
    floor,
    ratio: { small: round3(talken.small / floor.small), large: round3(talken.large / floor.large) },
    ratchetFloor,
    ratchetFloorRatio: {
      small: round3(talken.small / ratchetFloor.small),
      large: round3(talken.large / ratchetFloor.large),
    },
    replies,
    replyFloor,
    replyRatio: {
      small: round3(replies.small / replyFloor.small),
      large: round3(replies.large / replyFloor.large),
    },
    sealed,
    sealedRatio: { small: round3(sealed.small / floor.small), large: round3(sealed.large / floor.large) },
    messageBytes: { small: SMALL_BYTES, large: LARGE_BYTES },
    iterations: { small: batches.small * BATCH.small, large: batches.large * BATCH.large },
    batch: { small: BATCH.small, large: BATCH.large },
    batches,
    loadAverage,
  }
  if (opts.json) console.log(JSON.stringify(result))
  else printTable(result)
  return result
}

function printTable(r: CryptoBenchResult): void {
  const row = (name: string, s: CryptoRates) =>
    `${name.padEnd(14)}${String(s.small).padStart(12)}${String(s.large).padStart(12)}`
  console.log(`crypto bench: ${r.unit}; ${r.mode}; median of ${r.batches.small} / ${r.batches.large} batches`)
  console.log(
    `${''.padEnd(14)}${`${r.messageBytes.small} B`.padStart(12)}${`${r.messageBytes.large} B`.padStart(12)}`,
  )
  console.log(row('talken', r.talken))
  console.log(row('floor', r.floor))
  console.log(row('ratchet floor', r.ratchetFloor))
  console.log(row('replies', r.replies))
  console.log(row('reply floor', r.replyFloor))
  console.log(row('sealed', r.sealed))
  console.log(`ratio ${r.ratio.small} / ${r.ratio.large} (target >= 0.67)`)
  console.log(`against the ratchet floor ${r.ratchetFloorRatio.small} / ${r.ratchetFloorRatio.large}`)
  console.log(`replies against the reply floor ${r.replyRatio.small} / ${r.replyRatio.large}`)
  console.log(`sealed against the floor ${r.sealedRatio.small} / ${r.sealedRatio.large}`)
}
