/**
 * How many resend requests the node sends, and to whom (see direct-messages.ts `#askToResend`):
 * every ask is provoked by a message someone else sent, so each kind is limited per hour.
 *
 * - Anyone the user has not verified shares {@link STRANGER_ASKS_PER_WINDOW}: senders who were not
 *   contacts (their card came as an introduction: each ask makes a contact, a session and a
 *   message kept for a day), unverified contacts (anyone holding our link becomes one by writing
 *   once, and can then provoke asks at will), and senders of first messages whose session is gone
 *   (a relay can replay those).
 * - Verified contacts' first messages that could not be opened share
 *   {@link FIRST_CONTACT_ASKS_PER_WINDOW}; their chains that fell behind are asked for once per
 *   chain (by the caller).
 * - Every ask also counts against its device's {@link DEVICE_ASKS_PER_WINDOW}.
 *
 * Counts are in memory, and undone with the step that asked.
 */

import { BoundedMap } from '../mesh/bounded-map.ts'
import type { Store } from '../store/store.ts'

/** Resend requests an hour to anyone the user has not verified, all together. */
export const STRANGER_ASKS_PER_WINDOW = 16
/** The window every limit here counts in. */
export const STRANGER_ASK_WINDOW_MS = 3600_000
/**
 * Resend requests for first messages of verified contacts that could not be opened (`not_found`:
 * a one-time prekey taken) per {@link STRANGER_ASK_WINDOW_MS}, all such contacts together.
 */
export const FIRST_CONTACT_ASKS_PER_WINDOW = 32
/**
 * Resend requests to one peer device per {@link STRANGER_ASK_WINDOW_MS}, whoever it is, besides
 * the limits above. A sender whose first contact collided has each message it sealed before our
 * ask reached it refused, and each asked for apart (one ask per delivery): a few are usual, more
 * than this in an hour are not.
 */
export const DEVICE_ASKS_PER_WINDOW = 8
/** Peer devices whose asks of the last window are counted ({@link DEVICE_ASKS_PER_WINDOW}). */
const ASKING_DEVICES = 1024

/** When resend requests of one kind went out within the last window (oldest first), at most `limit`. */
class AskWindow {
  readonly #times: number[] = []
  readonly limit: number

  constructor(limit: number) {
    this.limit = limit
  }

  /** Whether one more may go out now. */
  may(now: number): boolean {
    while (this.#times.length > 0 && this.#times[0]! <= now - STRANGER_ASK_WINDOW_MS) this.#times.shift()
    return this.#times.length < this.limit
  }

  /** Counts one (undone with the step under way). */
  take(now: number, store: Store): void {
    this.#times.push(now)
    store.onRollback(() => {
      const i = this.#times.lastIndexOf(now)
      if (i >= 0) this.#times.splice(i, 1)
    })
  }
}

/** A limit an ask would exceed: how many an hour, and whether it is the device's own. */
export interface AskLimit {
  readonly limit: number
  readonly perDevice: boolean
}

/** Whom an ask goes to, for the limit it shares: see the file comment. */
export type AskedParty = 'unverified' | 'verified-first-contact' | 'verified-chain'

/** The limits of one node's resend requests. */
export class AskLimits {
  readonly #store: Store
  readonly #unverified = new AskWindow(STRANGER_ASKS_PER_WINDOW)
  readonly #firstContacts = new AskWindow(FIRST_CONTACT_ASKS_PER_WINDOW)
  readonly #devices = new BoundedMap<string, AskWindow>(ASKING_DEVICES)

  constructor(store: Store) {
    this.#store = store
  }

  /**
   * Whether an ask to `device` (hex) of `party` is within the limits now: true, or the limit it
   * would exceed.
   */
  check(now: number, device: string, party: AskedParty): true | AskLimit {
    const own = this.#devices.get(device)
    if (own?.may(now) === false) return { limit: own.limit, perDevice: true }
    const shared = this.#shared(party)
    if (shared?.may(now) === false) return { limit: shared.limit, perDevice: false }
    return true
  }

  /** Counts an ask to `device` (hex) of `party` (undone with the step under way). */
  take(now: number, device: string, party: AskedParty): void {
    let own = this.#devices.get(device)
    if (own === undefined) {
      own = new AskWindow(DEVICE_ASKS_PER_WINDOW)
      this.#devices.set(device, own)
    }
    own.take(now, this.#store)
    this.#shared(party)?.take(now, this.#store)
  }

  #shared(party: AskedParty): AskWindow | undefined {
    return party === 'unverified'
      ? this.#unverified
      : party === 'verified-first-contact'
        ? this.#firstContacts
        : undefined
  }
}
