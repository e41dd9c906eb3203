/**
 * The room membership rule written out the slow way (docs/groups.md §Membership), for tests that
 * check ControlHistory against it: the fold of a whole control past, with each removal voiding the
 * entries of the member it takes out that are concurrent with it, removals taken by their authors'
 * seniority.
 */
import { byCausalOrder, ControlHistory } from '../../src/groups/control-history.ts'
import { type RoomEntry, toHex } from '../../src/groups/entry.ts'
import { foldControl, isControl, type RoomState } from '../../src/groups/membership.ts'
import { decodeAddBody, decodeRemoveBody } from '../../src/groups/room-bodies.ts'

/**
 * The state after `past` (every entry of an inclusive past, in any order), where
 * `concurrent(a, b)` says that neither of two of them is in the other's past.
 */
export function ruleState(
  past: Iterable<RoomEntry>,
  concurrent: (a: RoomEntry, b: RoomEntry) => boolean,
): RoomState {
  const list = [...past].filter(isControl).sort(byCausalOrder)
  const outs = list.filter((e) => e.kind === 'remove' || e.kind === 'leave')
  const subject = (r: RoomEntry) => toHex(r.kind === 'leave' ? r.author : decodeRemoveBody(r.body).member)
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
      if (x !== out && !voided.has(x) && toHex(x.author) === subject(out) && concurrent(x, out)) voided.add(x)
    }
  }
  return foldControl(list.filter((e) => !voided.has(e)))
}

/** A comparable summary of a state: members with roles and sealing keys, key, holders, key IDs. */
export function stateSummary(st: RoomState): string {
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

/**
 * A fresh ControlHistory fed `entries` in another arrival order (parents first, else chosen with
 * `pick`), as another replica might get them; returns it.
 */
export function replayedInAnotherOrder(
  entries: readonly RoomEntry[],
  pick: <T>(xs: readonly T[]) => T,
): ControlHistory {
  const history = new ControlHistory()
  const byId = new Map(entries.map((e) => [toHex(e.hash), e]))
  const done = new Set<string>()
  const rest = [...entries]
  while (rest.length > 0) {
    const e = pick(rest.filter((x) => x.parents.every((p) => done.has(toHex(p)))))
    rest.splice(rest.indexOf(e), 1)
    done.add(toHex(e.hash))
    const parents = e.parents.map((p) => byId.get(toHex(p))!)
    history.record(e, parents, history.stateAt(parents))
  }
  return history
}
