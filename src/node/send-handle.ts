/**
 * What `TalkenNode.send` returns: the message ID, and its delivery state as it changes.
 */
import { EventEmitter } from 'node:events'
import { TalkenError } from '../errors.ts'
import type { DeliveryState } from '../store/store.ts'
import { emitToEach, oneError } from './emit-each.ts'

export class SendHandle extends EventEmitter<{ state: [DeliveryState, string | undefined] }> {
  readonly id: string
  readonly to: string
  #state: DeliveryState = 'queued'

  constructor(id: string, to: string) {
    super()
    this.id = id
    this.to = to
  }

  get state(): DeliveryState {
    return this.#state
  }

  /** @internal Every listener hears; then what any of them threw is thrown (once). */
  update(state: DeliveryState, reason: string | undefined): void {
    this.#state = state
    const thrown = emitToEach(this, 'state', [state, reason])
    if (thrown.length > 0) throw oneError(thrown)
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
      const onAbort = (): void => {
        this.off('state', listener)
        reject(signal?.reason)
      }
      const listener = (state: DeliveryState, reason: string | undefined): void => {
        if (!check(state, reason)) return
        this.off('state', listener)
        signal?.removeEventListener('abort', onAbort)
      }
      if (signal?.aborted) {
        reject(signal.reason)
        return
      }
      this.on('state', listener)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }
}
