/**
 * ControlHistory against the rule it implements, written out again here the slow way: for random
 * room histories with concurrent and backdated branches, re-admissions and removals, the state at
 * every entry and at random sets of entries equals the fold of the whole sorted control past
 * (docs/groups.md §Membership), entries are judged valid the same way, and a second history fed
 * the entries in another order reaches the same states.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { byCausalOrder, ControlHistory } from '../../src/groups/control-history.ts'
import { compareBytes, genesisRoomId, type RoomEntry, signEntry, toHex } from '../../src/groups/entry.ts'
import { applyEntry, foldControl, isControl, type RoomState } from '../../src/groups/membership.ts'
import {
  decodeAddBody,
  decodeRemoveBody,
  encodeAddBody,
  encodeGenesisBody,
  encodePostBody,
  encodeRemoveBody,
  encodeRotateBody,
} from '../../src/groups/room-bodies.ts'
import { roomKeyId } from '../../src/groups/room-keys.ts'
import { createIdentity } from '../../src/identity/identity.ts'
import { prng, testSeed } from '../helpers/prng.ts'

const T0 = 1_750_000_000_000
const PEOPLE = Array.from({ length: 5 }, (_, i) => createIdentity({ now: T0, deviceName: `p${i}` }))

/** A comparable summary of a state: members with roles and sealing keys, key, holders, key IDs. */
function summary(st: RoomState): string {
  const ids: string[] = []
  for (let link = st.introduced; link !== undefined; link = link.up) {
    if (link.all !== undefined) {
      ids.push(...link.all)
      break
    }
    ids.push(link.id)
  }
  return JSON.stringify({
    members: [...st.members].map(([k, m]) => `${k}:${m.role}:${toHex(m.sealingKey)}`).sort(),
    key: st.currentKeyId && toHex(st.currentKeyId),
    holders: [...st.holders].sort(),
    ids: [...new Set(ids)].sort(),
  })
}

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
  // The rule, from scratch: seniority by first uncontested admission, removals in that order.
  const reference = (at: readonly RoomEntry[]): RoomState => {
    const ids = new Set<string>()
    for (const e of at) for (const x of past(e)) ids.add(x)
    const list = [...ids]
      .map((x) => byId.get(x)!)
      .filter(isControl)
      .sort(byCausalOrder)
    const outs = list.filter((e) => e.kind === 'remove' || e.kind === 'leave')
    const subject = (r: RoomEntry) => toHex(r.kind === 'leave' ? r.author : decodeRemoveBody(r.body).member)
    const concurrent = (a: RoomEntry, b: RoomEntry) =>
      !past(a).has(toHex(b.hash)) && !past(b).has(toHex(a.hash))
    const admitted = new Map<string, number>()
    list.forEach((e, i) => {
      if (e.kind !== 'genesis' && e.kind !== 'add') return
      const member = toHex(e.kind === 'genesis' ? e.author : decodeAddBody(e.body).member)
      if (admitted.has(member)) return
      if (outs.some((r) => subject(r) === toHex(e.author) && concurrent(r, e))) return
      admitted.set(member, i)
    })
    const rank = (e: RoomEntry) => admitted.get(toHex(e.author)) ?? Number.POSITIVE_INFINITY
    const position = new Map(list.map((e, i) => [e, i]))
    outs.sort((a, b) => (rank(a) === rank(b) ? position.get(a)! - position.get(b)! : rank(a) - rank(b)))
    const voided = new Set<RoomEntry>()
    for (const out of outs) {
      if (voided.has(out) || rank(out) === Number.POSITIVE_INFINITY) continue
      for (const x of list) {
        if (x !== out && !voided.has(x) && toHex(x.author) === subject(out) && concurrent(x, out))
          voided.add(x)
      }
    }
    return foldControl(list.filter((e) => !voided.has(e)))
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
    if (summary(history.stateAt([e])) !== summary(reference([e]))) problems.push(`state after ${e.kind}`)
  }
  for (let i = 0; i < 40; i++) {
    const some = [...new Set(Array.from({ length: 2 + Math.floor(random() * 3) }, () => pick(all)))]
    if (summary(history.stateAt(some)) !== summary(reference(some))) problems.push('state at a merge')
  }
  // Another arrival order (parents first), another history: the same states.
  const other = new ControlHistory()
  const done = new Set<string>()
  const rest = [...all]
  while (rest.length > 0) {
    const e = pick(rest.filter((x) => x.parents.every((p) => done.has(toHex(p)))))
    rest.splice(rest.indexOf(e), 1)
    done.add(toHex(e.hash))
    const parents = e.parents.map((p) => byId.get(toHex(p))!)
    other.record(e, parents, other.stateAt(parents))
  }
  for (const e of all) {
    if (summary(other.stateAt([e])) !== summary(history.stateAt([e]))) problems.push('order-dependent state')
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
