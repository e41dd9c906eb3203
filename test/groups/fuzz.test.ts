/**
 * Room entries that pass the codec but carry junk: bodies of every kind, signed by a real member,
 * and mutated body decoders. Only typed errors may come out, and the honest history stays as it
 * was. Replay a failure with TALKEN_SEED=<seed>.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { TalkenError } from '../../src/errors.ts'
import { ENTRY_KINDS, signEntry } from '../../src/groups/entry.ts'
import {
  decodeAddBody,
  decodeGenesisBody,
  decodePostBody,
  decodeRemoveBody,
  decodeRotateBody,
} from '../../src/groups/room-bodies.ts'
import { prng, testSeed } from '../helpers/prng.ts'
import { add, founder, joiner, sync, T0, transcript, utf8 } from './helpers.ts'

const seed = testSeed()
console.log(`# groups fuzz seed ${seed} (replay with TALKEN_SEED=${seed})`)

function mutate(rand: () => number, base: Uint8Array): Uint8Array {
  const out = new Uint8Array(base)
  const mode = Math.floor(rand() * 3)
  if (mode === 0) {
    for (let i = 0, n = 1 + Math.floor(rand() * 3); i < n && out.length > 0; i++) {
      const at = Math.floor(rand() * out.length)
      out[at] = out[at]! ^ (1 << Math.floor(rand() * 8))
    }
    return out
  }
  if (mode === 1) return out.subarray(0, Math.floor(rand() * out.length))
  const junk = new Uint8Array(Math.floor(rand() * 120))
  for (let i = 0; i < junk.length; i++) junk[i] = Math.floor(rand() * 256)
  return junk
}

describe('room fuzz', () => {
  it('signed entries with junk or mutated bodies are refused with typed errors only', () => {
    const rand = prng(seed)
    const alice = founder('alice')
    const bob = joiner('bob', alice.log.roomId)
    add(alice, bob)
    alice.log.post(utf8('hello'), T0 + 1)
    alice.log.rotateKey(T0 + 2)
    alice.log.removeMember(bob.identity.account.publicKey, T0 + 3)
    alice.log.leave(T0 + 4)
    sync(alice.log, bob.log)
    const bodies = alice.log.entries().map((e) => ({ kind: e.kind, body: e.body }))
    const before = transcript(bob.log)
    const [tip] = bob.log.entries().slice(-1)
    const bodyDecoders = [
      decodeGenesisBody,
      decodePostBody,
      decodeAddBody,
      decodeRemoveBody,
      decodeRotateBody,
    ]
    for (let round = 0; round < 2_000; round++) {
      const source = bodies[Math.floor(rand() * bodies.length)]!
      const kind = rand() < 0.8 ? source.kind : ENTRY_KINDS[Math.floor(rand() * ENTRY_KINDS.length)]!
      if (kind === 'genesis') continue
      const body = mutate(rand, source.body)
      for (const decodeBody of bodyDecoders) {
        try {
          decodeBody(body)
        } catch (err) {
          assert.ok(err instanceof TalkenError, `round ${round}: ${String(err)}`)
        }
      }
      // Signed by alice, the admin, on top of the history bob holds (alice has left in it, so
      // most are refused for authority; the rest for their bodies).
      const entry = signEntry(alice.identity, {
        roomId: alice.log.roomId,
        parents: [tip!.hash],
        depth: tip!.depth + 1,
        kind,
        body,
        time: T0 + 10,
      })
      try {
        bob.log.receive(entry.bytes)
      } catch (err) {
        assert.ok(err instanceof TalkenError, `round ${round}: ${String(err)}`)
        assert.ok(
          ['malformed', 'bad_signature', 'not_permitted', 'non_canonical', 'too_large'].includes(err.code),
          err.code,
        )
      }
    }
    assert.deepEqual(transcript(bob.log), before)
  })

  it('junk bodies from an admin in good standing are refused with typed errors only', () => {
    const rand = prng(seed ^ 0x5eed)
    const alice = founder('alice')
    const bob = joiner('bob', alice.log.roomId)
    add(alice, bob)
    alice.log.post(utf8('hello'), T0 + 1)
    alice.log.rotateKey(T0 + 2)
    sync(alice.log, bob.log)
    const samples = alice.log.entries().filter((e) => e.kind !== 'genesis')
    const before = transcript(bob.log)
    const tip = bob.log.entries().at(-1)!
    let accepted = 0
    for (let round = 0; round < 1_000; round++) {
      const source = samples[Math.floor(rand() * samples.length)]!
      const entry = signEntry(alice.identity, {
        roomId: alice.log.roomId,
        parents: [tip.hash],
        depth: tip.depth + 1,
        kind: source.kind,
        body: mutate(rand, source.body),
        time: T0 + 10 + round,
      })
      try {
        if (bob.log.receive(entry.bytes).status === 'accepted') accepted++
      } catch (err) {
        assert.ok(err instanceof TalkenError, `round ${round}: ${String(err)}`)
        assert.ok(
          ['malformed', 'non_canonical', 'too_large'].includes(err.code),
          `${err.code}: ${err.message}`,
        )
      }
    }
    // Whatever was accepted is signed by the admin and well formed: it extends the history, and
    // the entries bob held before are all still there in the same order.
    assert.deepEqual(transcript(bob.log).slice(0, before.length), before)
    assert.equal(bob.log.size.entries, before.length + accepted)
  })
})
