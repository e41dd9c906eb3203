/**
 * The Double Ratchet (src/e2e/ratchet.ts) against an independent reference written here straight
 * from the spec's pseudocode (Signal, "The Double Ratchet Algorithm", §3.5 and §4.3: RatchetInitAliceHE,
 * RatchetEncryptHE, RatchetDecryptHE, TrySkippedMessageKeysHE, SkipMessageKeysHE, DHRatchetHE), as a
 * mutable class over node:crypto directly. No published vectors exist for these parameter choices
 * and no npm package implements them, so the two are cross-checked: fed the same random bytes, they
 * produce the same bytes, and each decrypts the other. Also: the bounds on skipped keys and on far-future
 * message numbers, and that failed decryption leaves the state as it was.
 */
import assert from 'node:assert/strict'
import * as nc from 'node:crypto'
import { describe, it } from 'node:test'
import type { RandomSource } from '../../src/e2e/primitives.ts'
import { dhKeyFromPrivate } from '../../src/e2e/primitives.ts'
import {
  initInitiator,
  initResponder,
  MAX_GAP,
  MAX_SKIP,
  MAX_SKIPPED_KEYS,
  type RatchetState,
  ratchetDecrypt,
  ratchetEncrypt,
} from '../../src/e2e/ratchet.ts'
import type { Session } from '../../src/e2e/session.ts'
import { decodeSessionRecord, encodeSessionRecord } from '../../src/e2e/session-codec.ts'
import { throwsCode } from '../helpers/errors.ts'
import { prng } from '../helpers/prng.ts'
import { seededRandom, shuffle } from './helpers.ts'

// --- the reference ------------------------------------------------------------------------------

const B = (u: Uint8Array) => Buffer.from(u)
const X_PKCS8 = B(Uint8Array.from([0x30, 0x2e, 2, 1, 0, 0x30, 5, 6, 3, 0x2b, 0x65, 0x6e, 4, 0x22, 4, 0x20]))
const X_SPKI = B(Uint8Array.from([0x30, 0x2a, 0x30, 5, 6, 3, 0x2b, 0x65, 0x6e, 3, 0x21, 0]))

class Ref {
  DHs!: { priv: Buffer; pub: Buffer }
  DHr: Buffer | null = null
  RK!: Buffer
  CKs: Buffer | null = null
  CKr: Buffer | null = null
  HKs: Buffer | null = null
  HKr: Buffer | null = null
  NHKs!: Buffer
  NHKr!: Buffer
  Ns = 0
  Nr = 0
  PN = 0
  MKSKIPPED = new Map<string, Buffer>()
  constructor(readonly rng: RandomSource) {}

