/**
 * The work ControlHistory does, counted rather than timed (benchmarks time; tests check
 * behaviour): every entry it is given is wrapped in a Proxy that counts the fields read from it
 * while it works, so walking, sorting, decoding and folding entries all count, and nothing in
 * `src/` is there for the test. Each add used to fold its whole control past again, at a cost
 * cubic in the churn (an admin adding and removing one account 400 times: 25 s to open the
 * room), and each frontier of several entries was folded from genesis (a member's posts merging
 * pairs of concurrent rotations after 2,000 rotations: 30 s for 780). Now an add costs a
 * bounded amount of work, and a merge the entries since the fork. The states themselves are
 * checked against the rule written out the slow way (docs/groups.md §Membership), over random
 * histories with long-lived branches, re-admissions, and removals by members whose admissions
 * were contested.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ControlHistory } from '../../src/groups/control-history.ts'
import { compareBytes, genesisRoomId, type RoomEntry, signEntry, toHex } from '../../src/groups/entry.ts'
import { applyEntry, EMPTY_STATE, type RoomState } from '../../src/groups/membership.ts'
import {
  encodeAddBody,
  encodeGenesisBody,
  encodePostBody,
  encodeRemoveBody,
  encodeRotateBody,
  type Role,
} from '../../src/groups/room-bodies.ts'
import { createIdentity, type Identity } from '../../src/identity/identity.ts'
import { prng, testSeed } from '../helpers/prng.ts'
import { replayedInAnotherOrder, ruleState, stateSummary } from '../helpers/room-rule.ts'

const T0 = 1_750_000_000_000

/** Fields read from entries while `on`. */
const meter = { on: false, reads: 0 }

/** The fields ControlHistory reads from entries during `f`. */
function work(f: () => void): number {
  const before = meter.reads
  meter.on = true
  try {
    f()
  } finally {
    meter.on = false
  }
  return meter.reads - before
}

/** `entry`, counting the fields read from it while the meter is on. */
function metered(entry: RoomEntry): RoomEntry {
  return new Proxy(entry, {
    get(target, field, receiver) {
      if (meter.on) meter.reads++
      return Reflect.get(target, field, receiver)
    },
  })
}

const person = (name: string): Identity => createIdentity({ now: T0, deviceName: name })
const hex = (who: Identity): string => toHex(who.account.publicKey)

/**
 * A room's control history fed as a room log feeds it: each entry judged against the state at
 * its parents, then recorded; with the work of each write, and the rule applied from scratch.
 */
class Room {
  readonly history = new ControlHistory()
  readonly entries: RoomEntry[] = []
  readonly heads = new Set<RoomEntry>()
  readonly genesis: RoomEntry
  /** The fields the history read to make, judge and record each entry, in the order written. */
  readonly costs: number[] = []
  readonly #byId = new Map<string, RoomEntry>()
  readonly #pasts = new Map<RoomEntry, Set<RoomEntry>>()
  #keys = 0

