/**
 * What `TalkenNode.send` returns: the message ID, and its delivery state as it changes.
 */
import { EventEmitter } from 'node:events'
import { TalkenError } from '../errors.ts'
import type { DeliveryState } from '../store/store.ts'
import { emitToEach, oneError } from './emit-each.ts'

export class SendHandle extends EventEmitter<{ state: [DeliveryState, string | undefined]; closed: [] }> {
  readonly id: string
  readonly to: string
  #state: DeliveryState = 'queued'
  /** Changes made while `send` ran, announced once the caller has the handle (see {@link hold}). */
  #held: Array<[DeliveryState, string | undefined]> | undefined
  #closed = false

  constructor(id: string, to: string) {
    super()
    this.id = id
    this.to = to
  }

  get state(): DeliveryState {
    return this.#state
  }

  /**
   * @internal Holds back the announcements of the changes that come before the caller has the
   * handle (`sent`, when a link is up, comes during `send`) until the next microtask: a listener
   * added right after `send` returns hears every state. {@link state} is current all along.
   * `run` runs each announcement, reporting what a listener throws (the node's `error` event).
   */
  hold(run: (announce: () => void) => void): void {
    this.#held = []
    queueMicrotask(() => {
      const held = this.#held ?? []
      this.#held = undefined
      for (const [state, reason] of held) run(() => this.#announce(state, reason))
    })
  }

  /** @internal Every listener hears; then what any of them threw is thrown (once). */
  update(state: DeliveryState, reason: string | undefined): void {
    this.#state = state
    if (this.#held !== undefined) this.#held.push([state, reason])
    else this.#announce(state, reason)
  }

  #announce(state: DeliveryState, reason: string | undefined): void {
    const thrown = emitToEach(this, 'state', [state, reason])
    if (thrown.length > 0) throw oneError(thrown)
  }

  /**
   * @internal The node stopped: {@link delivered} stops waiting (the message stays in the outbox,
   * and goes out when the node next runs).
   */
  close(): void {
    this.#closed = true
    this.emit('closed')
  }

  /** Resolves when the message is delivered (or read); rejects if it expires or fails. */
  delivered(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (state: DeliveryState, reason: string | undefined): boolean => {
        if (state === 'delivered' || state === 'read') resolve()
        else if (state === 'expired' || state === 'failed') {
          reject(new TalkenError('io_failed', `message ${this.id} ${state}${reason ? `: ${reason}` : ''}`))
        } else return false
        return true
      }
      if (check(this.#state, undefined)) return
      const stopped = () =>
        new TalkenError('closed', `the node stopped: message ${this.id} stays queued until it runs again`)
      if (this.#closed) {
        reject(stopped())
        return
      }
      const done = (): void => {
        this.off('state', listener)
        this.off('closed', onClosed)
        signal?.removeEventListener('abort', onAbort)
      }
      const onAbort = (): void => {
        done()
        reject(signal?.reason)
      }
      const onClosed = (): void => {
        done()
        reject(stopped())
      }
      const listener = (state: DeliveryState, reason: string | undefined): void => {
        if (check(state, reason)) done()
      }
      if (signal?.aborted) {
        reject(signal.reason)
        return
      }
      this.on('state', listener)
      this.on('closed', onClosed)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }
}
