/**
 * X3DH key agreement ("The X3DH Key Agreement Protocol", M. Marlinspike and T. Perrin, revision 1,
 * 2016) with X25519 and HKDF-SHA-256, and the prekey bundle that carries a device's public keys
 * in its contact card.
 *
 * Identity key: each device has an X25519 *identity DH key* derived from its Ed25519 device seed
 * (HKDF, info "talken/e2e/identity-dh/v1") and signed by its device key, which the account key
 * certifies. Nothing new to store, and a device's identity DH key follows its device key.
 *
 * ```
 * DH1 = DH(IK_A, SPK_B)  DH2 = DH(EK_A, IK_B)  DH3 = DH(EK_A, SPK_B)  DH4 = DH(EK_A, OPK_B) (if any)
 * HKDF(ikm = 0xFF×32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4], salt = 0×32, info = "talken/e2e/x3dh/v1", 96)
 *   → SK (32) ‖ HKa (32: the initiator's first header key) ‖ NHKb (32: the responder's)
 * AD = A's device key ‖ A's identity DH key ‖ B's device key ‖ B's identity DH key   (128 bytes)
 * IntroKey = HKDF(ikm = DH(IK_A, IK_B) ‖ DH2, salt = 0×32, info = "talken/e2e/introduction/v1", 32)
 * ```
 * IntroKey authenticates the initiator's introduction (its card) in prekey messages. It needs
 * neither prekey of B's, so B can tell who wrote even when the one-time prekey is gone.
 *
 * PrekeyBundle (deterministic CBOR, at most 1,024 bytes: card extension 1):
 * ```
 * [ version: 1, deviceKey: bytes(32), identityDh: bytes(32), signedPrekeyId: uint32 (≥ 1),
 *   signedPrekey: bytes(32), created: uint (Unix seconds),
 *   oneTimePrekeys: [[id: uint32 (≥ 1), key: bytes(32)]] (0–16), signature: bytes(64) ]
 * signature = Ed25519(deviceKey, "talken/e2e/prekey-bundle/v1" ‖ 0x00 ‖ CBOR(fields 0–6))
 * ```
 * Byte table: docs/e2e.md §Prekey bundle.
 */
import { TalkenError } from '../errors.ts'
import {
  domainSeparated,
  PUBLIC_KEY_LENGTH,
  SIGNATURE_LENGTH,
  type SigningKeyPair,
  verifySignature,
} from '../identity/ed25519.ts'
import { type CborValue, decodeCbor, encodeCbor, FieldReader } from '../wire/cbor.ts'
import { concatBytes, DH_KEY_LENGTH, type DhKeyPair, dh, dhKeyFromPrivate, hkdf } from './primitives.ts'

const BUNDLE_VERSION = 1
const BUNDLE_DOMAIN = 'talken/e2e/prekey-bundle/v1'
const IDENTITY_DH_DOMAIN = 'talken/e2e/identity-dh/v1'
const X3DH_INFO = 'talken/e2e/x3dh/v1'
const INTRODUCTION_INFO = 'talken/e2e/introduction/v1'

/** Largest encoded prekey bundle: what one contact card extension holds. */
export const MAX_BUNDLE_BYTES = 1024
/** Most one-time prekeys one bundle carries (16 × 40 B + 180 B ≈ 820 B). */
export const MAX_BUNDLE_ONE_TIME_PREKEYS = 16
/** Largest prekey ID (uint32); 0 means "none". */
export const MAX_PREKEY_ID = 0xffff_ffff
/** Length of the X3DH associated data: two device keys and two identity DH keys. */
export const AD_LENGTH = 2 * (PUBLIC_KEY_LENGTH + DH_KEY_LENGTH)

/** A device's end-to-end keys: its Ed25519 device key and its X25519 identity DH key. */
export interface E2eIdentity {
  readonly device: SigningKeyPair
  readonly identityDh: DhKeyPair
  /** The device key's signature over the identity DH public key. */
  readonly identitySignature: Uint8Array
}

