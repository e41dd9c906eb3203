/**
 * This device's own contact card: the addresses others can dial and this device's prekey bundle,
 * re-signed when either changes. Links shared from then on carry them, and contacts receive the
 * new card with our next message.
 */
import {
  type CardExtensionEntry,
  cardExtension,
  decodeContactCard,
  encodeContactCard,
} from '../identity/contact-card.ts'
import { type Identity, makeContactCard } from '../identity/identity.ts'
import type { Store } from '../store/store.ts'
import { bytesEqual } from '../wire/cbor.ts'
import { MAX_ADDRESS_BYTES, MAX_ADDRESSES } from '../wire/limits.ts'

/** Addresses put in our contact card: enough for a LAN and a hotspot, few enough for a QR code. */
const CARD_ADDRESSES = Math.min(4, MAX_ADDRESSES)

/**
 * Re-signs the stored card when `addresses` (when given) or the prekey extension differ from what
 * it carries. Returns the new card, or undefined when nothing changed.
 */
export function refreshOwnCard(
  store: Store,
  identity: Identity,
  prekeys: CardExtensionEntry,
  addresses?: readonly string[],
): { card: Uint8Array; addresses: readonly string[]; prekeysChanged: boolean } | undefined {
  const profile = store.getIdentity()
  if (profile === undefined) return undefined
  const card = decodeContactCard(profile.card)
  let dialable = card.addresses
  if (addresses !== undefined) {
    const fits = addresses.filter((a) => Buffer.byteLength(a) <= MAX_ADDRESS_BYTES)
    const external = fits.filter((a) => !a.startsWith('/ip4/127.') && !a.startsWith('/ip6/::1/'))
    // Loopback only when there is nothing else: then only this machine can reach us anyway.
    dialable = (external.length > 0 ? external : fits).slice(0, CARD_ADDRESSES)
  }
  // This device's prekey bundle rides in the card (extension 1), so contacts can write first.
  const [prekeyKey, prekeyValue] = prekeys
  const extensions = [
    ...card.extensions.filter(([key]) => key !== prekeyKey),
    [prekeyKey, prekeyValue] as const,
  ].sort((a, b) => a[0] - b[0])
  const sameAddresses =
    card.addresses.length === dialable.length && card.addresses.every((a, i) => a === dialable[i])
  const samePrekeys = bytesEqual(cardExtension(card, prekeyKey) ?? new Uint8Array(0), prekeyValue)
  if (sameAddresses && samePrekeys) return undefined
  // A replacement must be strictly newer (card times are in seconds) for contacts to take it.
  const now = Math.max(Date.now(), (card.created + 1) * 1000)
  const fresh = encodeContactCard(
    makeContactCard(identity, { name: profile.name, addresses: dialable, extensions, now }),
  )
  store.setIdentity({ ...profile, card: fresh })
  return { card: fresh, addresses: dialable, prekeysChanged: !samePrekeys }
}