  static GENERATE_DH(rng: RandomSource) {
    const priv = B(rng(32))
    const key = nc.createPrivateKey({ key: Buffer.concat([X_PKCS8, priv]), format: 'der', type: 'pkcs8' })
    const pub = nc.createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(12)
    return { priv, pub: B(pub) }
  }
  static DH(pair: { priv: Buffer }, pub: Buffer): Buffer {
    return nc.diffieHellman({
      privateKey: nc.createPrivateKey({
        key: Buffer.concat([X_PKCS8, pair.priv]),
        format: 'der',
        type: 'pkcs8',
      }),
      publicKey: nc.createPublicKey({ key: Buffer.concat([X_SPKI, pub]), format: 'der', type: 'spki' }),
    })
  }
  static KDF_RK_HE(rk: Buffer, dhOut: Buffer): [Buffer, Buffer, Buffer] {
    const o = B(new Uint8Array(nc.hkdfSync('sha256', dhOut, rk, 'talken/e2e/ratchet/v1', 96)))
    return [o.subarray(0, 32), o.subarray(32, 64), o.subarray(64)]
  }
  static KDF_CK(ck: Buffer): [Buffer, Buffer] {
    const h = (c: number) => nc.createHmac('sha256', ck).update(Uint8Array.of(c)).digest()
    return [h(2), h(1)]
  }
  static ENCRYPT(key: Buffer, nonce: Buffer, pt: Buffer, ad: Buffer): Buffer {
    const c = nc.createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 })
    c.setAAD(ad, { plaintextLength: pt.length })
    return Buffer.concat([c.update(pt), c.final(), c.getAuthTag()])
  }
  static DECRYPT(key: Buffer, nonce: Buffer, ct: Buffer, ad: Buffer): Buffer | null {
    try {
      const d = nc.createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 })
      d.setAAD(ad, { plaintextLength: ct.length - 16 })
      d.setAuthTag(ct.subarray(ct.length - 16))
      return Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()])
    } catch {
      return null
    }
  }
  HENCRYPT(hk: Buffer, header: Buffer): Buffer {
    const nonce = B(this.rng(12))
    return Buffer.concat([nonce, Ref.ENCRYPT(hk, nonce, header, Buffer.alloc(0))])
  }
  static HDECRYPT(hk: Buffer | null, enc: Buffer): { dh: Buffer; pn: number; n: number } | null {
    if (hk === null) return null
    const h = Ref.DECRYPT(hk, enc.subarray(0, 12), enc.subarray(12), Buffer.alloc(0))
    return h === null ? null : { dh: h.subarray(0, 32), pn: h.readUInt32BE(32), n: h.readUInt32BE(36) }
  }
  static HEADER(dh: Buffer, pn: number, n: number): Buffer {
    const b = Buffer.alloc(40)
    dh.copy(b)
    b.writeUInt32BE(pn, 32)
    b.writeUInt32BE(n, 36)
    return b
  }

  static alice(
    sk: Uint8Array,
    bobPub: Uint8Array,
    hka: Uint8Array,
    nhkb: Uint8Array,
    rng: RandomSource,
  ): Ref {
    const s = new Ref(rng)
    s.DHs = Ref.GENERATE_DH(rng)
    s.DHr = B(bobPub)
    ;[s.RK, s.CKs, s.NHKs] = Ref.KDF_RK_HE(B(sk), Ref.DH(s.DHs, s.DHr))
    s.HKs = B(hka)
    s.NHKr = B(nhkb)
    return s
  }
  static bob(sk: Uint8Array, bobPriv: Uint8Array, hka: Uint8Array, nhkb: Uint8Array, rng: RandomSource): Ref {
    const s = new Ref(rng)
    const pub = nc
      .createPublicKey(
        nc.createPrivateKey({ key: Buffer.concat([X_PKCS8, bobPriv]), format: 'der', type: 'pkcs8' }),
      )
      .export({ format: 'der', type: 'spki' })
      .subarray(12)
    s.DHs = { priv: B(bobPriv), pub: B(pub) }
    s.RK = B(sk)
    s.NHKs = B(nhkb)
    s.NHKr = B(hka)
    return s
  }

  encrypt(plaintext: Uint8Array, AD: Uint8Array): Buffer {
    let mk: Buffer
    ;[this.CKs, mk] = Ref.KDF_CK(this.CKs!)
    const encHeader = this.HENCRYPT(this.HKs!, Ref.HEADER(this.DHs.pub, this.PN, this.Ns))
    this.Ns += 1
    return Buffer.concat([
      encHeader,
      Ref.ENCRYPT(mk, encHeader.subarray(0, 12), B(plaintext), Buffer.concat([AD, encHeader])),
    ])
  }

  decrypt(message: Uint8Array, AD: Uint8Array): Buffer {
    const encHeader = B(message).subarray(0, 68)
    const ciphertext = B(message).subarray(68)
    const skipped = this.trySkipped(encHeader, ciphertext, AD)
    if (skipped !== null) return skipped
    // Work on a snapshot so that a failure changes nothing (the spec says: discard changes).
    const snapshot = { ...this, MKSKIPPED: new Map(this.MKSKIPPED) }
    try {
      let header = Ref.HDECRYPT(this.HKr, encHeader)
      if (header === null) {
        header = Ref.HDECRYPT(this.NHKr, encHeader)
        if (header === null) throw new Error('no header key')
        this.skipMessageKeys(header.pn)
        this.dhRatchet(header)
      }
      this.skipMessageKeys(header.n)
      let mk: Buffer
      ;[this.CKr, mk] = Ref.KDF_CK(this.CKr!)
      this.Nr += 1
      const pt = Ref.DECRYPT(mk, encHeader.subarray(0, 12), ciphertext, Buffer.concat([AD, encHeader]))
      if (pt === null) throw new Error('bad body')
      return pt
    } catch (err) {
      Object.assign(this, snapshot)
      throw err
    }
  }

  trySkipped(encHeader: Buffer, ciphertext: Buffer, AD: Uint8Array): Buffer | null {
    for (const [key, mk] of this.MKSKIPPED) {
      const [hkHex, n] = key.split(':') as [string, string]
      const header = Ref.HDECRYPT(Buffer.from(hkHex, 'hex'), encHeader)
      if (header !== null && header.n === Number(n)) {
        const pt = Ref.DECRYPT(mk, encHeader.subarray(0, 12), ciphertext, Buffer.concat([AD, encHeader]))
        if (pt === null) throw new Error('bad body')
        this.MKSKIPPED.delete(key)
        return pt
      }
    }
    return null
  }

  skipMessageKeys(until: number): void {
    if (this.Nr + MAX_SKIP < until) throw new Error('too many skipped')
    if (this.CKr !== null) {
      while (this.Nr < until) {
        let mk: Buffer
        ;[this.CKr, mk] = Ref.KDF_CK(this.CKr)
        this.MKSKIPPED.set(`${this.HKr!.toString('hex')}:${this.Nr}`, mk)
        this.Nr += 1
      }
    }
  }

  dhRatchet(header: { dh: Buffer }): void {
    this.PN = this.Ns
    this.Ns = 0
    this.Nr = 0
    this.HKs = this.NHKs
    this.HKr = this.NHKr
    this.DHr = header.dh
    ;[this.RK, this.CKr, this.NHKr] = Ref.KDF_RK_HE(this.RK, Ref.DH(this.DHs, this.DHr))
    this.DHs = Ref.GENERATE_DH(this.rng)
    ;[this.RK, this.CKs, this.NHKs] = Ref.KDF_RK_HE(this.RK, Ref.DH(this.DHs, this.DHr))
  }
}

