/**
 * Contacts' cards as the node needs them on its hot path: decoded and verified once (senders
 * repeat theirs), and found by the device that sent a message.
 */
import { TalkenError } from '../errors.ts'
import { type ContactCard, decodeContactCard } from '../identity/contact-card.ts'
import type { Contact, Store } from '../store/store.ts'
import { bytesEqual } from '../wire/cbor.ts'

/** Verified cards remembered, by their bytes. */
const REMEMBERED_CARDS = 256

export class CardBook {
  readonly #store: Store
  readonly #cards = new Map<string, ContactCard>()
  /** Device key (hex) → contact ID, for messages that come without a card; rebuilt on a miss. */
  readonly #contactOfDevice = new Map<string, string>()

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

  /** The contact whose card certifies `deviceKey`, with that card. Throws `unknown_contact`. */
  ofDevice(deviceKey: Uint8Array): { contact: Contact; card: ContactCard } {
    const key = Buffer.from(deviceKey).toString('hex')
    const lookup = (): { contact: Contact; card: ContactCard } | undefined => {
      const id = this.#contactOfDevice.get(key)
      const contact = id === undefined ? undefined : this.#store.getContact(id)
      if (contact === undefined) return undefined
      const card = this.verified(contact.card)
      return card.devices.some((d) => bytesEqual(d.deviceKey, deviceKey)) ? { contact, card } : undefined
    }
    const cached = lookup()
    if (cached !== undefined) return cached
    // Contacts change (a new card, `talken add` while we run): rebuild the index on a miss.
    this.#contactOfDevice.clear()
    for (const contact of this.#store.listContacts()) {
      for (const d of this.verified(contact.card).devices) {
        this.#contactOfDevice.set(Buffer.from(d.deviceKey).toString('hex'), contact.id)
      }
    }
    const found = lookup()
    if (found !== undefined) return found
    throw new TalkenError('unknown_contact', 'a message without a card, from a device of no contact')
  }
}
