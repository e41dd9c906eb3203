/**
 * Contacts: accepting someone's link, and finding a contact by what a person types.
 */
import { TalkenError } from '../errors.ts'
import { type ContactCard, decodeContactCard, encodeContactCard } from '../identity/contact-card.ts'
import { parseContactLink } from '../identity/contact-link.ts'
import { safetyNumber } from '../identity/safety-number.ts'
import { toTextId } from '../identity/text-id.ts'
import { isPlainTcpText } from '../links/multiaddrs.ts'
import type { Contact, Store } from '../store/store.ts'
import { bytesEqual } from '../wire/cbor.ts'
import { MAX_NAME_BYTES } from '../wire/limits.ts'

/** What {@link addContact} did. */
export interface AddContactResult {
  readonly contact: Contact
  /** `added` for a new contact, `updated` when a newer card replaced an older one, `unchanged` otherwise. */
  readonly outcome: 'added' | 'updated' | 'unchanged'
}

/**
 * Verifies `link` and stores its card as a contact. Throws the link's parse errors, `self_contact`
 * for one's own link, `invalid_argument` for a bad petname or `conflict` for one another contact
 * has; nothing is stored then. Without a petname the card's name is taken, made unique (see
 * {@link uniqueName}) when another contact has it.
 * Adding a known contact again keeps its petname and verification, and takes the card if newer.
 */
export function addContact(
  store: Store,
  ownAccountKey: Uint8Array,
  link: string,
  options: { name?: string | undefined; now: number },
): AddContactResult {
  return acceptContactCard(store, ownAccountKey, parseContactLink(link), options)
}

/**
 * Stores a verified card as a contact (from a link, or from a message's sender). The same rules as
 * {@link addContact}: a known contact keeps its petname and verification, and takes the card if newer.
 * `stranger`: someone who wrote to us first, added under their card's name with the start of
 * their ID (`Hal (tk1abcd)`).
 */
export function acceptContactCard(
  store: Store,
  ownAccountKey: Uint8Array,
  card: ContactCard,
  options: { name?: string | undefined; now: number; stranger?: boolean },
): AddContactResult {
  if (bytesEqual(card.accountKey, ownAccountKey)) {
    throw new TalkenError('self_contact', 'this is your own link: share it with others instead')
  }
  const name = options.name?.trim()
  if (name !== undefined && (name.length === 0 || Buffer.byteLength(name) > MAX_NAME_BYTES)) {
    throw new TalkenError('invalid_argument', `a contact name is 1 to ${MAX_NAME_BYTES} bytes`)
  }
  const id = toTextId(card.accountKey)
  const cardBytes = encodeContactCard(card)
  return store.transaction(() => {
    const existing = store.getContact(id)
    if (name !== undefined && name !== existing?.name) refuseTakenName(store, name, id)
    if (existing === undefined) {
      const contact: Contact = {
        id,
        accountKey: card.accountKey,
        // The name the card gives is its owner's choice: it never shadows a contact we have, and
        // someone who wrote to us unasked carries the start of their ID in it, so that they
        // cannot take a name first and leave it to the contact it was meant for to be renamed.
        name: name ?? uniqueName(store, options.stranger ? withIdStart(card.name, id, 7) : card.name, id),
        card: cardBytes,
        verified: false,
        addedAt: options.now,
      }
      store.putContact(contact)
      return { contact, outcome: 'added' }
    }
    // The same card again (every message carries the sender's): nothing to decode or compare.
    if (bytesEqual(existing.card, cardBytes) && (name === undefined || name === existing.name)) {
      return { contact: existing, outcome: 'unchanged' }
    }
    const older = decodeContactCard(existing.card).created < card.created
    const renamed = name !== undefined && name !== existing.name
    if (!older && !renamed) return { contact: existing, outcome: 'unchanged' }
    const contact: Contact = {
      ...existing,
      name: name ?? existing.name,
      card: older ? cardBytes : existing.card,
    }
    store.putContact(contact)
    return { contact, outcome: 'updated' }
  })
}

/** Whether another contact than `id` is named `name` (names are compared case-insensitively). */
function nameTaken(store: Store, name: string, id: string): boolean {
  const lower = name.toLowerCase()
  return store.listContacts().some((c) => c.id !== id && c.name.toLowerCase() === lower)
}

/** Throws `conflict` when another contact is named `name`: a petname picks one contact. */
function refuseTakenName(store: Store, name: string, id: string): void {
  if (nameTaken(store, name, id)) {
    throw new TalkenError('conflict', `another contact is named ${name}: choose another name`, {
      details: { name },
    })
  }
}

