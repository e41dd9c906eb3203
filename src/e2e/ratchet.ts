/**
 * The Double Ratchet with header encryption, as Signal specifies it ("The Double Ratchet
 * Algorithm", T. Perrin and M. Marlinspike, revision 1, 2016: §3 and §4 "Double Ratchet with
 * header encryption"), over X25519, HKDF-SHA-256, HMAC-SHA-256 and ChaCha20-Poly1305.
 *
 * ```
 * KDF_RK(rk, dh_out)  = HKDF(ikm = dh_out, salt = rk, info = "talken/e2e/ratchet/v1", 96 bytes)
 *                       → rk' (32) ‖ ck (32) ‖ nhk (32)
 * KDF_CK(ck)          = mk = HMAC(ck, 0x01), ck' = HMAC(ck, 0x02)
 * header              = dh (32) ‖ pn (uint32 BE) ‖ n (uint32 BE)                     40 bytes
 * encrypted header    = nonce (12, random) ‖ ChaCha20-Poly1305(hk, nonce, header, "")  68 bytes
 * message             = encrypted header ‖ ChaCha20-Poly1305(mk, nonce, plaintext, AD ‖ encrypted header)
 * ```
 * Header keys are used for a whole chain, so header nonces are random. The body takes the same
 * nonce under its own key: each message key should encrypt one message (the spec, §5.2, allows a
 * fixed nonce for that reason), but a store rolled back past a commit (a power cut under
 * `synchronous = NORMAL`, a restored backup) would seal a new message with a key already used,
 * and with a fixed nonce that would be a two-time pad. A random nonce makes that harmless. Headers are encrypted so that a
 * relay learns neither message numbers nor ratchet keys; a recipient finds the session a message
 * belongs to by trying its few current header keys ({@link ratchetTryDecrypt}).
 *
 * Skipped message keys are bounded as in libsignal: one message may move a chain at most
 * {@link MAX_GAP} steps ahead (a header asking for more is refused with `too_large` before any key
 * is derived), and keeps the keys of the last {@link MAX_SKIP} messages it skipped (earlier ones
 * are given up: those messages were sent before the last thousand that are still missing, and most
 * likely expired). At most {@link MAX_SKIPPED_KEYS} keys in all (the oldest are dropped), kept for
 * at most {@link MAX_OLD_CHAINS} earlier chains. A new chain is accepted whatever length it says
 * the previous one had: beyond {@link MAX_GAP}, the previous chain's missing messages are given up
 * rather than the session (the spec refuses the header, and the session could then never
 * recover: every later chain of the peer carries a previous length at least as far).
 *
 * States are immutable values: {@link ratchetEncrypt} and {@link ratchetDecrypt} return a new
 * state and leave their input untouched, so a failed decryption changes nothing.
 * Byte tables: docs/e2e.md §Ratchet message and §Session state.
 */
import { TalkenError } from '../errors.ts'
import {
  AEAD_NONCE_LENGTH,
  AEAD_TAG_LENGTH,
  aeadOpen,
  aeadSealInto,
  DH_KEY_LENGTH,
  type DhKeyPair,
  dh,
  generateDhKey,
  hkdf,
  hmac,
  type RandomSource,
  secretsEqual,
  uninitializedBytes,
} from './primitives.ts'

/** Most message keys one message stores for the messages it skipped. */
export const MAX_SKIP = 1000
/**
 * Most chain steps one message may take us ahead (libsignal: 25,000). Each costs an HMAC
 * (about 3 µs); beyond it a message is refused, as a flood of far-future numbers is.
 */
export const MAX_GAP = 10_000
/** Most skipped message keys held in one session; the oldest are dropped beyond it. */
export const MAX_SKIPPED_KEYS = 2000
/** Earlier receiving chains remembered (for their skipped keys and to recognise replays). */
export const MAX_OLD_CHAINS = 8
/** Largest message number (uint32 on the wire). */
export const MAX_MESSAGE_NUMBER = 0xffff_ffff

/** Plain header: ratchet key, previous chain length, message number. */
export const HEADER_LENGTH = DH_KEY_LENGTH + 4 + 4
/** Encrypted header: nonce, header, tag. */
export const ENCRYPTED_HEADER_LENGTH = AEAD_NONCE_LENGTH + HEADER_LENGTH + AEAD_TAG_LENGTH
/** Bytes a ratchet message adds to its plaintext: encrypted header and body tag (84). */
export const RATCHET_OVERHEAD = ENCRYPTED_HEADER_LENGTH + AEAD_TAG_LENGTH

