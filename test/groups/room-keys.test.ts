import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateDhKey } from '../../src/e2e/primitives.ts'
import { toHex } from '../../src/groups/entry.ts'
import { openPost, openSealedKey, roomKeyId, sealPost, x25519Sealer } from '../../src/groups/room-keys.ts'
import { throwsCode } from '../helpers/errors.ts'
import { founder, T0, utf8 } from './helpers.ts'

const account = new Uint8Array(32).fill(1)
const other = new Uint8Array(32).fill(2)
const keyId = new Uint8Array(16).fill(3)
const roomKey = new Uint8Array(32).fill(4)

describe('room keys', () => {
  it('a sealed key opens only for its member, under its key ID', () => {
    const sealer = x25519Sealer(generateDhKey())
    const stranger = x25519Sealer(generateDhKey())
    const sealed = sealer.seal({ account, sealingKey: sealer.sealingKey }, keyId, roomKey)
    assert.equal(sealed.length, 80)
    assert.deepEqual(sealer.open(account, keyId, sealed), roomKey)
    throwsCode(() => stranger.open(account, keyId, sealed), 'decrypt_failed')
    throwsCode(() => sealer.open(other, keyId, sealed), 'decrypt_failed')
    throwsCode(() => sealer.open(account, new Uint8Array(16), sealed), 'decrypt_failed')
    throwsCode(() => sealer.open(account, keyId, sealed.subarray(1)), 'decrypt_failed')
    // Two seals of one key differ (fresh ephemeral keys).
    assert.notDeepEqual(sealer.seal({ account, sealingKey: sealer.sealingKey }, keyId, roomKey), sealed)
  })

  it('a key is taken only under the key ID that commits to it', () => {
    const sealer = x25519Sealer(generateDhKey())
    const self = { account, sealingKey: sealer.sealingKey }
    const named = roomKeyId(roomKey)
    assert.equal(named.length, 16)
    assert.deepEqual(openSealedKey(sealer, account, named, sealer.seal(self, named, roomKey)), roomKey)
    // Sealed properly, but under an ID that names another key (copied from someone's entry).
    assert.equal(openSealedKey(sealer, account, keyId, sealer.seal(self, keyId, roomKey)), undefined)
  })

  it('a post opens only with its key, room, author and key ID', () => {
    const room = new Uint8Array(32).fill(5)
    const nonce = new Uint8Array(12).fill(6)
    const ct = sealPost(roomKey, keyId, room, account, utf8('hi'), nonce)
    assert.deepEqual(openPost(roomKey, keyId, room, account, ct, nonce), utf8('hi'))
    throwsCode(() => openPost(roomKey, keyId, room, other, ct, nonce), 'decrypt_failed')
    throwsCode(() => openPost(roomKey, keyId, new Uint8Array(32), account, ct, nonce), 'decrypt_failed')
    throwsCode(() => openPost(new Uint8Array(32), keyId, room, account, ct, nonce), 'decrypt_failed')
  })

  it('keeps post contents encrypted at rest', () => {
    const alice = founder('alice')
    const marker = 'plaintext-marker-7f3a'
    alice.log.post(utf8(marker), T0 + 1)
    const stored = alice.store.kvList(`groups/entries/${toHex(alice.log.roomId)}`)
    assert.equal(stored.length, 2)
    for (const [, bytes] of stored) assert.ok(!Buffer.from(bytes).includes(marker))
    assert.equal(alice.store.kvList(`groups/keys/${toHex(alice.log.roomId)}`).length, 1)
    assert.deepEqual(
      alice.store.kvList('groups/rooms').map(([k]) => k),
      [toHex(alice.log.roomId)],
    )
  })
})
