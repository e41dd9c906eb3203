/**
 * Device certificates: an account key vouching for one device's key.
 *
 * ```
 * DeviceCert = [ version: uint (1), deviceKey: bytes(32), deviceName: text(≤64 B),
 *                created: uint (Unix seconds), signature: bytes(64) ]
 * signature = Ed25519(accountKey, "talken/device-cert/v1" 0x00
 *                     || CBOR([1, accountKey, deviceKey, deviceName, created]))
 * ```
 * The account key is signed over but not carried: a certificate is only ever read next to it.
 * See docs/protocol.md §Device certificate for the byte table.
 */
import { TalkenError } from '../errors.ts'
import { type CborValue, decodeCbor, encodeCbor, FieldReader, nameProblem } from '../wire/cbor.ts'
import { MAX_DEVICE_CERT_BYTES, MAX_NAME_BYTES } from '../wire/limits.ts'
import {
  checkPublicKey,
  domainSeparated,
  PUBLIC_KEY_LENGTH,
  pointProblem,
  SIGNATURE_LENGTH,
  type SigningKeyPair,
  verifySignature,
} from './ed25519.ts'

const VERSION = 1
const DOMAIN = 'talken/device-cert/v1'

/** A device's key, certified by its account. */
export interface DeviceCert {
  readonly deviceKey: Uint8Array
  readonly deviceName: string
  /** Unix seconds. */
  readonly created: number
  readonly signature: Uint8Array
}

function signedBytes(accountKey: Uint8Array, cert: Omit<DeviceCert, 'signature'>): Uint8Array {
  return domainSeparated(
    DOMAIN,
    encodeCbor([VERSION, accountKey, cert.deviceKey, cert.deviceName, cert.created]),
  )
}

/** Issues a certificate for `deviceKey`, signed by the account. */
export function issueDeviceCert(
  account: SigningKeyPair,
  deviceKey: Uint8Array,
  deviceName: string,
  created: number,
): DeviceCert {
  const fields = { deviceKey, deviceName, created }
  // Round-trip through the decoder's checks so we never sign what others would refuse.
  checkFields(fields)
  return { ...fields, signature: account.sign(signedBytes(account.publicKey, fields)) }
}

function checkFields(f: Omit<DeviceCert, 'signature'>): void {
  if (f.deviceKey.length !== PUBLIC_KEY_LENGTH)
    throw new TalkenError('invalid_argument', 'device key is 32 bytes')
  const keyProblem = pointProblem(f.deviceKey)
  if (keyProblem !== undefined) throw new TalkenError('invalid_argument', `the device key ${keyProblem}`)
  if (Buffer.byteLength(f.deviceName) > MAX_NAME_BYTES) {
    throw new TalkenError('invalid_argument', `device name is longer than ${MAX_NAME_BYTES} bytes`)
  }
  const problem = nameProblem(f.deviceName)
  if (problem !== undefined) throw new TalkenError('invalid_argument', `the device name ${problem}`)
  if (!Number.isSafeInteger(f.created) || f.created < 0) {
    throw new TalkenError('invalid_argument', 'created is Unix seconds')
  }
}

/** The CBOR value of a certificate, for embedding in larger structures. */
export function deviceCertToCbor(cert: DeviceCert): CborValue {
  return [VERSION, cert.deviceKey, cert.deviceName, cert.created, cert.signature]
}

/** Reads a certificate from its CBOR value; checks shape only (see {@link verifyDeviceCert}). */
export function deviceCertFromCbor(value: CborValue): DeviceCert {
  const r = new FieldReader(value, 'device certificate', 5)
  const version = r.uint('version', 255)
  if (version !== VERSION) {
    throw new TalkenError('unsupported_version', `device certificate version ${version} is not supported`)
  }
  const deviceKey = r.bytes('deviceKey', PUBLIC_KEY_LENGTH)
  checkPublicKey(deviceKey, 'device certificate.deviceKey')
  const deviceName = r.text('deviceName', MAX_NAME_BYTES)
  const problem = nameProblem(deviceName)
  if (problem !== undefined) throw new TalkenError('malformed', `device certificate.deviceName: ${problem}`)
  return {
    deviceKey,
    deviceName,
    created: r.uint('created'),
    signature: r.bytes('signature', SIGNATURE_LENGTH),
  }
}

/** Encodes a certificate on its own. */
export function encodeDeviceCert(cert: DeviceCert): Uint8Array {
  return encodeCbor(deviceCertToCbor(cert))
}

/** Decodes a certificate on its own (shape, size and canonical form). */
export function decodeDeviceCert(bytes: Uint8Array): DeviceCert {
  return deviceCertFromCbor(decodeCbor(bytes, MAX_DEVICE_CERT_BYTES, 'device certificate'))
}

/** Throws `bad_signature` unless `cert` was signed by `accountKey`. */
export function verifyDeviceCert(accountKey: Uint8Array, cert: DeviceCert): void {
  if (!verifySignature(accountKey, signedBytes(accountKey, cert), cert.signature)) {
    throw new TalkenError('bad_signature', 'device certificate is not signed by this account')
  }
}