const KDF_RK_INFO = 'talken/e2e/ratchet/v1'
const MESSAGE_KEY_BYTE = Uint8Array.of(0x01)
const CHAIN_KEY_BYTE = Uint8Array.of(0x02)
const EMPTY = new Uint8Array(0)

/** A message key kept for a message that has not arrived yet. */
export interface SkippedKey {
  /** The header key of the chain it belongs to. */
  readonly hk: Uint8Array
  readonly n: number
  readonly mk: Uint8Array
}

/** A receiving chain that a DH ratchet step closed: its header key and length. */
export interface OldChain {
  readonly hk: Uint8Array
  /** Messages the chain had: numbers below this were received or skipped. */
  readonly end: number
}

/** The state of one side of a Double Ratchet session (names as in the spec). */
export interface RatchetState {
  readonly dhs: DhKeyPair
  readonly dhr: Uint8Array | null
  readonly rk: Uint8Array
  readonly cks: Uint8Array | null
  readonly ckr: Uint8Array | null
  readonly hks: Uint8Array | null
  readonly hkr: Uint8Array | null
  readonly nhks: Uint8Array
  readonly nhkr: Uint8Array
  readonly ns: number
  readonly nr: number
  readonly pn: number
  /** Oldest first. */
  readonly skipped: readonly SkippedKey[]
  /** Oldest first. */
  readonly oldChains: readonly OldChain[]
}

type Draft = { -readonly [K in keyof RatchetState]: RatchetState[K] } & {
  skipped: SkippedKey[]
  oldChains: OldChain[]
}

/** A decrypted ratchet header. */
export interface RatchetHeader {
  readonly dh: Uint8Array
  readonly pn: number
  readonly n: number
}

function kdfRk(rk: Uint8Array, dhOut: Uint8Array): [rk: Uint8Array, ck: Uint8Array, nhk: Uint8Array] {
  const out = hkdf(dhOut, rk, KDF_RK_INFO, 96)
  return [out.slice(0, 32), out.slice(32, 64), out.slice(64, 96)]
}

function kdfCk(ck: Uint8Array): [ck: Uint8Array, mk: Uint8Array] {
  return [hmac(ck, CHAIN_KEY_BYTE), hmac(ck, MESSAGE_KEY_BYTE)]
}

/** The initiator's state (spec: RatchetInitAliceHE): `sk` and header keys from X3DH. */
export function initInitiator(
  sk: Uint8Array,
  theirRatchetKey: Uint8Array,
  sharedHka: Uint8Array,
  sharedNhkb: Uint8Array,
  random: RandomSource,
): RatchetState {
  const dhs = generateDhKey(random)
  const [rk, cks, nhks] = kdfRk(sk, dh(dhs, theirRatchetKey))
  return {
    dhs,
    dhr: new Uint8Array(theirRatchetKey),
    rk,
    cks,
    ckr: null,
    hks: new Uint8Array(sharedHka),
    hkr: null,
    nhks,
    nhkr: new Uint8Array(sharedNhkb),
    ns: 0,
    nr: 0,
    pn: 0,
    skipped: [],
    oldChains: [],
  }
}

/** The responder's state (spec: RatchetInitBobHE): its signed prekey is the first ratchet key. */
export function initResponder(
  sk: Uint8Array,
  ourRatchetKey: DhKeyPair,
  sharedHka: Uint8Array,
  sharedNhkb: Uint8Array,
): RatchetState {
  return {
    dhs: ourRatchetKey,
    dhr: null,
    rk: new Uint8Array(sk),
    cks: null,
    ckr: null,
    hks: null,
    hkr: null,
    nhks: new Uint8Array(sharedNhkb),
    nhkr: new Uint8Array(sharedHka),
    ns: 0,
    nr: 0,
    pn: 0,
    skipped: [],
    oldChains: [],
  }
}

function encodeHeader(h: RatchetHeader): Uint8Array {
  const out = new Uint8Array(HEADER_LENGTH)
  out.set(h.dh, 0)
  const view = new DataView(out.buffer)
  view.setUint32(DH_KEY_LENGTH, h.pn)
  view.setUint32(DH_KEY_LENGTH + 4, h.n)
  return out
}