  constructor(founder: Identity) {
    this.genesis = this.#take(
      signEntry(founder, {
        roomId: genesisRoomId(),
        parents: [],
        depth: 0,
        kind: 'genesis',
        body: encodeGenesisBody({
          name: 'r',
          sealingKey: this.#bytes(32),
          keyId: this.#bytes(16),
          sealedKey: this.#bytes(80),
        }),
        time: T0,
      }),
      [],
    )
  }

  /** The state at `at`, as the history gives it. */
  stateAt(at: readonly RoomEntry[]): RoomState {
    return this.history.stateAt(at)
  }

  /** `author` adds `who`, on `parents` (the heads by default). */
  add(author: Identity, who: Identity, role: Role = 'member', parents = this.#heads()): RoomEntry {
    return this.write(author, 'add', parents, (st) =>
      encodeAddBody({
        member: who.account.publicKey,
        sealingKey: this.#bytes(32),
        role,
        keyId: st.currentKeyId!,
        sealedKey: this.#bytes(80),
      }),
    )
  }

  /** `author` removes `who`. */
  remove(author: Identity, who: Identity, parents = this.#heads()): RoomEntry {
    return this.write(author, 'remove', parents, (st) =>
      encodeRemoveBody({ member: who.account.publicKey, ...this.#newKey(st, hex(who)) }),
    )
  }

  /** `author` rotates the key. */
  rotate(author: Identity, parents = this.#heads()): RoomEntry {
    return this.write(author, 'rotate', parents, (st) => encodeRotateBody(this.#newKey(st)))
  }

  /** `author` leaves. */
  leave(author: Identity, parents = this.#heads()): RoomEntry {
    return this.write(author, 'leave', parents, () => new Uint8Array(0))
  }

  /** `author` posts (under the current key). */
  post(author: Identity, parents = this.#heads()): RoomEntry {
    return this.write(author, 'post', parents, (st) =>
      encodePostBody({ keyId: st.currentKeyId!, nonce: this.#bytes(12), ciphertext: this.#bytes(20) }),
    )
  }

  /** An entry of `kind` by `author` on `parents`, its body made for the state there, written. */
  write(
    author: Identity,
    kind: RoomEntry['kind'],
    parents: readonly RoomEntry[],
    body: (st: RoomState) => Uint8Array,
  ): RoomEntry {
    const sorted = [...parents].sort((a, b) => compareBytes(a.hash, b.hash))
    let state = EMPTY_STATE
    const cost = work(() => {
      state = this.stateAt(sorted)
    })
    const entry = signEntry(author, {
      roomId: this.genesis.hash,
      parents: sorted.map((p) => p.hash),
      depth: 1 + Math.max(...sorted.map((p) => p.depth)),
      kind,
      body: body(state),
      time: T0,
    })
    return this.#take(entry, sorted, cost)
  }

  /**
   * A fresh history fed every entry again, as after a restart or by a late joiner; with the
   * fields it read to take each entry in, in the order written.
   */
  replay(): { history: ControlHistory; costs: number[] } {
    const history = new ControlHistory()
    const costs = this.entries.map((e) => {
      const parents = e.parents.map((p) => this.#byId.get(toHex(p))!)
      return work(() => history.record(e, parents, history.stateAt(parents)))
    })
    return { history, costs }
  }

  /** The rule applied to the whole control past of `at`, the slow way. */
  reference(at: readonly RoomEntry[]): RoomState {
    const all = new Set<RoomEntry>()
    for (const e of at) for (const x of this.#past(e)) all.add(x)
    return ruleState(all, (a, b) => !this.#past(a).has(b) && !this.#past(b).has(a))
  }

  /** Judges and records `signed`, its work added to `cost` (that of making it). */
  #take(signed: RoomEntry, parents: readonly RoomEntry[], cost = 0): RoomEntry {
    // The same entry written again (a leave by the same author on the same parents is the same
    // bytes, and so the same hash): a room log takes it once.
    const known = this.#byId.get(toHex(signed.hash))
    if (known !== undefined) return known
    const entry = metered(signed)
    let before = EMPTY_STATE
    cost += work(() => {
      before = this.history.stateAt(parents)
    })
    applyEntry(before, entry) // throws on an entry the room would refuse
    cost += work(() => this.history.record(entry, parents, before))
    this.costs.push(cost)
    this.entries.push(entry)
    this.#byId.set(toHex(entry.hash), entry)
    for (const p of parents) this.heads.delete(p)
    this.heads.add(entry)
    return entry
  }

  #heads(): RoomEntry[] {
    return [...this.heads]
  }

  #past(e: RoomEntry): Set<RoomEntry> {
    let past = this.#pasts.get(e)
    if (past === undefined) {
      past = new Set([e])
      for (const p of e.parents) for (const x of this.#past(this.#byId.get(toHex(p))!)) past.add(x)
      this.#pasts.set(e, past)
    }
    return past
  }

  /** A new key sealed for the members at `st` but `out` (the seal itself is not looked at). */
  #newKey(st: RoomState, out?: string) {
    const stay = [...st.members.keys()].filter((m) => m !== out).sort()
    return {
      keyId: this.#bytes(16),
      sealed: stay.map((a) => ({ account: Buffer.from(a, 'hex'), sealed: this.#bytes(80) })),
    }
  }

  /** `n` bytes, each call's different (key IDs must be new). */
  #bytes(n: number): Uint8Array {
    const out = new Uint8Array(n)
    new DataView(out.buffer).setUint32(0, ++this.#keys)
    return out
  }
}

/** People for random histories (made once: making an identity takes a while). */
const PEOPLE = Array.from({ length: 6 }, (_, i) => person(`p${i}`))

/**
 * A random history of about `size` entries, with branches that live long (lanes), backdated
 * entries, merges, adds and re-adds, removals and leaves; returns where the history's states
 * differ from the rule's, or depend on the order entries arrive in.
 */
function check(random: () => number, size: number): string[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!
  const room = new Room(PEOPLE[0]!)
  const problems: string[] = []
  let lanes = [room.genesis]
  for (let tries = 0; room.entries.length < size && tries < size * 20; tries++) {
    const r = lanes.length > 6 ? 1 : random() // too many lanes: merge some
    let on: RoomEntry[]
    if (r < 0.5) on = [pick(lanes)]
    else if (r < 0.65)
      on = [pick(room.entries)] // backdated: a new lane from an old entry
    else on = [...new Set([pick(lanes), pick(lanes), pick(lanes)])]
    const state = room.reference(on)
    if (stateSummary(state) !== stateSummary(room.stateAt(on))) problems.push('state at parents')
    const members = [...state.members.keys()]
    if (members.length === 0) {
      // Everyone left there: that lane is over.
      lanes = lanes.filter((l) => on.length > 1 || l !== on[0])
      if (lanes.length === 0) lanes = [pick(room.entries)]
      continue
    }
    const writer = random() < 0.9 ? pick(members) : hex(pick(PEOPLE))
    const author = PEOPLE.find((p) => hex(p) === writer)!
    const others = PEOPLE.filter((p) => p !== author)
    let written: RoomEntry
    try {
      const k = random()
      if (k < 0.15) written = room.post(author, on)
      else if (k < 0.45) {
        const outside = others.filter((p) => !state.members.has(hex(p)))
        if (outside.length === 0) continue
        written = room.add(author, pick(outside), random() < 0.6 ? 'admin' : 'member', on)
      } else if (k < 0.65) {
        const inside = others.filter((p) => state.members.has(hex(p)))
        if (inside.length === 0) continue
        written = room.remove(author, pick(inside), on)
      } else if (k < 0.85) written = room.rotate(author, on)
      else written = room.leave(author, on)
    } catch {
      continue // not allowed there (by the rule too: the state was compared above)
    }
    lanes = [...lanes.filter((l) => !on.includes(l)), written]
  }
  const all = room.entries
  if (all.length < size) problems.push(`${all.length} entries written, not ${size}`)
  for (const e of all) {
    if (stateSummary(room.stateAt([e])) !== stateSummary(room.reference([e])))
      problems.push(`state after ${e.kind}`)
  }
  const sets = [
    lanes,
    ...Array.from({ length: 60 }, () =>
      [pick(all), pick(all), pick(all)].slice(0, 2 + (random() < 0.5 ? 1 : 0)),
    ),
  ]
  for (const some of sets) {
    const at = [...new Set(some)]
    if (stateSummary(room.stateAt(at)) !== stateSummary(room.reference(at))) problems.push('state at a merge')
  }
  // Another arrival order (parents first), another history: the same states.
  const other = replayedInAnotherOrder(all, pick)
  for (const e of all) {
    if (stateSummary(other.stateAt([e])) !== stateSummary(room.stateAt([e])))
      problems.push('order-dependent state')
  }
  return problems
}

/**
 * The most fields taking one entry in may read when its control past is one line: a few for each
 * step of the fold, and as few for any length of history (about 20 are read today).
 */
const PER_ENTRY = 100

/** The largest of `costs`, and where. */
function largest(costs: readonly number[]): { cost: number; at: number } {
  const cost = Math.max(...costs)
  return { cost, at: costs.indexOf(cost) }
}

describe('control history cost', () => {
  it('takes each add and removal in at a bounded cost, however much churn came before', () => {
    const alice = person('alice')
    const bob = person('bob')
    const room = new Room(alice)
    for (let i = 0; i < 1000; i++) {
      room.add(alice, bob)
      room.remove(alice, bob)
      const last = largest(room.costs.slice(-2))
      assert.ok(last.cost <= PER_ENTRY, `pair ${i}: ${last.cost} fields read`)
    }
    // A restart, or a late joiner, pays as much again, entry by entry.
    const { history, costs } = room.replay()
    const worst = largest(costs)
    assert.ok(worst.cost <= PER_ENTRY, `entry ${worst.at} of ${costs.length}: ${worst.cost} fields read`)
    for (const e of room.entries)
      assert.equal(stateSummary(history.stateAt([e])), stateSummary(room.stateAt([e])))
    assert.deepEqual([...room.stateAt([...room.heads]).members.keys()], [hex(alice)])
  })

  it('takes people joining and leaving in at a bounded cost, however many came before', () => {
    const alice = person('alice')
    const room = new Room(alice)
    for (let i = 0; i < 500; i++) {
      const guest = person(`guest${i}`)
      room.add(alice, guest)
      room.leave(guest)
      const last = largest(room.costs.slice(-2))
      assert.ok(last.cost <= PER_ENTRY, `guest ${i}: ${last.cost} fields read`)
    }
    const worst = largest(room.replay().costs)
    assert.ok(worst.cost <= PER_ENTRY, `entry ${worst.at}: ${worst.cost} fields read`)
  })

  it('takes a post merging two branches in at the cost of the entries since their fork', () => {
    // A plain member writes `chain` rotations, then 8 branches of two rotations each on the last,
    // then posts that each merge another pair of branches: a state nobody has folded yet.
    const mergeCosts = (chain: number): number[] => {
      const alice = person('alice')
      const bob = person('bob')
      const room = new Room(alice)
      room.add(alice, bob)
      for (let i = 0; i < chain; i++) room.rotate(bob)
      const fork = [...room.heads]
      const tips = Array.from({ length: 8 }, () => room.rotate(bob, [room.rotate(bob, fork)]))
      const posts: RoomEntry[] = []
      for (const [i, a] of tips.entries())
        for (const b of tips.slice(i + 1)) posts.push(room.post(bob, [a, b]))
      const written = room.costs.slice(-posts.length)
      const { costs } = room.replay()
      return [...written, ...costs.slice(-posts.length)]
    }
    for (const chain of [100, 2000]) {
      const worst = largest(mergeCosts(chain))
      assert.ok(worst.cost <= 4 * PER_ENTRY, `after ${chain} rotations: ${worst.cost} fields read`)
    }
  })

  it('brings in the removals of someone admitted for the first time after writing them', () => {
    // Bob adds Carol while Alice removes Bob: Bob's add is left out, and so Carol's removal of
    // Dave leaves out nothing, Dave's add of Eve included. Alice then adds Carol: that is her
    // first admission, her removal now has a seniority, and Eve's add is left out.
    const alice = person('alice')
    const bob = person('bob')
    const carol = person('carol')
    const dave = person('dave')
    const eve = person('eve')
    const room = new Room(alice)
    room.add(alice, bob, 'admin')
    const base = room.add(alice, dave, 'admin')
    let x = base
    for (let i = 0; i < 8; i++) x = room.post(alice, [x]) // deeper than what Carol writes
    room.remove(alice, bob, [x])
    let y = room.add(bob, carol, 'admin', [base])
    for (let i = 0; i < 3; i++) y = room.post(carol, [y]) // deeper than Dave's add of Eve
    room.remove(carol, dave, [y])
    room.add(dave, eve, 'member', [base])
    const merge = room.post(alice)
    assert.ok(room.stateAt([merge]).members.has(hex(eve)))
    const readd = room.add(alice, carol)
    assert.ok(!room.stateAt([readd]).members.has(hex(eve)))
    const { history } = room.replay()
    for (const a of room.entries) {
      assert.equal(stateSummary(room.stateAt([a])), stateSummary(room.reference([a])))
      assert.equal(stateSummary(history.stateAt([a])), stateSummary(room.reference([a])))
      for (const b of room.entries)
        assert.equal(stateSummary(room.stateAt([a, b])), stateSummary(room.reference([a, b])))
    }
  })

  it('matches the rule applied from scratch, over random histories with long-lived branches', () => {
    const seed = testSeed()
    const random = prng(seed)
    for (let run = 0; run < 10; run++) {
      assert.deepEqual(check(random, 100), [], `seed ${seed}, run ${run}`)
    }
  })
})
