/**
 * Contacts' cards as the node needs them on its hot path: decoded and verified once (senders
 * repeat theirs), and found by the device that sent a message.
 *
 * A card certifies devices with the account's signature alone: any account can list any device
 * key, another person's included. So a device belongs to the account its own messages named:
 * each message that carries a card, sent in a session only that device can speak in, binds the
 * device to the card's account ({@link bind}), and a message without a card is that account's.
 */
import { TalkenError } from '../errors.ts'
import { type ContactCard, decodeContactCard } from '../identity/contact-card.ts'
import { BoundedMap } from '../mesh/bounded-map.ts'
import type { Contact, Store } from '../store/store.ts'
import { bytesEqual } from '../wire/cbor.ts'

/** Verified cards remembered, by their bytes. */
const REMEMBERED_CARDS = 256
/** Bindings kept in memory, at most (the store keeps them all). */
const REMEMBERED_BINDINGS = 4096
/** Store namespace: device key (hex) → the contact ID (text ID) of the account it named. */
const DEVICE_ACCOUNT = 'device-account'

export class CardBook {
  readonly #store: Store
  readonly #cards = new Map<string, ContactCard>()
  /**
   * Device key (hex) → contact ID, from the contacts' cards, for devices bound before bindings were
   * kept (null: more than one card lists it); rebuilt on a miss.
   */
  readonly #contactOfDevice = new Map<string, string | null>()
  /** Bindings read or written (undefined: none stored), so that sends and receipts skip the store. */
  readonly #bindings = new BoundedMap<string, string | undefined>(REMEMBERED_BINDINGS)

  constructor(store: Store) {
    this.#store = store
  }

  /** Decodes and verifies a card, remembering the last few. Throws what {@link decodeContactCard} throws. */
  verified(bytes: Uint8Array): ContactCard {
    const key = Buffer.from(bytes).toString('base64')
    const known = this.#cards.get(key)
    if (known !== undefined) return known
    const card = decodeContactCard(bytes)
    if (this.#cards.size >= REMEMBERED_CARDS) this.#cards.delete(this.#cards.keys().next().value as string)
    this.#cards.set(key, card)
    return card
  }

  /**
   * Records that `deviceKey` named the account of contact `contactId` in a message only it could
   * send (in the caller's transaction). The latest such message wins: only the device moves itself.
   */
  bind(deviceKey: Uint8Array, contactId: string): void {
    if (this.boundTo(deviceKey) === contactId) return
    const key = Buffer.from(deviceKey).toString('hex')
    this.#store.kvSet(DEVICE_ACCOUNT, key, Buffer.from(contactId))
    this.#bindings.set(key, contactId)
    // Undone with its transaction: read the store again next time.
    this.#store.onRollback(() => this.#bindings.delete(key))
  }

  /** The contact ID `deviceKey` is bound to, if it is bound. */
  boundTo(deviceKey: Uint8Array): string | undefined {
    const key = Buffer.from(deviceKey).toString('hex')
    if (this.#bindings.has(key)) return this.#bindings.get(key)
    const stored = this.#store.kvGet(DEVICE_ACCOUNT, key)
    const bound = stored === undefined ? undefined : Buffer.from(stored).toString()
    this.#bindings.set(key, bound)
    return bound
  }

  /**
   * The contact a message without a card from `deviceKey` comes from, with its card: the one the
   * device is bound to, if its card still lists the device. A device never bound (its session is
   * older than bindings) falls back on the contacts' cards, if exactly one lists it. Throws
   * `unknown_contact`.
   */
  ofDevice(deviceKey: Uint8Array): { contact: Contact; card: ContactCard } {
    const listing = (id: string | null | undefined): { contact: Contact; card: ContactCard } | undefined => {
      const contact = id == null ? undefined : this.#store.getContact(id)
      if (contact === undefined) return undefined
      const card = this.verified(contact.card)
      return card.devices.some((d) => bytesEqual(d.deviceKey, deviceKey)) ? { contact, card } : undefined
    }
    const bound = this.boundTo(deviceKey)
    if (bound !== undefined) {
      const found = listing(bound)
      if (found !== undefined) return found
      throw new TalkenError(
        'unknown_contact',
        'a message without a card, from a device whose account is no contact (or no longer lists it)',
      )
    }
    const key = Buffer.from(deviceKey).toString('hex')
    const cached = listing(this.#contactOfDevice.get(key))
    if (cached !== undefined) return cached
    // Contacts change (a new card, `talken add` while we run): rebuild the index on a miss.
    this.#contactOfDevice.clear()
    for (const contact of this.#store.listContacts()) {
      for (const d of this.verified(contact.card).devices) {
        const k = Buffer.from(d.deviceKey).toString('hex')
        const other = this.#contactOfDevice.get(k)
        this.#contactOfDevice.set(k, other === undefined || other === contact.id ? contact.id : null)
      }
    }
    if (this.#contactOfDevice.get(key) === null) {
      throw new TalkenError(
        'unknown_contact',
        'a message without a card, from a device that more than one contact lists: it must send its card again',
      )
    }
    const found = listing(this.#contactOfDevice.get(key))
    if (found !== undefined) return found
    throw new TalkenError('unknown_contact', 'a message without a card, from a device of no contact')
  }
}
