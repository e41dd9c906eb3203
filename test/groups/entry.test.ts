import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decode, encode } from 'cborg'
import { TalkenError } from '../../src/errors.ts'
import { compareBytes, decodeEntry, genesisRoomId, signEntry } from '../../src/groups/entry.ts'
import { ENTRY_OVERHEAD_BYTES, MAX_ENTRY_BODY_BYTES, MAX_ENTRY_BYTES } from '../../src/groups/limits.ts'
import { createIdentity } from '../../src/identity/identity.ts'
import { throwsCode } from '../helpers/errors.ts'
import { prng, testSeed } from '../helpers/prng.ts'

const me = createIdentity({ now: 1_750_000_000_000, deviceName: 'entry' })
const genesis = signEntry(me, {
  roomId: genesisRoomId(),
  parents: [],
  depth: 0,
  kind: 'genesis',
  body: new Uint8Array([1, 2, 3]),
  time: 1_750_000_000_000,
})
const post = signEntry(me, {
  roomId: genesis.hash,
  parents: [genesis.hash],
  depth: 1,
  kind: 'post',
  body: new Uint8Array(100).fill(7),
  time: 1_750_000_000_001,
})

describe('room entry codec', () => {
  it('round-trips and hashes the signed encoding', () => {
    for (const e of [genesis, post]) {
      const d = decodeEntry(e.bytes)
      assert.deepEqual(d.hash, e.hash)
      assert.equal(d.kind, e.kind)
      assert.deepEqual(d.parents, e.parents)
      assert.deepEqual(d.author, me.account.publicKey)
    }
  })

  it('states its size arithmetic', () => {
    assert.ok(ENTRY_OVERHEAD_BYTES + MAX_ENTRY_BODY_BYTES <= MAX_ENTRY_BYTES)
  })

  it('refuses a changed field, a bad certificate, a newer version, a non-canonical form', () => {
    const fields = decode(post.bytes) as unknown[]
    const changed = [...fields]
    changed[8] = 1_750_000_000_002
    throwsCode(() => decodeEntry(encode(changed)), 'bad_signature')
    const other = createIdentity({ now: 1_750_000_000_000, deviceName: 'other' })
    const foreignCert = [...fields]
    foreignCert[2] = other.account.publicKey
    throwsCode(() => decodeEntry(encode(foreignCert)), 'bad_signature')
    const newer = [...fields]
    newer[0] = 2
    throwsCode(() => decodeEntry(encode(newer)), 'unsupported_version')
    const loose = new Uint8Array(post.bytes.length + 1)
    loose.set(post.bytes)
    throwsCode(() => decodeEntry(loose), 'malformed', 'non_canonical')
    // a uint written in a longer form than needed
    const longDepth = Buffer.from(encode([1, 1]))
    longDepth[2] = 0x18
    throwsCode(() => decodeEntry(Buffer.concat([longDepth, Buffer.from([1])])), 'non_canonical', 'malformed')
    throwsCode(() => decodeEntry(new Uint8Array(MAX_ENTRY_BYTES + 1)), 'too_large')
  })

  it('refuses unsorted parents and a genesis with parents', () => {
    assert.throws(() =>
      signEntry(me, {
        roomId: genesis.hash,
        parents: [post.hash, genesis.hash].sort((a, b) => compareBytes(b, a)),
        depth: 2,
        kind: 'post',
        body: new Uint8Array(0),
        time: 1,
      }),
    )
    const fields = decode(post.bytes) as unknown[]
    const asGenesis = [...fields]
    asGenesis[6] = 0
    throwsCode(() => decodeEntry(encode(asGenesis)), 'malformed')
  })

  it('survives 12,000 mutated inputs with typed errors only', () => {
    const seed = testSeed()
    console.log(`# entry fuzz seed ${seed} (replay with TALKEN_SEED=${seed})`)
    const rand = prng(seed)
    const samples = [genesis.bytes, post.bytes]
    let accepted = 0
    for (let round = 0; round < 12_000; round++) {
      const base = samples[round % samples.length]!
      const input = new Uint8Array(base)
      const mode = Math.floor(rand() * 4)
      let bytes: Uint8Array = input
      if (mode === 0) {
        const flips = 1 + Math.floor(rand() * 4)
        for (let i = 0; i < flips; i++) {
          const at = Math.floor(rand() * input.length)
          input[at] = input[at]! ^ (1 << Math.floor(rand() * 8))
        }
      } else if (mode === 1) {
        bytes = input.subarray(0, Math.floor(rand() * input.length))
      } else if (mode === 2) {
        const at = Math.floor(rand() * input.length)
        input[at] = Math.floor(rand() * 256)
        bytes = input
      } else {
        bytes = new Uint8Array(Math.floor(rand() * 300))
        for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256)
      }
      try {
        decodeEntry(bytes)
        accepted++
      } catch (err) {
        assert.ok(err instanceof TalkenError, `round ${round}: ${String(err)}`)
        assert.ok(
          ['malformed', 'too_large', 'non_canonical', 'unsupported_version', 'bad_signature'].includes(
            err.code,
          ),
          `round ${round}: code ${err.code}`,
        )
      }
    }
    // A mutation that decodes must be the original (a flip undone by another).
    assert.ok(accepted < 100)
  })
})