/** Derives a device's end-to-end identity from its Ed25519 device key (deterministic). */
export function e2eIdentity(device: SigningKeyPair): E2eIdentity {
  const identityDh = dhKeyFromPrivate(hkdf(device.seed, new Uint8Array(0), IDENTITY_DH_DOMAIN, DH_KEY_LENGTH))
  return {
    device,
    identityDh,
    identitySignature: device.sign(domainSeparated(IDENTITY_DH_DOMAIN, identityDh.publicKey)),
  }
}

/** Throws `bad_signature` unless `deviceKey` signed `identityDh` as its identity DH key. */
export function verifyIdentityDh(deviceKey: Uint8Array, identityDh: Uint8Array, signature: Uint8Array): void {
  if (!verifySignature(deviceKey, domainSeparated(IDENTITY_DH_DOMAIN, identityDh), signature)) {
    throw new TalkenError('bad_signature', 'the identity DH key is not signed by the device key')
  }
}

/** A one-time prekey's public half and ID. */
export interface OneTimePrekey {
  readonly id: number
  readonly key: Uint8Array
}

/** A device's public prekeys, signed by its device key. */
export interface PrekeyBundle {
  readonly deviceKey: Uint8Array
  readonly identityDh: Uint8Array
  readonly signedPrekeyId: number
  readonly signedPrekey: Uint8Array
  /** Unix seconds. */
  readonly created: number
  readonly oneTimePrekeys: readonly OneTimePrekey[]
  readonly signature: Uint8Array
}

function bundleFields(b: Omit<PrekeyBundle, 'signature'>): CborValue[] {
  return [
    BUNDLE_VERSION,
    b.deviceKey,
    b.identityDh,
    b.signedPrekeyId,
    b.signedPrekey,
    b.created,
    b.oneTimePrekeys.map((k) => [k.id, k.key]),
  ]
}

/** Signs a bundle of this device's public prekeys. Throws `invalid_argument` for one others would refuse. */
export function signPrekeyBundle(
  identity: E2eIdentity,
  fields: Omit<PrekeyBundle, 'signature' | 'deviceKey' | 'identityDh'>,
): PrekeyBundle {
  const unsigned = {
    ...fields,
    deviceKey: identity.device.publicKey,
    identityDh: identity.identityDh.publicKey,
  }
  const signature = identity.device.sign(domainSeparated(BUNDLE_DOMAIN, encodeCbor(bundleFields(unsigned))))
  const bundle = { ...unsigned, signature }
  try {
    decodePrekeyBundle(encodePrekeyBundle(bundle))
  } catch (cause) {
    throw new TalkenError('invalid_argument', `cannot sign this bundle: ${(cause as Error).message}`, {
      cause,
    })
  }
  return bundle
}

/** Encodes a signed bundle. */
export function encodePrekeyBundle(bundle: PrekeyBundle): Uint8Array {
  return encodeCbor([...bundleFields(bundle), bundle.signature])
}

/**
 * Decodes a bundle and verifies its signature. Throws `too_large`, `malformed`, `non_canonical`,
 * `unsupported_version` or `bad_signature`. The caller checks that `deviceKey` is certified by the
 * account it expects (the card's device certificates).
 */
export function decodePrekeyBundle(bytes: Uint8Array): PrekeyBundle {
  const r = new FieldReader(decodeCbor(bytes, MAX_BUNDLE_BYTES, 'prekey bundle'), 'prekey bundle', 8)
  const version = r.uint('version', 255)
  if (version !== BUNDLE_VERSION) {
    throw new TalkenError('unsupported_version', `prekey bundle version ${version} is not supported`)
  }
  const deviceKey = r.bytes('deviceKey', PUBLIC_KEY_LENGTH)
  const identityDh = r.bytes('identityDh', DH_KEY_LENGTH)
  const signedPrekeyId = r.uint('signedPrekeyId', MAX_PREKEY_ID, 1)
  const signedPrekey = r.bytes('signedPrekey', DH_KEY_LENGTH)
  const created = r.uint('created')
  const ids = new Set<number>()
  const oneTimePrekeys = r.array('oneTimePrekeys', MAX_BUNDLE_ONE_TIME_PREKEYS, (v, i) => {
    const e = new FieldReader(v, `prekey bundle.oneTimePrekeys[${i}]`, 2)
    const id = e.uint('id', MAX_PREKEY_ID, 1)
    if (ids.has(id)) throw new TalkenError('malformed', `prekey bundle: one-time prekey ${id} appears twice`)
    ids.add(id)
    return { id, key: e.bytes('key', DH_KEY_LENGTH) }
  })
  const signature = r.bytes('signature', SIGNATURE_LENGTH)
  const bundle = { deviceKey, identityDh, signedPrekeyId, signedPrekey, created, oneTimePrekeys, signature }
  if (
    !verifySignature(deviceKey, domainSeparated(BUNDLE_DOMAIN, encodeCbor(bundleFields(bundle))), signature)
  ) {
    throw new TalkenError('bad_signature', 'prekey bundle signature does not verify')
  }
  return bundle
}

