/**
 * Contact cards: what one person gives another to become a contact, signed by the account key.
 *
 * ```
 * ContactCard = [ version: uint (1), accountKey: bytes(32), name: text(1–64 B),
 *                 created: uint (Unix seconds), devices: [DeviceCert] (1–8),
 *                 addresses: [text(≤256 B)] (0–8), extensions: [[key: uint, value: bytes(≤1024)]] (0–8,
 *                 keys strictly ascending), signature: bytes(64) ]
 * signature = Ed25519(accountKey, "talken/card/v1" 0x00 || CBOR(the first seven fields))
 * ```
 * Extensions leave room for later layers (prekey bundles for end-to-end encryption); unknown
 * keys are kept and still covered by the signature. Byte table: docs/protocol.md §Contact card.
 */
import { TalkenError } from '../errors.ts'
import {
  bytesEqual,
  type CborValue,
  decodeCbor,
  encodeCbor,
  FieldReader,
  nameProblem,
  textProblem,
} from '../wire/cbor.ts'
import {
  MAX_ADDRESS_BYTES,
  MAX_ADDRESSES,
  MAX_CARD_BYTES,
  MAX_DEVICES,
  MAX_EXTENSION_BYTES,
  MAX_EXTENSIONS,
  MAX_NAME_BYTES,
} from '../wire/limits.ts'
import { type DeviceCert, deviceCertFromCbor, deviceCertToCbor, verifyDeviceCert } from './device-cert.ts'
import {
  checkPublicKey,
  domainSeparated,
  PUBLIC_KEY_LENGTH,
  SIGNATURE_LENGTH,
  type SigningKeyPair,
  verifySignature,
} from './ed25519.ts'

const VERSION = 1
const DOMAIN = 'talken/card/v1'

/** Registered extension keys. */
export const CardExtension = {
  /** Prekey bundle for first contact (end-to-end encryption). */
  prekeys: 1,
} as const

/** One extension entry: a registered key and an opaque value. */
export type CardExtensionEntry = readonly [key: number, value: Uint8Array]

/** The unsigned content of a contact card. */
export interface ContactCardFields {
  readonly accountKey: Uint8Array
  readonly name: string
  /** Unix seconds. */
  readonly created: number
  readonly devices: readonly DeviceCert[]
  readonly addresses: readonly string[]
  readonly extensions: readonly CardExtensionEntry[]
}

/** A signed contact card. Only ever obtained from {@link signContactCard} or {@link decodeContactCard}. */
export interface ContactCard extends ContactCardFields {
  readonly signature: Uint8Array
}

function fieldsToCbor(f: ContactCardFields): CborValue[] {
  return [
    VERSION,
    f.accountKey,
    f.name,
    f.created,
    f.devices.map(deviceCertToCbor),
    [...f.addresses],
    f.extensions.map(([k, v]) => [k, v]),
  ]
}

/** Signs the card's fields with the account key. Throws `invalid_argument` for fields others would refuse. */
export function signContactCard(
  account: SigningKeyPair,
  fields: Omit<ContactCardFields, 'accountKey'>,
): ContactCard {
  const full: ContactCardFields = { ...fields, accountKey: account.publicKey }
  const body = fieldsToCbor(full)
  const signature = account.sign(domainSeparated(DOMAIN, encodeCbor(body)))
  const card = { ...full, signature }
  // Check with the decoder, so that an invalid card is refused here and not by the recipient.
  try {
    decodeContactCard(encodeContactCard(card))
  } catch (cause) {
    throw new TalkenError('invalid_argument', `cannot sign this card: ${(cause as Error).message}`, { cause })
  }
  return card
}

/** Encodes a signed card. */
export function encodeContactCard(card: ContactCard): Uint8Array {
  return encodeCbor([...fieldsToCbor(card), card.signature])
}

/**
 * Decodes and verifies a card: size, shape, canonical encoding, valid keys (canonical, not of
 * small order), names and addresses fit to show (`nameProblem`, `textProblem`), no device listed
 * twice, the account's signature over the card and over every device certificate. Throws
 * `too_large`, `malformed`, `non_canonical`, `unsupported_version` or `bad_signature`.
 */
export function decodeContactCard(bytes: Uint8Array): ContactCard {
  const r = new FieldReader(decodeCbor(bytes, MAX_CARD_BYTES, 'contact card'), 'contact card', 8)
  const version = r.uint('version', 255)
  if (version !== VERSION) {
    throw new TalkenError('unsupported_version', `contact card version ${version} is not supported`)
  }
  const accountKey = r.bytes('accountKey', PUBLIC_KEY_LENGTH)
  checkPublicKey(accountKey, 'contact card.accountKey')
  const name = r.text('name', MAX_NAME_BYTES, 1)
  const problem = nameProblem(name)
  if (problem !== undefined) throw new TalkenError('malformed', `contact card.name: ${problem}`)
  const created = r.uint('created')
  const devices = r.array('devices', MAX_DEVICES, (v) => deviceCertFromCbor(v))
  if (devices.length === 0) throw new TalkenError('malformed', 'contact card.devices: at least one device')
  devices.forEach((device, i) => {
    if (devices.findIndex((d) => bytesEqual(d.deviceKey, device.deviceKey)) !== i) {
      throw new TalkenError('malformed', `contact card.devices[${i}]: lists a device key twice`)
    }
  })
  const addresses = r.array('addresses', MAX_ADDRESSES, (v, i) => {
    if (typeof v !== 'string' || Buffer.byteLength(v) > MAX_ADDRESS_BYTES) {
      throw new TalkenError(
        'malformed',
        `contact card.addresses[${i}]: expected text of at most ${MAX_ADDRESS_BYTES} bytes`,
      )
    }
    const problem = textProblem(v, false)
    if (problem !== undefined) throw new TalkenError('malformed', `contact card.addresses[${i}]: ${problem}`)
    return v
  })
  let lastKey = -1
  const extensions = r.array('extensions', MAX_EXTENSIONS, (v, i): CardExtensionEntry => {
    const e = new FieldReader(v, `contact card.extensions[${i}]`, 2)
    const key = e.uint('key', 0xffff)
    if (key <= lastKey)
      throw new TalkenError('malformed', 'contact card.extensions: keys must be strictly ascending')
    lastKey = key
    return [key, e.bytes('value', 0, MAX_EXTENSION_BYTES)]
  })
  const signature = r.bytes('signature', SIGNATURE_LENGTH)
  const card: ContactCard = { accountKey, name, created, devices, addresses, extensions, signature }
  const signed = domainSeparated(DOMAIN, encodeCbor(fieldsToCbor(card)))
  if (!verifySignature(accountKey, signed, signature)) {
    throw new TalkenError('bad_signature', 'contact card signature does not verify: the card was altered')
  }
  for (const device of devices) verifyDeviceCert(accountKey, device)
  return card
}

/** The value of one extension, if the card carries it. */
export function cardExtension(card: ContactCardFields, key: number): Uint8Array | undefined {
  return card.extensions.find(([k]) => k === key)?.[1]
}
