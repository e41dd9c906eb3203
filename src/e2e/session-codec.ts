/**
 * The stored form of sessions: deterministic CBOR, so that a restart keeps them.
 *
 * ```
 * SessionRecord = [ version: 1, sessions: [Session] (1–3, the active one first) ]
 * Session = [ initiator: 0|1, ourDeviceKey, ourIdentityDh, theirDeviceKey, theirIdentityDh,
 *             baseKey (32 bytes each), pending: [] | [signedPrekeyId, oneTimePrekeyId, identitySignature, introductionKey?],
 *             ratchet: Ratchet ]
 * Ratchet = [ dhsPrivate, dhsPublic, dhr | h'', rk, cks | h'', ckr | h'', hks | h'', hkr | h'',
 *             nhks, nhkr, ns, nr, pn, oldChains: [[hk, end]] (≤ 8),
 *             skipped: [[hk, [[n, mk]]]] (runs of one chain, oldest first; ≤ 2,000 keys in all) ]
 * ```
 * An absent key is the empty byte string. The record holds secrets: it lives only in the local
 * store (kv namespace `e2e-session`). Byte table: docs/e2e.md §Session state.
 */
import { TalkenError } from '../errors.ts'
import { PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH } from '../identity/ed25519.ts'
import { type CborValue, decodeCbor, encodeCbor, FieldReader } from '../wire/cbor.ts'
import { DH_KEY_LENGTH } from './primitives.ts'
import {
  MAX_MESSAGE_NUMBER,
  MAX_OLD_CHAINS,
  MAX_SKIPPED_KEYS,
  type OldChain,
  type RatchetState,
  type SkippedKey,
} from './ratchet.ts'
import type { Session } from './session.ts'
import { MAX_PREKEY_ID } from './x3dh.ts'

const VERSION = 1
const KEY = 32
/** Sessions kept per peer device: the active one and up to two that may still receive. */
export const MAX_SESSIONS_PER_DEVICE = 3
/** Largest stored session record: 3 × (2,000 skipped keys × 37 B + chains) ≈ 230 KB, capped at 256 KiB. */
export const MAX_SESSION_RECORD_BYTES = 256 * 1024

const EMPTY = new Uint8Array(0)
const opt = (k: Uint8Array | null): Uint8Array => k ?? EMPTY

function ratchetToCbor(r: RatchetState): CborValue {
  const runs: CborValue[] = []
  let run: [Uint8Array, CborValue[]] | undefined
  for (const k of r.skipped) {
    if (run === undefined || !sameBytes(run[0], k.hk)) {
      run = [k.hk, []]
      runs.push(run)
    }
    run[1].push([k.n, k.mk])
  }
  return [
    r.dhs.privateKey,
    r.dhs.publicKey,
    opt(r.dhr),
    r.rk,
    opt(r.cks),
    opt(r.ckr),
    opt(r.hks),
    opt(r.hkr),
    r.nhks,
    r.nhkr,
    r.ns,
    r.nr,
    r.pn,
    r.oldChains.map((c) => [c.hk, c.end]),
    runs,
  ]
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0
}

function optKey(r: FieldReader, field: string): Uint8Array | null {
  const v = r.bytes(field, 0, KEY)
  if (v.length === 0) return null
  if (v.length !== KEY) throw new TalkenError('malformed', `session.${field}: expected 0 or 32 bytes`)
  return v
}

function ratchetFromCbor(value: CborValue): RatchetState {
  const r = new FieldReader(value, 'session.ratchet', 15)
  const dhs = { privateKey: r.bytes('dhsPrivate', KEY), publicKey: r.bytes('dhsPublic', KEY) }
  const dhr = optKey(r, 'dhr')
  const rk = r.bytes('rk', KEY)
  const cks = optKey(r, 'cks')
  const ckr = optKey(r, 'ckr')
  const hks = optKey(r, 'hks')
  const hkr = optKey(r, 'hkr')
  const nhks = r.bytes('nhks', KEY)
  const nhkr = r.bytes('nhkr', KEY)
  const ns = r.uint('ns', MAX_MESSAGE_NUMBER)
  const nr = r.uint('nr', MAX_MESSAGE_NUMBER)
  const pn = r.uint('pn', MAX_MESSAGE_NUMBER)
  const oldChains = r.array('oldChains', MAX_OLD_CHAINS, (v, i): OldChain => {
    const c = new FieldReader(v, `session.ratchet.oldChains[${i}]`, 2)
    return { hk: c.bytes('hk', KEY), end: c.uint('end', MAX_MESSAGE_NUMBER) }
  })
  const skipped: SkippedKey[] = []
  r.array('skipped', MAX_SKIPPED_KEYS, (v, i) => {
    const run = new FieldReader(v, `session.ratchet.skipped[${i}]`, 2)
    const hk = run.bytes('hk', KEY)
    run.array('keys', MAX_SKIPPED_KEYS, (k, j) => {
      const e = new FieldReader(k, `session.ratchet.skipped[${i}][${j}]`, 2)
      skipped.push({ hk, n: e.uint('n', MAX_MESSAGE_NUMBER), mk: e.bytes('mk', KEY) })
      if (skipped.length > MAX_SKIPPED_KEYS)
        throw new TalkenError('malformed', 'session: too many skipped keys')
    })
  })
  return { dhs, dhr, rk, cks, ckr, hks, hkr, nhks, nhkr, ns, nr, pn, oldChains, skipped }
}

