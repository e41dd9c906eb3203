/**
 * Talken: a serverless, offline-first, end-to-end encrypted messaging core.
 *
 * @example
 * import { createIdentity, makeContactCard, toContactLink } from 'talken'
 * const me = createIdentity({ now: Date.now() })
 * console.log(toContactLink(makeContactCard(me, { name: 'Ada', now: Date.now() })))
 */
import './platform/node-shims.ts'

export { CONTROL_SOCKET, ControlClient, ControlServer } from './daemon/control.ts'
export { type Daemon, type DaemonOptions, runDaemon } from './daemon/daemon.ts'
export { type ErrorDetails, isTalkenError, TalkenError, type TalkenErrorCode } from './errors.ts'
export {
  CardExtension,
  type CardExtensionEntry,
  type ContactCard,
  type ContactCardFields,
  cardExtension,
  decodeContactCard,
  encodeContactCard,
  signContactCard,
} from './identity/contact-card.ts'
export { LINK_SCHEME, parseContactLink, toContactLink } from './identity/contact-link.ts'
export {
  type DeviceCert,
  decodeDeviceCert,
  encodeDeviceCert,
  issueDeviceCert,
  verifyDeviceCert,
} from './identity/device-cert.ts'
export {
  generateSigningKey,
  type SigningKeyPair,
  signingKeyFromSeed,
  verifySignature,
} from './identity/ed25519.ts'
export {
  createIdentity,
  defaultDeviceName,
  type Identity,
  type IdentitySecrets,
  identityFromSecrets,
  makeContactCard,
} from './identity/identity.ts'
export { decodeKeyFile, encodeKeyFile, isKeyFileEncrypted } from './identity/key-file.ts'
export { MAX_QR_BYTES, qrToPng, qrToSvg, qrToTerminal, writeQrFile } from './identity/qr.ts'
export { safetyNumber } from './identity/safety-number.ts'
export { isTextId, parseTextId, TEXT_ID_LENGTH, TEXT_ID_PREFIX, toTextId } from './identity/text-id.ts'
export { Libp2pLinks, type LinkHandlers, type LinksOptions, MESH_PROTOCOL } from './links/libp2p-links.ts'
export { type MdnsInit, talkenMdns } from './links/mdns.ts'
export {
  type DirectMessage,
  decodeDirectMessage,
  encodeDirectMessage,
  MAX_TEXT_BYTES,
} from './messaging/direct-message.ts'
export { type AddContactResult, acceptContactCard, addContact, findContact } from './node/contacts.ts'
export {
  type HomeOptions,
  initHome,
  loadIdentity,
  type OpenHome,
  openHome,
  resolveHome,
} from './node/data-dir.ts'
export { destinationTag } from './node/destination-tag.ts'
export { type MessageView, recentMessages } from './node/inbox.ts'
export {
  createNode,
  type IncomingMessage,
  type MessageStateEvent,
  type NodeEvents,
  type NodeOptions,
  type NodeStatus,
  type PeerInfo,
  type RouteInfo,
  SendHandle,
  TalkenNode,
} from './node/node.ts'

export * from './store/index.ts'
export {
  decodeEnvelope,
  ENVELOPE_VERSION,
  type Envelope,
  EnvelopeFlags,
  encodeEnvelope,
  messageIdHex,
} from './wire/envelope.ts'
export * as limits from './wire/limits.ts'
