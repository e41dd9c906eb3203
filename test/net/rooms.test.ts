/**
 * Rooms between real nodes on loopback: create, invite link, join, posts both ways, a member
 * who was away catching up, removal, and room frames that relays cannot read.
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { isTalkenError } from '../../src/errors.ts'
import { parseRoomLink } from '../../src/groups/room-link.ts'
import { makeHome, startNode, startPair, until } from '../helpers/nodes.ts'

const texts = (items: Array<{ kind: string; text?: string | undefined }>) =>
  items.filter((h) => h.kind === 'post').map((h) => h.text ?? '(locked)')

test('a room over real links: invite, join, posts both ways, catch-up after a restart', async (t) => {
  const pair = await startPair(t, { introduce: false })
  const na = pair.ada
  let nb = pair.bob
  try {
    const room = na.rooms.create('Climbing')
    na.rooms.post(room.id, 'first, before anyone joined')
    const { link } = na.rooms.invite('Climbing')
    const invite = parseRoomLink(link)
    assert.equal(invite.name, 'Climbing')
    assert.equal(Buffer.from(invite.roomId).toString('hex'), room.id)

    const joining = nb.rooms.join(link)
    assert.equal(joining.member, false)
    assert.throws(
      () => nb.rooms.post(room.id, 'too early'),
      (e) => isTalkenError(e, 'not_permitted'),
    )
    await until(() => nb.rooms.list()[0]?.member === true, 30_000, 'Bob joined')
    await until(() => texts(nb.rooms.history('Climbing')).length === 1, 10_000, 'history reached Bob')
    assert.deepEqual(texts(nb.rooms.history('Climbing')), ['first, before anyone joined'])
    assert.deepEqual(
      na.rooms
        .members('Climbing')
        .map((m) => m.role)
        .sort(),
      ['admin', 'member'],
    )

    const seen: string[] = []
    na.on('room:entry', (e) => {
      if (e.item.text) seen.push(e.item.text)
    })
    nb.rooms.post('Climbing', 'hello from Bob')
    await until(() => seen.includes('hello from Bob'), 10_000, 'Bob’s post reached Ada')

    // Bob goes away; Ada posts; Bob comes back and catches up.
    await nb.stop()
    na.rooms.post('Climbing', 'while you were away')
    nb = await startNode(pair.homes.bob, { bootstrap: na.addresses() })
    await until(() => texts(nb.rooms.history('Climbing')).includes('while you were away'), 30_000, 'catch-up')
    assert.deepEqual(
      na.rooms.history('Climbing').map((h) => h.hash),
      nb.rooms.history('Climbing').map((h) => h.hash),
    )

    // Removal: Bob reads nothing posted after it.
    na.rooms.remove('Climbing', nb.id)
    na.rooms.post('Climbing', 'after removal')
    // Bob hears of this by push, by an announcement, or (if Ada had not yet seen him back when she
    // removed him, so that neither went out) by the last sync she sends a peer she drops, within
    // a review; the bound leaves room for anti-entropy (every 30 s ± 25 %) on a loaded machine.
    await until(
      () => nb.rooms.history('Climbing').length === na.rooms.history('Climbing').length,
      60_000,
      'sync',
    )
    const bobView = nb.rooms.history('Climbing')
    const last = bobView.at(-1)!
    assert.equal(last.kind, 'post')
    assert.equal(last.text, undefined, 'a removed member reads nothing posted after removal')
    assert.equal(nb.rooms.list()[0]?.member, false)
  } finally {
    await na.stop()
    await nb.stop()
  }
})

test('room links: a changed character is a typo, an unknown room a clear error', async () => {
  const a = makeHome('Ada')
  after(() => a.remove())
  const na = await startNode(a.home)
  try {
    const room = na.rooms.create('Quiet')
    const { link } = na.rooms.invite(room.id.slice(0, 8))
    const i = link.length - 10
    const broken = link.slice(0, i) + (link[i] === 'A' ? 'B' : 'A') + link.slice(i + 1)
    assert.throws(
      () => parseRoomLink(broken),
      (e) => isTalkenError(e, 'bad_checksum'),
    )
    assert.throws(
      () => parseRoomLink('talken:room/'),
      (e) => isTalkenError(e, 'malformed'),
    )
    assert.throws(
      () => na.rooms.join(link),
      (e) => isTalkenError(e, 'invalid_argument'),
    )
    assert.throws(
      () => na.rooms.post('Nope', 'x'),
      (e) => isTalkenError(e, 'not_found'),
    )
  } finally {
    await na.stop()
  }
})