/** What X3DH yields for the Double Ratchet. */
export interface X3dhSecrets {
  /** The shared secret SK. */
  readonly sk: Uint8Array
  /** The initiator's first sending header key (the spec's shared_hka). */
  readonly hka: Uint8Array
  /** The responder's first sending header key (the spec's shared_nhkb). */
  readonly nhkb: Uint8Array
}

function kdf(dhs: readonly Uint8Array[]): X3dhSecrets {
  const ikm = concatBytes(new Uint8Array(32).fill(0xff), ...dhs)
  const out = hkdf(ikm, new Uint8Array(32), X3DH_INFO, 96)
  return { sk: out.slice(0, 32), hka: out.slice(32, 64), nhkb: out.slice(64, 96) }
}

/** The associated data both sides bind every message to: initiator's keys first. */
export function sessionAd(
  initiatorDevice: Uint8Array,
  initiatorIdentityDh: Uint8Array,
  responderDevice: Uint8Array,
  responderIdentityDh: Uint8Array,
): Uint8Array {
  return concatBytes(initiatorDevice, initiatorIdentityDh, responderDevice, responderIdentityDh)
}

/** The initiator's side: `ephemeral` is EK_A, `oneTimePrekey` the OPK_B chosen from the bundle (if any). */
export function x3dhInitiate(
  ours: E2eIdentity,
  bundle: PrekeyBundle,
  ephemeral: DhKeyPair,
  oneTimePrekey: Uint8Array | undefined,
): X3dhSecrets {
  const dhs = [
    dh(ours.identityDh, bundle.signedPrekey),
    dh(ephemeral, bundle.identityDh),
    dh(ephemeral, bundle.signedPrekey),
  ]
  if (oneTimePrekey !== undefined) dhs.push(dh(ephemeral, oneTimePrekey))
  return kdf(dhs)
}

/** The responder's side, from the initiator's identity DH key and ephemeral key. */
export function x3dhRespond(
  ours: E2eIdentity,
  signedPrekey: DhKeyPair,
  oneTimePrekey: DhKeyPair | undefined,
  theirIdentityDh: Uint8Array,
  theirEphemeral: Uint8Array,
): X3dhSecrets {
  const dhs = [
    dh(signedPrekey, theirIdentityDh),
    dh(ours.identityDh, theirEphemeral),
    dh(signedPrekey, theirEphemeral),
  ]
  if (oneTimePrekey !== undefined) dhs.push(dh(oneTimePrekey, theirEphemeral))
  return kdf(dhs)
}

function introductionKey(identities: Uint8Array, dh2: Uint8Array): Uint8Array {
  return hkdf(concatBytes(identities, dh2), new Uint8Array(32), INTRODUCTION_INFO, 32)
}

/** The initiator's introduction key (IntroKey above), from its ephemeral key EK_A. */
export function initiatorIntroductionKey(
  ours: E2eIdentity,
  theirIdentityDh: Uint8Array,
  ephemeral: DhKeyPair,
): Uint8Array {
  return introductionKey(dh(ours.identityDh, theirIdentityDh), dh(ephemeral, theirIdentityDh))
}

/** The responder's introduction key (IntroKey above): its identity DH key alone is needed. */
export function responderIntroductionKey(
  ours: E2eIdentity,
  theirIdentityDh: Uint8Array,
  theirEphemeral: Uint8Array,
): Uint8Array {
  return introductionKey(dh(ours.identityDh, theirIdentityDh), dh(ours.identityDh, theirEphemeral))
}
