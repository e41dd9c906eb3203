/**
 * ControlHistory against the rule it implements, written out again here the slow way: for random
 * room histories with concurrent and backdated branches, re-admissions and removals, the state at
 * every entry and at random sets of entries equals the fold of the whole sorted control past
 * (docs/groups.md §Membership), entries are judged valid the same way, and a second history fed
 * the entries in another order reaches the same states.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ControlHistory } from '../../src/groups/control-history.ts'
import { compareBytes, genesisRoomId, type RoomEntry, signEntry, toHex } from '../../src/groups/entry.ts'
import { applyEntry, type RoomState } from '../../src/groups/membership.ts'
import {
  encodeAddBody,
  encodeGenesisBody,
  encodePostBody,
  encodeRemoveBody,
  encodeRotateBody,
} from '../../src/groups/room-bodies.ts'
import { roomKeyId } from '../../src/groups/room-keys.ts'
import { createIdentity } from '../../src/identity/identity.ts'
import { prng, testSeed } from '../helpers/prng.ts'
import { replayedInAnotherOrder, ruleState, stateSummary } from '../helpers/room-rule.ts'

const T0 = 1_750_000_000_000
const PEOPLE = Array.from({ length: 5 }, (_, i) => createIdentity({ now: T0, deviceName: `p${i}` }))

/** One random history of about `size` entries; returns what disagreed. */
function check(random: () => number, size: number): string[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(random() * 256))
  const byId = new Map<string, RoomEntry>()
  const pasts = new Map<string, Set<string>>()
  const past = (e: RoomEntry): Set<string> => {
    const id = toHex(e.hash)
    let p = pasts.get(id)
    if (p === undefined) {
      p = new Set([id])
      for (const q of e.parents) for (const x of past(byId.get(toHex(q))!)) p.add(x)
      pasts.set(id, p)
    }
    return p
  }
  const reference = (at: readonly RoomEntry[]): RoomState => {
    const ids = new Set<string>()
    for (const e of at) for (const x of past(e)) ids.add(x)
    const concurrent = (a: RoomEntry, b: RoomEntry) =>
      !past(a).has(toHex(b.hash)) && !past(b).has(toHex(a.hash))
    return ruleState(
      [...ids].map((x) => byId.get(x)!),
      concurrent,
    )
  }

  const genesis = signEntry(PEOPLE[0]!, {
    roomId: genesisRoomId(),
    parents: [],
    depth: 0,
    kind: 'genesis',
    body: encodeGenesisBody({
      name: 'r',
      sealingKey: bytes(32),
      keyId: roomKeyId(bytes(32)),
      sealedKey: bytes(80),
    }),
    time: T0,
  })
  const history = new ControlHistory()
  const all = [genesis]
  byId.set(toHex(genesis.hash), genesis)
  history.record(genesis, [], history.stateAt([]))
  const heads = new Set([toHex(genesis.hash)])
  const problems: string[] = []
  for (let tries = 0; all.length < size && tries < size * 20; tries++) {
    const chosen = new Map<string, RoomEntry>()
    for (let i = 1 + Math.floor(random() * 3); i > 0; i--) {
      const e = random() < 0.6 ? byId.get(pick([...heads]))! : pick(all) // old parents: backdated
      chosen.set(toHex(e.hash), e)
    }
    const parents = [...chosen.values()].sort((a, b) => compareBytes(a.hash, b.hash))
    const state = reference(parents)
    const members = [...state.members.keys()]
    const writer = members.length > 0 && random() < 0.9 ? pick(members) : undefined
    const author =
      writer === undefined ? pick(PEOPLE) : PEOPLE.find((p) => toHex(p.account.publicKey) === writer)!
    const newKey = (recipients: string[]) => ({
      keyId: roomKeyId(bytes(32)),
      sealed: recipients.sort().map((a) => ({ account: Buffer.from(a, 'hex'), sealed: bytes(80) })),
    })
    const r = random()
    let kind: RoomEntry['kind']
    let body: Uint8Array
    if (r < 0.25) {
      kind = 'post'
      body = encodePostBody({
        keyId: state.currentKeyId ?? bytes(16),
        nonce: bytes(12),
        ciphertext: bytes(20),
      })
    } else if (r < 0.5) {
      const outside = PEOPLE.filter((p) => !state.members.has(toHex(p.account.publicKey)))
      if (outside.length === 0) continue
      kind = 'add'
      body = encodeAddBody({
        member: pick(outside).account.publicKey,
        sealingKey: bytes(32),
        role: random() < 0.6 ? 'admin' : 'member',
        keyId: state.currentKeyId ?? bytes(16),
        sealedKey: bytes(80),
      })
    } else if (r < 0.7) {
      const others = members.filter((m) => m !== toHex(author.account.publicKey))
      if (others.length === 0) continue
      const out = pick(others)
      kind = 'remove'
      body = encodeRemoveBody({
        member: Buffer.from(out, 'hex'),
        ...newKey(members.filter((m) => m !== out)),
      })
    } else if (r < 0.85) {
      kind = 'rotate'
      body = encodeRotateBody(newKey([...members]))
    } else {
      kind = 'leave'
      body = new Uint8Array(0)
    }
    const depth = 1 + Math.max(...parents.map((p) => p.depth))
    const e = signEntry(author, {
      roomId: genesis.hash,
      parents: parents.map((p) => p.hash),
      depth,
      kind,
      body,
      time: T0,
    })
    const valid = (s: RoomState) => {
      try {
        applyEntry(s, e)
        return true
      } catch {
        return false
      }
    }
    if (byId.has(toHex(e.hash))) continue // the same entry again (a log takes it as a duplicate)
    const before = history.stateAt(parents)
    if (valid(state) !== valid(before)) problems.push(`${kind} judged differently`)
    if (!valid(before)) continue
    all.push(e)
    byId.set(toHex(e.hash), e)
    history.record(e, parents, before)
    for (const p of parents) heads.delete(toHex(p.hash))
    heads.add(toHex(e.hash))
  }
  for (const e of all) {
    if (stateSummary(history.stateAt([e])) !== stateSummary(reference([e])))
      problems.push(`state after ${e.kind}`)
  }
  for (let i = 0; i < 40; i++) {
    const some = [...new Set(Array.from({ length: 2 + Math.floor(random() * 3) }, () => pick(all)))]
    if (stateSummary(history.stateAt(some)) !== stateSummary(reference(some)))
      problems.push('state at a merge')
  }
  // Another arrival order (parents first), another history: the same states.
  const other = replayedInAnotherOrder(all, pick)
  for (const e of all) {
    if (stateSummary(other.stateAt([e])) !== stateSummary(history.stateAt([e])))
      problems.push('order-dependent state')
  }
  return problems
}

describe('control history', () => {
  it('equals the fold of the whole control past, in every arrival order, over random histories', () => {
    const seed = testSeed()
    const random = prng(seed)
    for (let run = 0; run < 40; run++) {
      const problems = check(random, 50)
      assert.deepEqual(problems, [], `seed ${seed}, run ${run}`)
    }
  })
})
