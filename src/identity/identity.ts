/**
 * A local identity: the account key people know us by, and this device's key certified by it.
 */
import { hostname } from 'node:os'
import { TalkenError } from '../errors.ts'
import { type ContactCard, type ContactCardFields, signContactCard } from './contact-card.ts'
import { type DeviceCert, issueDeviceCert } from './device-cert.ts'
import { generateSigningKey, type SigningKeyPair, signingKeyFromSeed } from './ed25519.ts'
import { toTextId } from './text-id.ts'

/** The secret material of an identity: what the key file holds. */
export interface IdentitySecrets {
  readonly accountSeed: Uint8Array
  readonly deviceSeed: Uint8Array
  readonly deviceName: string
  /** Unix seconds. */
  readonly deviceCreated: number
  /** Unix seconds. */
  readonly accountCreated: number
}

/** An identity loaded in memory, able to sign. */
export interface Identity {
  /** The text ID others know this account by. */
  readonly id: string
  readonly account: SigningKeyPair
  readonly device: SigningKeyPair
  readonly deviceCert: DeviceCert
  /** Unix seconds. */
  readonly accountCreated: number
  /** What to write to the key file. */
  readonly secrets: IdentitySecrets
}

/** A default device name: the machine's host name, shortened to fit. */
export function defaultDeviceName(): string {
  const name = hostname()
    .replace(/[^\p{L}\p{N} ._-]/gu, '')
    .slice(0, 32)
  return name.length > 0 ? name : 'device'
}

/** Rebuilds an identity from its secrets (the device certificate is deterministic: Ed25519). */
export function identityFromSecrets(secrets: IdentitySecrets): Identity {
  const account = signingKeyFromSeed(secrets.accountSeed)
  const device = signingKeyFromSeed(secrets.deviceSeed)
  const deviceCert = issueDeviceCert(account, device.publicKey, secrets.deviceName, secrets.deviceCreated)
  return {
    id: toTextId(account.publicKey),
    account,
    device,
    deviceCert,
    accountCreated: secrets.accountCreated,
    secrets,
  }
}

/**
 * Creates a new account with its first device.
 *
 * @example
 * const me = createIdentity({ deviceName: 'laptop', now: Date.now() })
 * console.log(me.id) // tk1…
 */
export function createIdentity(options: { deviceName?: string; now: number }): Identity {
  const seconds = Math.floor(options.now / 1000)
  if (!Number.isSafeInteger(seconds) || seconds < 0)
    throw new TalkenError('invalid_argument', 'now is Unix milliseconds')
  return identityFromSecrets({
    accountSeed: generateSigningKey().seed,
    deviceSeed: generateSigningKey().seed,
    deviceName: options.deviceName ?? defaultDeviceName(),
    deviceCreated: seconds,
    accountCreated: seconds,
  })
}

/** Signs a contact card for this identity, listing this device. */
export function makeContactCard(
  identity: Identity,
  fields: {
    name: string
    addresses?: readonly string[]
    extensions?: ContactCardFields['extensions']
    now: number
  },
): ContactCard {
  return signContactCard(identity.account, {
    name: fields.name,
    created: Math.floor(fields.now / 1000),
    devices: [identity.deviceCert],
    addresses: fields.addresses ?? [],
    extensions: fields.extensions ?? [],
  })
}