// --- the implementation under test, wrapped like the reference ------------------------------------

interface Party {
  encrypt(pt: Uint8Array, ad: Uint8Array): Uint8Array
  decrypt(m: Uint8Array, ad: Uint8Array): Uint8Array
}

function ours(state: RatchetState, rng: RandomSource): Party & { state: RatchetState } {
  const p = {
    state,
    encrypt(pt: Uint8Array, ad: Uint8Array) {
      const out = ratchetEncrypt(p.state, pt, ad, rng)
      p.state = out.state
      return out.message
    },
    decrypt(m: Uint8Array, ad: Uint8Array) {
      const out = ratchetDecrypt(p.state, m, ad, rng)
      p.state = out.state
      return out.plaintext
    },
  }
  return p
}

const SK = new Uint8Array(32).fill(1)
const HKA = new Uint8Array(32).fill(2)
const NHKB = new Uint8Array(32).fill(3)
const BOB_PRIV = new Uint8Array(32).fill(4)
const AD = new Uint8Array(128).fill(5)

function pair(kind: 'ours' | 'ref', seed: number): { alice: Party; bob: Party } {
  const ra = seededRandom(seed)
  const rb = seededRandom(seed + 1)
  const bobKey = dhKeyFromPrivate(BOB_PRIV)
  if (kind === 'ref') {
    return {
      alice: Ref.alice(SK, bobKey.publicKey, HKA, NHKB, ra),
      bob: Ref.bob(SK, BOB_PRIV, HKA, NHKB, rb),
    }
  }
  return {
    alice: ours(initInitiator(SK, bobKey.publicKey, HKA, NHKB, ra), ra),
    bob: ours(initResponder(SK, bobKey, HKA, NHKB), rb),
  }
}