function tryHeader(hk: Uint8Array, encryptedHeader: Uint8Array): RatchetHeader | undefined {
  let plain: Uint8Array
  try {
    plain = aeadOpen(
      hk,
      encryptedHeader.subarray(0, AEAD_NONCE_LENGTH),
      encryptedHeader.subarray(AEAD_NONCE_LENGTH),
      EMPTY,
    )
  } catch {
    return undefined
  }
  if (plain.length !== HEADER_LENGTH) return undefined
  const view = new DataView(plain.buffer, plain.byteOffset, plain.length)
  return {
    dh: plain.slice(0, DH_KEY_LENGTH),
    pn: view.getUint32(DH_KEY_LENGTH),
    n: view.getUint32(DH_KEY_LENGTH + 4),
  }
}

/**
 * Encrypts `plaintext` with associated data `ad` (the session's identities). Returns the new state
 * and the message (encrypted header ‖ ciphertext); `state` itself is unchanged. `random` gives the
 * header nonce only, a public value (so `bufferedRandom` of primitives.ts will do).
 */
export function ratchetEncrypt(
  state: RatchetState,
  plaintext: Uint8Array,
  ad: Uint8Array,
  random: RandomSource,
): { state: RatchetState; message: Uint8Array } {
  if (state.cks === null || state.hks === null) {
    throw new TalkenError('invalid_argument', 'this session cannot send before it has received a message')
  }
  if (state.ns >= MAX_MESSAGE_NUMBER) throw new TalkenError('too_large', 'sending chain exhausted')
  const [cks, mk] = kdfCk(state.cks)
  const header = encodeHeader({ dh: state.dhs.publicKey, pn: state.pn, n: state.ns })
  const nonce = random(AEAD_NONCE_LENGTH)
  // One buffer for the whole message, every byte of it written below: the body is copied once,
  // out of the cipher, and never zero-filled first.
  const message = uninitializedBytes(RATCHET_OVERHEAD + plaintext.length)
  message.set(nonce, 0)
  aeadSealInto(message, AEAD_NONCE_LENGTH, state.hks, nonce, header, EMPTY)
  const encryptedHeader = message.subarray(0, ENCRYPTED_HEADER_LENGTH)
  aeadSealInto(message, ENCRYPTED_HEADER_LENGTH, mk, nonce, plaintext, [ad, encryptedHeader])
  return { state: { ...state, cks, ns: state.ns + 1 }, message }
}

function draft(state: RatchetState): Draft {
  return { ...state, skipped: [...state.skipped], oldChains: [...state.oldChains] }
}

/**
 * A header too far ahead; `details.chain` says whether it is of the current receiving chain or of
 * the peer's next one (the session store asks the peer for a new chain in the first case).
 */
function pastTheEnd(n: number): TalkenError {
  return new TalkenError('malformed', `message number ${n} is past the end of any chain; refused`)
}

function tooFar(n: number, chain: 'current' | 'next'): TalkenError {
  return new TalkenError('too_large', `message number ${n} is more than ${MAX_GAP} messages ahead; refused`, {
    details: { chain },
  })
}

/**
 * Moves the current receiving chain to message `until` (at most {@link MAX_GAP} ahead, checked by
 * the caller), storing the keys of the last {@link MAX_SKIP} messages skipped; the keys of earlier
 * ones are not derived (their messages will be refused as dropped).
 */
function skipTo(s: Draft, until: number): void {
  if (s.ckr === null || s.hkr === null) return
  const keepFrom = until - MAX_SKIP
  let ck = s.ckr
  while (s.nr < until) {
    if (s.nr < keepFrom) {
      ck = hmac(ck, CHAIN_KEY_BYTE)
    } else {
      const [next, mk] = kdfCk(ck)
      s.skipped.push({ hk: s.hkr, n: s.nr, mk })
      ck = next
    }
    s.nr += 1
  }
  s.ckr = ck
}

function takeSkipped(s: Draft, hk: Uint8Array, n: number): Uint8Array | undefined {
  const i = s.skipped.findIndex((k) => k.n === n && secretsEqual(k.hk, hk))
  if (i < 0) return undefined
  const mk = s.skipped[i]!.mk
  s.skipped.splice(i, 1)
  return mk
}

