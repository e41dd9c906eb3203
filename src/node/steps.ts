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
 * What went wrong: a step that was undone, an action that was undone (its caller got the error),
 * or an announcement (a listener) that threw.
 */
export type StepFailure = 'step' | 'action' | 'announcement'

export class Steps {
  readonly #store: Store
  readonly #failed: (err: unknown, what: StepFailure) => void
  /** Announcements waiting for the step under way to commit. */
  readonly #announce: Array<() => void> = []
  /** Steps under way: a step may start another (rooms do); the outermost one announces. */
  #depth = 0

  constructor(store: Store, failed: (err: unknown, what: StepFailure) => void) {
    this.#store = store
    this.#failed = failed
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
    this.#depth++
    try {
      outcome = { value: this.#store.transaction(fn) }
    } catch (err) {
      outcome = { err }
      this.after(() => this.#failed(err, what))
    } finally {
      this.#depth--
    }
    if (this.#depth === 0) this.#runEach(this.#announce.splice(0))
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
    this.#store.onRollback(() => {
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
