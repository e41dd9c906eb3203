/**
 * Size limits of every wire structure, with their arithmetic. Decoders check these before
 * parsing; encoders refuse to produce anything larger.
 */

/** Longest display or device name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 64
/** Most devices one contact card lists. */
export const MAX_DEVICES = 8
/** Most network addresses one contact card lists. */
export const MAX_ADDRESSES = 8
/** Longest network address (a multiaddr string), in bytes. */
export const MAX_ADDRESS_BYTES = 256
/** Most extension entries (such as prekey bundles) one card carries. */
export const MAX_EXTENSIONS = 8
/** Largest single extension value, in bytes. */
export const MAX_EXTENSION_BYTES = 1024

/**
 * Largest encoded device certificate: array header 1, version 1, key 2+32, name 2+64,
 * created 9, signature 2+64 = 177, rounded up.
 */
export const MAX_DEVICE_CERT_BYTES = 192

/**
 * Largest encoded contact card: 8 devices × 192, 8 addresses × 259, 8 extensions × 1,031, plus
 * key, name, time and signature: about 11.7 KiB, capped at 12 KiB. A real card is a few hundred
 * bytes; the QR code renderer has its own, smaller limit (see identity/qr.ts).
 */
export const MAX_CARD_BYTES = 12 * 1024

/** Largest sealed payload one envelope carries: 64 KiB (files are chunked above this). */
export const MAX_PAYLOAD_BYTES = 64 * 1024

/** Largest encoded envelope: the payload plus a routing header of at most 64 bytes. */
export const MAX_ENVELOPE_BYTES = MAX_PAYLOAD_BYTES + 64

/** Envelope message ID length: 128 random bits. */
export const MESSAGE_ID_LENGTH = 16
/** Destination tag length: 128 bits. */
export const DESTINATION_LENGTH = 16
/** Most hops an envelope may travel. */
export const MAX_HOP_LIMIT = 64
/** Largest copy budget (spray-and-wait L). */
export const MAX_COPIES = 1024
