/**
 * `talken init` judges the name (and the device name) as every contact's decoder will judge the
 * card (`nameProblem`): no invisible characters, no whitespace at either end; refused before
 * anything is made.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { before, describe, it } from 'node:test'
import { initHome } from '../../src/node/data-dir.ts'
import { ensureBuilt, talken, tempDir } from '../helpers/cli.ts'
import { throwsCode } from '../helpers/errors.ts'

interface ErrorJson {
  error: { code: string; message: string }
}

describe('init names', () => {
  before(() => ensureBuilt())

  it('refuses names the card decoder would refuse, before anything is made', (t) => {
    const dir = tempDir('talken-names-')
    t.after(dir.remove)
    const home = join(dir.path, 'home')
    for (const name of ['Ada\u200b', 'Ada ', ' Ada', '\u202eadA', '\u00a0', 'A\u2060da']) {
      throwsCode(() => initHome({ home, name }), 'invalid_argument')
    }
    for (const deviceName of ['phone\u200b', ' phone', 'pho\u202ene']) {
      throwsCode(() => initHome({ home, name: 'Ada', deviceName }), 'invalid_argument')
    }
    assert.equal(existsSync(home), false)
    const made = initHome({ home, name: 'Ada Lovelace', deviceName: 'old phone' })
    assert.equal(made.profile.name, 'Ada Lovelace')
    made.close()
  })

  it('says so on the command line', (t) => {
    const dir = tempDir('talken-names-')
    t.after(dir.remove)
    const home = join(dir.path, 'home')
    const r = talken(home, ['init', '--name', 'Ada\u200b', '--json'])
    assert.notEqual(r.status, 0)
    assert.equal((r.json as ErrorJson).error.code, 'invalid_argument')
    assert.match((r.json as ErrorJson).error.message, /invisible/)
    assert.equal(existsSync(join(home, 'talken.db')), false)
  })
})