/** A random conversation: sends both ways, deliveries reordered and delayed (not dropped: Ref keeps all). */
function converse(alice: Party, bob: Party, seed: number, log: (m: Uint8Array) => void): void {
  const rand = prng(seed)
  const toBob: Array<[Uint8Array, string]> = []
  const toAlice: Array<[Uint8Array, string]> = []
  let bobHasHeard = false
  for (let i = 0; i < 120; i++) {
    const r = rand()
    if (r < 0.35 || !bobHasHeard) {
      const body = `a${i}`
      const m = alice.encrypt(new TextEncoder().encode(body), AD)
      log(m)
      toBob.push([m, body])
      if (!bobHasHeard) {
        assert.equal(new TextDecoder().decode(bob.decrypt(toBob.shift()![0], AD)), body)
        bobHasHeard = true
      }
    } else if (r < 0.6) {
      const body = `b${i}`
      const m = bob.encrypt(new TextEncoder().encode(body), AD)
      log(m)
      toAlice.push([m, body])
    } else {
      for (const [queue, to] of [
        [toBob, bob],
        [toAlice, alice],
      ] as const) {
        for (const [m, body] of shuffle(queue.splice(0, Math.floor(rand() * (queue.length + 1))), rand)) {
          const pt = to.decrypt(m, AD)
          log(pt)
          assert.equal(new TextDecoder().decode(pt), body)
        }
      }
    }
  }
}

describe('ratchet: cross-check against an independent reference of the spec', () => {
  for (const seed of [1, 2, 3]) {
    it(`same random bytes, same messages and plaintexts (seed ${seed})`, () => {
      const logOurs: string[] = []
      const logRef: string[] = []
      const o = pair('ours', seed * 100)
      const r = pair('ref', seed * 100)
      converse(o.alice, o.bob, seed, (m) => logOurs.push(Buffer.from(m).toString('hex')))
      converse(r.alice, r.bob, seed, (m) => logRef.push(Buffer.from(m).toString('hex')))
      assert.ok(logOurs.length > 100)
      assert.deepEqual(logOurs, logRef)
    })
  }

  it('each side interoperates with the other implementation', () => {
    const o = pair('ours', 700)
    const r = pair('ref', 900)
    converse(o.alice, r.bob, 7, () => {})
    const o2 = pair('ours', 701)
    const r2 = pair('ref', 901)
    converse(r2.alice, o2.bob, 8, () => {})
  })
})