/**
 * `name`, or when another contact has it (a stranger who wrote to us calling themselves what a
 * contact of ours is called, say), `name (tk1abcd)` with the start of their text ID, shortened to
 * fit {@link MAX_NAME_BYTES}.
 */
export function uniqueName(store: Store, name: string, id: string): string {
  if (!nameTaken(store, name, id)) return name
  for (const length of [7, 11, id.length]) {
    const candidate = withIdStart(name, id, length)
    if (!nameTaken(store, candidate, id)) return candidate
  }
  return id
}

/** `name (tk1abcd)`, with the first `length` characters of the text ID, within {@link MAX_NAME_BYTES}. */
function withIdStart(name: string, id: string, length: number): string {
  const suffix = ` (${id.slice(0, length)})`
  let base = [...name]
  while (base.length > 0 && Buffer.byteLength(base.join('') + suffix) > MAX_NAME_BYTES)
    base = base.slice(0, -1)
  return base.join('').trimEnd() + suffix
}

/**
 * Finds one contact by text ID, by name (case-insensitive), or by a unique prefix of either.
 * Throws `unknown_contact` or `ambiguous_contact`.
 */
export function findContact(store: Store, query: string): Contact {
  const q = query.trim()
  if (q.length === 0) throw new TalkenError('unknown_contact', 'no contact named ""')
  const byId = store.getContact(q.toLowerCase())
  if (byId) return byId
  const all = store.listContacts()
  const lower = q.toLowerCase()
  const exact = all.filter((c) => c.name.toLowerCase() === lower)
  if (exact.length === 1) return exact[0]!
  const candidates =
    exact.length > 1
      ? exact
      : all.filter(
          (c) => c.name.toLowerCase().startsWith(lower) || (lower.length >= 6 && c.id.startsWith(lower)),
        )
  if (candidates.length === 1) return candidates[0]!
  if (candidates.length === 0) throw new TalkenError('unknown_contact', `no contact matches "${q}"`)
  throw new TalkenError(
    'ambiguous_contact',
    `"${q}" matches ${candidates.length} contacts (${candidates
      .slice(0, 3)
      .map((c) => `${c.name} ${c.id.slice(0, 12)}…`)
      .join(', ')}): use more of the ID`,
  )
}

/**
 * The safety number with a contact (a name, ID or unique prefix); with `confirm`, marks the
 * contact verified first (the numbers matched). What `talken verify` and the chat screen show.
 */
export function verifyContact(
  store: Store,
  ownAccountKey: Uint8Array,
  query: string,
  confirm = false,
): { contact: Contact; safetyNumber: string } {
  // Read and written in one transaction: a daemon may store a newer card for this contact
  // meanwhile (from another process), and writing back the record read before would undo it.
  const contact = store.transaction(() => {
    const found = findContact(store, query)
    if (!confirm || found.verified) return found
    const verified = { ...found, verified: true }
    store.putContact(verified)
    return verified
  })
  return { contact, safetyNumber: safetyNumber(ownAccountKey, contact.accountKey) }
}

/** Contact-card addresses a node keeps dialling, at most (see {@link contactDialAddresses}). */
export const MAX_CONTACT_DIAL_ADDRESSES = 128
/** Of those, at most this many per contact. */
const MAX_DIAL_ADDRESSES_PER_CONTACT = 4

/**
 * The addresses from contacts' cards worth dialling (plain TCP ones, see `isPlainTcp`): verified
 * contacts first, then the longest known, at most {@link MAX_CONTACT_DIAL_ADDRESSES} in all. Anyone who writes first becomes a
 * contact with a card of their own making, so without a bound a stranger, or many, could have a
 * node dial addresses of their choosing without end.
 */
export function contactDialAddresses(contacts: readonly Contact[]): string[] {
  const ordered = [...contacts].sort(
    (a, b) => Number(b.verified) - Number(a.verified) || a.addedAt - b.addedAt || (a.id < b.id ? -1 : 1),
  )
  const out: string[] = []
  for (const contact of ordered) {
    let addresses: readonly string[]
    try {
      addresses = decodeContactCard(contact.card).addresses
    } catch {
      continue // a stored card that no longer decodes has no addresses to offer
    }
    // Plain TCP only: a card is anyone's to make, and `/unix/…` would have us connect to a local socket.
    for (const a of addresses.filter(isPlainTcpText).slice(0, MAX_DIAL_ADDRESSES_PER_CONTACT)) {
      if (out.length >= MAX_CONTACT_DIAL_ADDRESSES) return out
      out.push(a)
    }
  }
  return out
}
