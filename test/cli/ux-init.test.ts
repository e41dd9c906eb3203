/**
 * `talken init` that fails makes nothing; one the daemon could not use says so; `status` without
 * a daemon names the identity as a running daemon's does.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ensureBuilt, talken, tempDir } from '../helpers/cli.ts'

interface ErrorJson {
  error: { code: string; message: string }
}

describe('talken init', () => {
  const dir = tempDir('talken-ux-init-')
  before(() => ensureBuilt())
  after(() => dir.remove())

  it('a refused name leaves no data directory, and no database in one that existed', () => {
    const fresh = join(dir.path, 'fresh', 'home')
    const r = talken(fresh, ['init', '--name', '', '--json'])
    assert.equal(r.status, 1)
    assert.equal(existsSync(join(dir.path, 'fresh')), false, 'nothing made')
    const existing = join(dir.path, 'existing')
    mkdirSync(existing, { mode: 0o700 })
    assert.equal(talken(existing, ['init', '--name', '', '--json']).status, 1)
    assert.deepEqual(readdirSync(existing), [])
    // And init then works there.
    assert.equal(talken(existing, ['init', '--name', 'Ada']).status, 0)
  })

  it('an empty passphrase file is refused by name, and leaves nothing', () => {
    const empty = join(dir.path, 'empty.txt')
    writeFileSync(empty, '', { mode: 0o600 })
    const home = join(dir.path, 'nopass')
    const r = talken(home, ['init', '--name', 'Ada', '--passphrase-file', empty, '--json'])
    assert.equal(r.status, 1)
    const { error } = r.json as ErrorJson
    assert.equal(error.code, 'invalid_argument')
    assert.match(error.message, /empty/)
    assert.ok(error.message.includes(empty), error.message)
    assert.equal(existsSync(home), false)
  })

  it('a data directory too long for the control socket gets a warning that the daemon cannot run there', () => {
    const long = join(dir.path, 'l'.repeat(Math.max(1, 110 - dir.path.length)))
    const human = talken(long, ['init', '--name', 'Long'])
    assert.equal(human.status, 0, human.stderr)
    assert.match(human.stderr, /warning: `talken daemon` cannot run in this data directory/)
    const json = talken(join(long, 'x'), ['init', '--name', 'Long', '--json'])
    assert.equal(json.status, 0, json.stderr)
    assert.match((json.json as { warning: string }).warning, /too long for its control socket/)
    // An ordinary one gets none.
    const short = talken(join(dir.path, 's'), ['init', '--name', 'Short', '--json'])
    assert.equal(short.status, 0)
    assert.equal((short.json as { warning?: string }).warning, undefined)
    assert.equal(short.stderr, '')
  })

  it('status without a daemon gives the ID, as a running daemon does', () => {
    const home = join(dir.path, 'status')
    const id = (talken(home, ['init', '--name', 'Ada', '--json']).json as { id: string }).id
    const status = talken(home, ['status', '--json']).json as { running: boolean; id: string; name: string }
    assert.equal(status.running, false)
    assert.equal(status.id, id)
    assert.equal(status.name, 'Ada')
    assert.ok(talken(home, ['status']).stdout.includes(id))
  })
})
