/**
 * The proof a mesh Hello carries that its link speaks for the account whose destination tag it
 * names. A tag is public (every Hello says it), so without one any neighbour could pass for any
 * contact: be listed as them among the peers, and take the link their messages go to.
 *
 * ```
 * proof = Ed25519 signature, by one of the account's devices, over
 *         "talken/hello/v1" ‖ 0x00 ‖ tag (16 bytes) ‖ the sender's libp2p peer ID (text, UTF-8)
 * ```
 *
 * Noise authenticates the peer ID of every link, so a proof copied from someone else's Hello names
 * the wrong peer. Only those who hold the account's card (its contacts) know its device keys and
 * can check a proof; to anyone else it says nothing the tag does not, and it does not give the
 * device key away (an Ed25519 signature does not reveal its public key).
 */
import { domainSeparated, type SigningKeyPair, verifySignature } from '../identity/ed25519.ts'

const DOMAIN = 'talken/hello/v1'

function signed(tag: Uint8Array, peerId: string): Uint8Array {
  const peer = new TextEncoder().encode(peerId)
  const message = new Uint8Array(tag.length + peer.length)
  message.set(tag, 0)
  message.set(peer, tag.length)
  return domainSeparated(DOMAIN, message)
}

/** Our proof, for the Hellos this device sends from the libp2p peer `peerId`. */
export function helloProof(device: SigningKeyPair, tag: Uint8Array, peerId: string): Uint8Array {
  return device.sign(signed(tag, peerId))
}

/** Whether `proof` was made by one of `devices` (an account's device keys) for `tag` and `peerId`. */
export function verifyHelloProof(
  devices: readonly Uint8Array[],
  tag: Uint8Array,
  peerId: string,
  proof: Uint8Array,
): boolean {
  const message = signed(tag, peerId)
  return devices.some((key) => verifySignature(key, message, proof))
}