describe('ratchet: bounds and transactional decryption', () => {
  function started() {
    const { alice, bob } = pair('ours', 42) as {
      alice: ReturnType<typeof ours>
      bob: ReturnType<typeof ours>
    }
    bob.decrypt(alice.encrypt(Uint8Array.of(1), AD), AD)
    return { alice, bob }
  }

  it('refuses a message number more than MAX_GAP ahead, deriving nothing and changing nothing', () => {
    const { alice, bob } = started()
    const before = bob.state
    // A flood of far-future numbers, as a faulty or hostile peer holding the keys could send.
    for (let i = 0; i < 2000; i++) {
      const far = ratchetEncrypt(
        { ...alice.state, ns: MAX_GAP + 2 + i * 1000 },
        Uint8Array.of(i & 0xff),
        AD,
        seededRandom(i),
      )
      throwsCode(() => ratchetDecrypt(bob.state, far.message, AD, seededRandom(i)), 'too_large')
    }
    assert.equal(bob.state, before)
    assert.equal(bob.state.skipped.length, 0)
    // Exactly MAX_SKIP ahead keeps every skipped key.
    for (let i = 0; i < MAX_SKIP; i++) alice.encrypt(Uint8Array.of(0), AD)
    assert.deepEqual(bob.decrypt(alice.encrypt(Uint8Array.of(9), AD), AD), Uint8Array.of(9))
    assert.equal(bob.state.skipped.length, MAX_SKIP)
  })

  it('takes a gap of up to MAX_GAP, keeping the keys of the last MAX_SKIP messages it skipped', () => {
    const { alice, bob } = started()
    const sent: Uint8Array[] = []
    for (let i = 0; i < MAX_GAP; i++) sent.push(alice.encrypt(Uint8Array.of(i & 0xff), AD))
    const last = alice.encrypt(Uint8Array.of(1, 2), AD)
    assert.deepEqual(bob.decrypt(last, AD), Uint8Array.of(1, 2))
    assert.equal(bob.state.skipped.length, MAX_SKIP)
    // The last MAX_SKIP skipped ones still open, in any order; the ones before them were given up.
    assert.deepEqual(bob.decrypt(sent[MAX_GAP - 1]!, AD), Uint8Array.of((MAX_GAP - 1) & 0xff))
    assert.deepEqual(bob.decrypt(sent[MAX_GAP - MAX_SKIP]!, AD), Uint8Array.of((MAX_GAP - MAX_SKIP) & 0xff))
    throwsCode(() => bob.decrypt(sent[MAX_GAP - MAX_SKIP - 1]!, AD), 'replayed')
    throwsCode(() => bob.decrypt(sent[0]!, AD), 'replayed')
    // One more than MAX_GAP ahead is refused.
    for (let i = 0; i <= MAX_GAP; i++) alice.encrypt(Uint8Array.of(0), AD)
    throwsCode(() => bob.decrypt(alice.encrypt(Uint8Array.of(3), AD), AD), 'too_large')
  })

  it('a session whose chain fell too far behind recovers once the recipient writes back', () => {
    const { alice, bob } = started()
    // More than MAX_GAP of Alice's messages are lost (expired on the way, say).
    for (let i = 0; i < MAX_GAP + 5; i++) alice.encrypt(Uint8Array.of(0), AD)
    throwsCode(() => bob.decrypt(alice.encrypt(Uint8Array.of(1), AD), AD), 'too_large')
    // Bob writes back; Alice's next chain says her previous one was that long. Refusing it, as the
    // spec's bound on skipped keys would, left the session unusable for good: every later chain of
    // hers says as much.
    assert.deepEqual(alice.decrypt(bob.encrypt(Uint8Array.of(2), AD), AD), Uint8Array.of(2))
    assert.deepEqual(bob.decrypt(alice.encrypt(Uint8Array.of(3), AD), AD), Uint8Array.of(3))
    assert.equal(bob.state.skipped.length, 0)
    assert.deepEqual(alice.decrypt(bob.encrypt(Uint8Array.of(4), AD), AD), Uint8Array.of(4))
    assert.deepEqual(bob.decrypt(alice.encrypt(Uint8Array.of(5), AD), AD), Uint8Array.of(5))
  })

  it('a new chain after a previous one longer than the gap keeps the keys within reach', () => {
    const { alice, bob } = started()
    const late: Uint8Array[] = []
    for (let i = 0; i < 1500; i++) late.push(alice.encrypt(Uint8Array.of(i & 0xff), AD))
    alice.decrypt(bob.encrypt(Uint8Array.of(2), AD), AD) // Alice steps: her next header is on a new chain
    assert.deepEqual(bob.decrypt(alice.encrypt(Uint8Array.of(3), AD), AD), Uint8Array.of(3))
    assert.equal(bob.state.skipped.length, MAX_SKIP)
    assert.deepEqual(bob.decrypt(late[1499]!, AD), Uint8Array.of(1499 & 0xff))
    throwsCode(() => bob.decrypt(late[499]!, AD), 'replayed')
  })

  it('keeps at most MAX_SKIPPED_KEYS skipped keys across chains, dropping the oldest', () => {
    const { alice, bob } = started()
    let late: Uint8Array | undefined
    for (let round = 0; round < 4; round++) {
      const first = alice.encrypt(Uint8Array.of(round), AD)
      if (round === 0) late = first
      for (let i = 0; i < MAX_SKIP - 1; i++) alice.encrypt(Uint8Array.of(0), AD)
      bob.decrypt(alice.encrypt(Uint8Array.of(round), AD), AD)
      assert.ok(bob.state.skipped.length <= MAX_SKIPPED_KEYS)
      alice.decrypt(bob.encrypt(Uint8Array.of(round), AD), AD)
    }
    assert.equal(bob.state.skipped.length, MAX_SKIPPED_KEYS)
    // The oldest skipped key was dropped: its message is refused as if already seen.
    throwsCode(() => bob.decrypt(late!, AD), 'replayed')
  })

  it('a failed decryption leaves the state exactly as it was, and the next valid message decrypts', () => {
    const { alice, bob } = started()
    const good = alice.encrypt(Uint8Array.of(7), AD)
    const record = (s: RatchetState) => encodeSessionRecord([{ ...SESSION, ratchet: s }])
    const before = record(bob.state)
    for (let i = 0; i < good.length; i += 7) {
      const bad = new Uint8Array(good)
      bad[i]! ^= 0x40
      throwsCode(() => bob.decrypt(bad, AD), 'decrypt_failed', 'malformed', 'too_large', 'replayed')
      assert.deepEqual(record(bob.state), before)
    }
    throwsCode(() => bob.decrypt(good, new Uint8Array(128)), 'decrypt_failed')
    assert.deepEqual(bob.decrypt(good, AD), Uint8Array.of(7))
    throwsCode(() => bob.decrypt(good, AD), 'replayed')
  })

  it('a state rolled back and used again seals with a fresh nonce: no shared keystream', () => {
    // A store that lost its last commit (a power cut, a restored backup) seals the next message
    // with the message key it used for one that went out already.
    const { alice } = started()
    const before = alice.state
    const p1 = new TextEncoder().encode('attack at dawn, the password is hunter2')
    const p2 = new TextEncoder().encode('see you at the station at nine tonight')
    const m1 = alice.encrypt(p1, AD)
    alice.state = before
    const m2 = alice.encrypt(p2, AD)
    const body = (m: Uint8Array) => m.subarray(68, 68 + p2.length)
    const leaked = body(m1).map((b, i) => b ^ body(m2)[i]! ^ p2[i]!)
    assert.notDeepEqual(leaked, p1.subarray(0, p2.length), 'the first plaintext came out of the two bodies')
    assert.notDeepEqual(m1.subarray(0, 12), m2.subarray(0, 12))
  })

  it('the state survives encoding and decoding byte for byte', () => {
    const { alice, bob } = started()
    const held = [alice.encrypt(Uint8Array.of(1), AD), alice.encrypt(Uint8Array.of(2), AD)]
    bob.decrypt(alice.encrypt(Uint8Array.of(3), AD), AD)
    const bytes = encodeSessionRecord([{ ...SESSION, ratchet: bob.state }])
    const back = decodeSessionRecord(bytes)[0]!
    assert.deepEqual(encodeSessionRecord([back]), bytes)
    bob.state = back.ratchet
    assert.deepEqual(bob.decrypt(held[1]!, AD), Uint8Array.of(2))
    assert.deepEqual(bob.decrypt(held[0]!, AD), Uint8Array.of(1))
  })
})

const SESSION: Session = {
  initiator: false,
  ourDeviceKey: new Uint8Array(32),
  ourIdentityDh: new Uint8Array(32),
  theirDeviceKey: new Uint8Array(32),
  theirIdentityDh: new Uint8Array(32),
  baseKey: new Uint8Array(32),
  pending: null,
  ratchet: undefined as unknown as RatchetState,
}