function dhRatchet(s: Draft, header: RatchetHeader, random: RandomSource): void {
  s.pn = s.ns
  s.ns = 0
  s.nr = 0
  s.hks = s.nhks
  s.hkr = s.nhkr
  s.dhr = header.dh
  const [rk1, ckr, nhkr] = kdfRk(s.rk, dh(s.dhs, header.dh))
  s.ckr = ckr
  s.nhkr = nhkr
  s.dhs = generateDhKey(random)
  const [rk2, cks, nhks] = kdfRk(rk1, dh(s.dhs, header.dh))
  s.rk = rk2
  s.cks = cks
  s.nhks = nhks
}

function closeCurrentChain(s: Draft, end: number): void {
  if (s.hkr === null) return
  s.oldChains.push({ hk: s.hkr, end: Math.max(end, s.nr) })
  while (s.oldChains.length > MAX_OLD_CHAINS) {
    const dropped = s.oldChains.shift()!
    s.skipped = s.skipped.filter((k) => !secretsEqual(k.hk, dropped.hk))
  }
}

/** Which header keys to try: the current and next chain's, or those of earlier chains. */
export type HeaderSearch = 'current' | 'old'

function messageKeyFor(
  s: Draft,
  encryptedHeader: Uint8Array,
  random: RandomSource,
  search: HeaderSearch,
): Uint8Array | undefined {
  return search === 'current' ? currentChainKey(s, encryptedHeader, random) : oldChainKey(s, encryptedHeader)
}

function currentChainKey(
  s: Draft,
  encryptedHeader: Uint8Array,
  random: RandomSource,
): Uint8Array | undefined {
  // 1. The current receiving chain: the common case.
  if (s.hkr !== null) {
    const h = tryHeader(s.hkr, encryptedHeader)
    if (h !== undefined) {
      if (h.n < s.nr) {
        const mk = takeSkipped(s, s.hkr, h.n)
        if (mk === undefined) throw replayed(h.n)
        return mk
      }
      if (h.n - s.nr > MAX_GAP) throw tooFar(h.n, 'current')
      // No chain reaches this number (a sender stops before it): taken, the count after it would
      // pass what a session record holds, and the stored session could never be read again.
      if (h.n >= MAX_MESSAGE_NUMBER) throw pastTheEnd(h.n)
      skipTo(s, h.n)
      const [ckr, mk] = kdfCk(s.ckr!)
      s.ckr = ckr
      s.nr += 1
      return mk
    }
  }
  // 2. The next chain: the peer took a DH ratchet step.
  const h = tryHeader(s.nhkr, encryptedHeader)
  if (h !== undefined) {
    // Check the bound before deriving anything.
    if (h.n > MAX_GAP) throw tooFar(h.n, 'next')
    stepTo(s, h, random)
    skipTo(s, h.n)
    const [ckr, mk] = kdfCk(s.ckr!)
    s.ckr = ckr
    s.nr += 1
    return mk
  }
  return undefined
}

/** The DH ratchet step into the peer's chain that `h` (authenticated under the next header key) opens. */
function stepTo(s: Draft, h: RatchetHeader, random: RandomSource): void {
  // The previous chain's missing messages: their keys if within reach, else given up.
  if (h.pn - s.nr <= MAX_GAP) skipTo(s, h.pn)
  closeCurrentChain(s, h.pn)
  dhRatchet(s, h, random)
}

/**
 * For a message refused because it is more than {@link MAX_GAP} into the peer's next chain
 * (`too_large` with `details.chain` `'next'`): the state after the DH ratchet step its header
 * (authenticated by the next header key) asks for, the new chain left at its start. Our next
 * message then carries a new ratchet key, and the peer's answering step starts a chain we take,
 * which a refusal alone would never bring about: the peer would write on in the chain we refuse.
 * Undefined when the message's header does not open under the next header key.
 */
export function ratchetStepToNextChain(
  state: RatchetState,
  message: Uint8Array,
  random: RandomSource,
): RatchetState | undefined {
  if (!(message instanceof Uint8Array) || message.length < RATCHET_OVERHEAD) return undefined
  const h = tryHeader(state.nhkr, message.subarray(0, ENCRYPTED_HEADER_LENGTH))
  if (h === undefined) return undefined
  const s = draft(state)
  stepTo(s, h, random)
  if (s.skipped.length > MAX_SKIPPED_KEYS) s.skipped.splice(0, s.skipped.length - MAX_SKIPPED_KEYS)
  return s
}

