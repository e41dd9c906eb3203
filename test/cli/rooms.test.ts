/**
 * `talken rooms` without a daemon: the actions run on the data directory and persist; errors are
 * typed, in JSON too. (With daemons, test/netns/rooms-line.test.ts.)
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { ensureBuilt, talken, tempDir } from '../helpers/cli.ts'

describe('talken rooms (no daemon)', () => {
  const dir = tempDir('talken-rooms-cli-')
  const home = dir.path
  before(() => {
    ensureBuilt()
    assert.equal(talken(home, ['init', '--name', 'Ada']).status, 0)
  })
  after(() => dir.remove())

  it('create, post, history, members, invite: all persisted, all with --json', () => {
    const created = talken(home, ['rooms', 'create', 'Crag', '--json'])
    assert.equal(created.status, 0, created.stderr)
    const room = created.json as { id: string; name: string; member: boolean; members: number }
    assert.equal(room.name, 'Crag')
    assert.equal(room.member, true)
    assert.equal(room.members, 1)
    assert.equal(talken(home, ['rooms', 'post', 'Crag', 'west', 'side', 'is', 'dry']).status, 0)
    const history = talken(home, ['rooms', 'history', room.id.slice(0, 8), '--json']).json as Array<{
      kind: string
      text?: string
      authorName?: string
    }>
    assert.deepEqual(
      history.map((h) => h.kind),
      ['genesis', 'post'],
    )
    assert.equal(history[1]?.text, 'west side is dry')
    assert.equal(history[1]?.authorName, 'you')
    const members = talken(home, ['rooms', 'members', 'Crag', '--json']).json as Array<{
      role: string
      self: boolean
    }>
    assert.deepEqual(members, [{ ...members[0], role: 'admin', self: true }])
    const invite = talken(home, ['rooms', 'invite', 'Crag', '--json']).json as {
      link: string
      expiresAt: string
    }
    assert.match(invite.link, /^talken:room\//)
    const listed = talken(home, ['rooms', '--json']).json as Array<{ id: string }>
    assert.deepEqual(
      listed.map((r) => r.id),
      [room.id],
    )
    const human = talken(home, ['rooms', 'history', 'Crag'])
    assert.match(human.stdout, /you: west side is dry/)
  })

  it('loading history from peers needs the daemon: sync and history --sync say none runs', () => {
    for (const args of [
      ['rooms', 'sync', 'Crag'],
      ['rooms', 'history', 'Crag', '--sync'],
    ]) {
      const r = talken(home, [...args, '--json'])
      assert.equal(r.status, 1, args.join(' '))
      assert.equal((r.json as { error: { code: string } }).error.code, 'not_running', args.join(' '))
    }
  })

  it('unknown rooms, bad links and joining your own invitation are typed errors', () => {
    const unknown = talken(home, ['rooms', 'post', 'Nowhere', 'hi', '--json'])
    assert.notEqual(unknown.status, 0)
    assert.equal((unknown.json as { error: { code: string } }).error.code, 'not_found')
    const bad = talken(home, ['rooms', 'join', 'talken:room/AAAA', '--json'])
    assert.notEqual(bad.status, 0)
    assert.match((bad.json as { error: { code: string } }).error.code, /malformed|bad_checksum/)
    const own = talken(home, ['rooms', 'invite', 'Crag', '--json']).json as { link: string }
    const self = talken(home, ['rooms', 'join', own.link, '--json'])
    assert.equal((self.json as { error: { code: string } }).error.code, 'invalid_argument')
  })
})
