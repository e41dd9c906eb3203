/**
 * How the node's parts change the store: in steps. A step (a frame batch from a link, a timer, a
 * link going up or down, a room operation) is one store transaction, so its custody, outbox and
 * state writes land together, for one commit. What a step has to tell the application (a message
 * arrived, a state changed) waits until the step has committed and then runs outside any
 * transaction, each announcement on its own: nothing is announced that the disk did not keep, and
 * an application listener can neither undo a step nor stop another announcement.
 */
import type { Store } from '../store/store.ts'

/**
 * What each member of a {@link Store} is: a write, something else the store does (reads, and the
 * transaction machinery), or a value. Checked against the interface, so that a member added to it
 * must be named here.
 */
const STORE_MEMBERS: Record<keyof Store, 'write' | 'other' | 'value'> = {
  getIdentity: 'other',
  setIdentity: 'write',
  putContact: 'write',
  getContact: 'other',
  listContacts: 'other',
  removeContact: 'write',
  addMessage: 'write',
  getMessage: 'other',
  setMessageState: 'write',
  listMessages: 'other',
  putOutbox: 'write',
  getOutbox: 'other',
  listOutboxDue: 'other',
  removeOutbox: 'write',
  outboxSize: 'other',
  putCustody: 'write',
  getCustody: 'other',
  listCustody: 'other',
  removeCustody: 'write',
  expireCustody: 'write',
  custodyUsage: 'other',
  custodyQuota: 'value',
  notePeer: 'write',
  noteAddressFailure: 'write',
  getPeer: 'other',
  listPeers: 'other',
  removePeer: 'write',
  kvGet: 'other',
  kvSet: 'write',
  kvDelete: 'write',
  kvList: 'other',
  transaction: 'other',
  onRollback: 'other',
  close: 'other',
}

/**
 * What went wrong: a step that was undone, an action that was undone (its caller got the error),
 * or an announcement (a listener) that threw.
 */
export type StepFailure = 'step' | 'action' | 'announcement'

export class Steps {
  /**
   * The store, as the node's parts are to use it: it notes the writes that went through, so that
   * a step that stored something can be told from one that did not (see `stored`).
   */
  readonly store: Store
  readonly #failed: (err: unknown, what: StepFailure) => void
  readonly #stored: () => void
  /** Announcements waiting for the step under way to commit. */
  readonly #announce: Array<() => void> = []
  /** Steps under way: a step may start another (rooms do); the outermost one announces. */
  #depth = 0
  /** Whether a write went through {@link store} since the outermost step under way began. */
  #wrote = false

  /**
   * `stored` is called when a step that wrote something has committed: the disk took it. (A full
   * disk fails a transaction at commit only if it wrote something: one that wrote nothing commits
   * all the same, and tells nothing about the disk.)
   */
  constructor(
    store: Store,
    failed: (err: unknown, what: StepFailure) => void,
    stored: () => void = () => {},
  ) {
    this.store = noteWrites(store, () => {
      this.#wrote = true
    })
    this.#failed = failed
    this.#stored = stored
  }

  /**
   * Runs `fn` as one step, then what it announced. A step that throws is undone, with what it
   * announced; its error is reported after the announcements of whatever step it ran in. Returns
   * whether the step's writes were kept (for a step in another, as far as that one goes).
   */
  run(fn: () => void): boolean {
    return 'value' in this.#run(fn, 'step')
  }

  /**
   * Runs `fn` as one step for a caller who waits on it (an application's room action): a step that
   * is undone throws its error to the caller, after the announcements of whatever step it ran in,
   * and is reported as an undone action rather than raised. Returns what `fn` returned.
   */
  act<T>(fn: () => T): T {
    const outcome = this.#run(fn, 'action')
    if ('err' in outcome) throw outcome.err
    return outcome.value
  }

  /** One step: `fn` in a transaction, its failure reported as `what`, then (outermost) its announcements. */
  #run<T>(fn: () => T, what: 'step' | 'action'): { value: T } | { err: unknown } {
    let outcome: { value: T } | { err: unknown }
    if (this.#depth === 0) this.#wrote = false
    // What a step in another wrote is undone with it: the one it ran in has written no more.
    const wroteBefore = this.#wrote
    this.#depth++
    try {
      outcome = { value: this.store.transaction(fn) }
    } catch (err) {
      this.#wrote = wroteBefore
      outcome = { err }
      this.after(() => this.#failed(err, what))
    } finally {
      this.#depth--
    }
    if (this.#depth === 0) {
      if ('value' in outcome && this.#wrote) this.after(this.#stored)
      this.#runEach(this.#announce.splice(0))
    }
    return outcome
  }

  /**
   * Announces `fn` once the step under way is stored; not at all if the part of it that asked is
   * undone (say, a delivery whose records did not fit on the disk: it comes again later). Outside
   * a step, at once.
   */
  after(fn: () => void): void {
    if (this.#depth === 0) this.#runEach([fn])
    else this.pushUnlessUndone(this.#announce, fn)
  }

  /** Appends `item` to `list`, and takes it out again if the writes under way are undone. */
  pushUnlessUndone<T>(list: T[], item: T): void {
    list.push(item)
    this.store.onRollback(() => {
      const i = list.lastIndexOf(item)
      if (i >= 0) list.splice(i, 1)
    })
  }

  #runEach(announcements: ReadonlyArray<() => void>): void {
    for (const announce of announcements) {
      try {
        announce()
      } catch (err) {
        this.#failed(err, 'announcement')
      }
    }
  }
}

/**
 * `store`, calling `wrote` after each write that went through (one that threw wrote nothing).
 * Members are looked up at each call, so a store whose methods change (a test's) is followed.
 */
function noteWrites(store: Store, wrote: () => void): Store {
  const noting: Record<string, unknown> = {}
  const members = store as unknown as Record<string, (...args: unknown[]) => unknown>
  for (const [name, kind] of Object.entries(STORE_MEMBERS)) {
    if (kind === 'value') Object.defineProperty(noting, name, { get: () => members[name], enumerable: true })
    else if (kind === 'other') noting[name] = (...args: unknown[]) => members[name]!(...args)
    else
      noting[name] = (...args: unknown[]) => {
        const result = members[name]!(...args)
        wrote()
        return result
      }
  }
  return noting as unknown as Store
}