function oldChainKey(s: Draft, encryptedHeader: Uint8Array): Uint8Array | undefined {
  // 3. An earlier chain: a late message whose key was skipped, or a replay.
  for (let i = s.oldChains.length - 1; i >= 0; i--) {
    const chain = s.oldChains[i]!
    const old = tryHeader(chain.hk, encryptedHeader)
    if (old === undefined) continue
    const mk = takeSkipped(s, chain.hk, old.n)
    if (mk !== undefined) return mk
    if (old.n < chain.end) throw replayed(old.n)
    throw new TalkenError('malformed', `message number ${old.n} is beyond the end of its chain`)
  }
  return undefined
}

function replayed(n: number): TalkenError {
  return new TalkenError(
    'replayed',
    `message ${n} of this chain was already received (or its key was dropped)`,
  )
}

/**
 * Decrypts a message with associated data `ad`. Returns the new state and the plaintext; throws
 * (`decrypt_failed`, `replayed`, `too_large`, `malformed`) and leaves `state` as it was otherwise.
 */
export function ratchetDecrypt(
  state: RatchetState,
  message: Uint8Array,
  ad: Uint8Array,
  random: RandomSource,
): { state: RatchetState; plaintext: Uint8Array } {
  const out =
    ratchetTryDecrypt(state, message, ad, random, 'current') ??
    ratchetTryDecrypt(state, message, ad, random, 'old')
  if (out === undefined) {
    throw new TalkenError('decrypt_failed', 'the message header does not decrypt under this session')
  }
  return out
}

/**
 * Filled in by {@link ratchetTryDecrypt} when a message's header opened but its body did not:
 * `opens` tells, at the cost of one AEAD, whether another body under the same header opens with
 * the message key that header led to (without deriving it again).
 */
export interface BodyFailure {
  opens?: (message: Uint8Array) => boolean
}

function bodyOpens(mk: Uint8Array, message: Uint8Array, ad: Uint8Array): boolean {
  if (message.length < RATCHET_OVERHEAD) return false
  const encryptedHeader = message.subarray(0, ENCRYPTED_HEADER_LENGTH)
  try {
    aeadOpen(mk, message.subarray(0, AEAD_NONCE_LENGTH), message.subarray(ENCRYPTED_HEADER_LENGTH), [
      ad,
      encryptedHeader,
    ])
    return true
  } catch {
    return false
  }
}

/**
 * As {@link ratchetDecrypt}, but returns undefined when the header decrypts under none of the
 * header keys `search` names (the message is not for this session, or not for this pass). Once the
 * header matches, failures throw as in {@link ratchetDecrypt}.
 */
export function ratchetTryDecrypt(
  state: RatchetState,
  message: Uint8Array,
  ad: Uint8Array,
  random: RandomSource,
  search: HeaderSearch,
  failure?: BodyFailure,
): { state: RatchetState; plaintext: Uint8Array } | undefined {
  if (!(message instanceof Uint8Array) || message.length < RATCHET_OVERHEAD) {
    throw new TalkenError('malformed', `a ratchet message is at least ${RATCHET_OVERHEAD} bytes`)
  }
  if (search === 'old' && state.oldChains.length === 0) return undefined
  const s = draft(state)
  const encryptedHeader = message.subarray(0, ENCRYPTED_HEADER_LENGTH)
  const mk = messageKeyFor(s, encryptedHeader, random, search)
  if (mk === undefined) return undefined
  const nonce = message.subarray(0, AEAD_NONCE_LENGTH)
  let plaintext: Uint8Array
  try {
    plaintext = aeadOpen(mk, nonce, message.subarray(ENCRYPTED_HEADER_LENGTH), [ad, encryptedHeader])
  } catch (err) {
    if (failure !== undefined) failure.opens = (other) => bodyOpens(mk, other, ad)
    throw err
  }
  if (s.skipped.length > MAX_SKIPPED_KEYS) s.skipped.splice(0, s.skipped.length - MAX_SKIPPED_KEYS)
  return { state: s, plaintext }
}