function sessionToCbor(s: Session): CborValue {
  return [
    s.initiator ? 1 : 0,
    s.ourDeviceKey,
    s.ourIdentityDh,
    s.theirDeviceKey,
    s.theirIdentityDh,
    s.baseKey,
    s.pending === null
      ? []
      : [
          s.pending.signedPrekeyId,
          s.pending.oneTimePrekeyId,
          s.pending.identitySignature,
          ...(s.pending.introductionKey === undefined ? [] : [s.pending.introductionKey]),
        ],
    ratchetToCbor(s.ratchet),
  ]
}

function sessionFromCbor(value: CborValue, i: number): Session {
  const r = new FieldReader(value, `session[${i}]`, 8)
  const initiator = r.uint('initiator', 1) === 1
  const ourDeviceKey = r.bytes('ourDeviceKey', PUBLIC_KEY_LENGTH)
  const ourIdentityDh = r.bytes('ourIdentityDh', DH_KEY_LENGTH)
  const theirDeviceKey = r.bytes('theirDeviceKey', PUBLIC_KEY_LENGTH)
  const theirIdentityDh = r.bytes('theirIdentityDh', DH_KEY_LENGTH)
  const baseKey = r.bytes('baseKey', DH_KEY_LENGTH)
  const pendingValue = r.value()
  let pending: Session['pending'] = null
  if (Array.isArray(pendingValue) && pendingValue.length > 0) {
    const p = new FieldReader(pendingValue, `session[${i}].pending`, 3, 4)
    pending = {
      signedPrekeyId: p.uint('signedPrekeyId', MAX_PREKEY_ID, 1),
      oneTimePrekeyId: p.uint('oneTimePrekeyId', MAX_PREKEY_ID),
      identitySignature: p.bytes('identitySignature', SIGNATURE_LENGTH),
      ...(p.remaining === 0 ? {} : { introductionKey: p.bytes('introductionKey', KEY) }),
    }
  } else if (!Array.isArray(pendingValue)) {
    throw new TalkenError('malformed', `session[${i}].pending: expected an array`)
  }
  const ratchet = ratchetFromCbor(r.value())
  return {
    initiator,
    ourDeviceKey,
    ourIdentityDh,
    theirDeviceKey,
    theirIdentityDh,
    baseKey,
    pending,
    ratchet,
  }
}

/** Encodes the sessions with one peer device, the active one first. */
export function encodeSessionRecord(sessions: readonly Session[]): Uint8Array {
  if (sessions.length === 0 || sessions.length > MAX_SESSIONS_PER_DEVICE) {
    throw new TalkenError('invalid_argument', `a session record holds 1–${MAX_SESSIONS_PER_DEVICE} sessions`)
  }
  return encodeCbor([VERSION, sessions.map(sessionToCbor)])
}

/** Decodes a stored session record. Throws `too_large`, `malformed`, `non_canonical` or `unsupported_version`. */
export function decodeSessionRecord(bytes: Uint8Array): Session[] {
  const r = new FieldReader(
    decodeCbor(bytes, MAX_SESSION_RECORD_BYTES, 'session record'),
    'session record',
    2,
  )
  const version = r.uint('version', 255)
  if (version !== VERSION) throw new TalkenError('unsupported_version', `session record version ${version}`)
  const sessions = r.array('sessions', MAX_SESSIONS_PER_DEVICE, sessionFromCbor)
  if (sessions.length === 0) throw new TalkenError('malformed', 'session record: no session')
  return sessions
}
