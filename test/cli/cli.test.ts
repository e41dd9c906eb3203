import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isKeyFileEncrypted } from '../../src/identity/key-file.ts'
import { resolveHome } from '../../src/node/data-dir.ts'
import { ensureBuilt, talken, tempDir } from '../helpers/cli.ts'
import { decodeQrPng } from '../helpers/qr.ts'

interface IdJson {
  id: string
  name: string
  link: string
}
interface ErrorJson {
  error: { code: string; message: string }
}

const bin = join(new URL('../..', import.meta.url).pathname, 'bin', 'talken.js')
const dir = tempDir('talken-cli-')
const alice = join(dir.path, 'alice')
const bob = join(dir.path, 'bob')

before(() => ensureBuilt())
after(() => dir.remove())

describe('talken CLI', () => {
  let a: IdJson
  let b: IdJson

  it('init creates the identity; id --json prints the same ID and link', () => {
    const init = talken(alice, ['init', '--name', 'Alice', '--json'])
    assert.equal(init.status, 0, init.stderr)
    a = init.json as IdJson
    assert.match(a.id, /^tk1/)
    const id = talken(alice, ['id', '--json'])
    assert.equal(id.status, 0, id.stderr)
    assert.equal((id.json as IdJson).id, a.id)
    assert.equal((id.json as IdJson).link, a.link)
    assert.equal(statSync(join(alice, 'identity.key')).mode & 0o777, 0o600)
    assert.equal(statSync(join(alice, 'talken.db')).mode & 0o777, 0o600)
    assert.equal(statSync(alice).mode & 0o777, 0o700)
    b = talken(bob, ['init', '--name', 'Bob', '--json']).json as IdJson
  })

  it('init refuses to replace an identity', () => {
    const again = talken(alice, ['init', '--name', 'Mallory', '--json'])
    assert.notEqual(again.status, 0)
    assert.equal((again.json as ErrorJson).error.code, 'identity_exists')
    assert.equal((talken(alice, ['id', '--json']).json as IdJson).id, a.id)
  })

  it('id --qr-file writes a PNG that decodes to exactly the link', () => {
    const png = join(dir.path, 'alice.png')
    const r = talken(alice, ['id', '--qr-file', png])
    assert.equal(r.status, 0, r.stderr)
    assert.equal(decodeQrPng(png), a.link)
    const human = talken(alice, ['id', '--qr'])
    assert.match(human.stdout, /▀|█|▄/)
  })

  it('add, contacts and verify: both sides see the same safety number', () => {
    const added = talken(alice, ['add', b.link, '--json'])
    assert.equal(added.status, 0, added.stderr)
    assert.equal((added.json as { outcome: string }).outcome, 'added')
    assert.equal(talken(bob, ['add', a.link, '--name', 'Ally']).status, 0)
    const list = talken(alice, ['contacts', '--json']).json as { contacts: IdJson[] }
    assert.deepEqual(
      list.contacts.map((c) => [c.name, c.id]),
      [['Bob', b.id]],
    )
    const ab = talken(alice, ['verify', 'bob', '--json']).json as { safetyNumber: string }
    const ba = talken(bob, ['verify', 'Ally', '--json']).json as { safetyNumber: string }
    assert.match(ab.safetyNumber, /^(\d{5} ){11}\d{5}$/)
    assert.equal(ab.safetyNumber, ba.safetyNumber)
    const confirmed = talken(alice, ['verify', b.id, '--confirm', '--json']).json as { verified: boolean }
    assert.equal(confirmed.verified, true)
    assert.match(talken(alice, ['contacts']).stdout, /✓ Bob/)
  })

  it('a changed, truncated or garbage link is refused with its code and adds nothing', () => {
    const carol = join(dir.path, 'carol')
    const c = talken(carol, ['init', '--name', 'Carol', '--json']).json as IdJson
    const i = Math.floor(c.link.length / 2)
    const changed = c.link.slice(0, i) + (c.link[i] === 'A' ? 'B' : 'A') + c.link.slice(i + 1)
    const cases: Array<[string, string[]]> = [
      [changed, ['bad_checksum', 'bad_signature']],
      [c.link.slice(0, -5), ['malformed']],
      ['talken:hello-world', ['malformed']],
      ['not a link', ['malformed']],
    ]
    for (const [link, codes] of cases) {
      const r = talken(alice, ['add', link, '--json'])
      assert.notEqual(r.status, 0)
      assert.ok(codes.includes((r.json as ErrorJson).error.code), r.stdout)
      const human = talken(alice, ['add', link])
      assert.notEqual(human.status, 0)
      assert.equal(human.stderr.trim().split('\n').length, 1, 'one line for people')
      assert.match(human.stderr, /^talken: /)
    }
    const list = talken(alice, ['contacts', '--json']).json as { contacts: IdJson[] }
    assert.equal(list.contacts.length, 1)
  })

  it('own link, unknown contact and missing identity are typed errors', () => {
    assert.equal((talken(alice, ['add', a.link, '--json']).json as ErrorJson).error.code, 'self_contact')
    assert.equal(
      (talken(alice, ['verify', 'nobody', '--json']).json as ErrorJson).error.code,
      'unknown_contact',
    )
    const empty = join(dir.path, 'empty')
    for (const args of [['id'], ['send', 'Bob', 'hi'], ['rooms'], ['daemon', '--no-mdns']]) {
      const r = talken(empty, [...args, '--json'])
      assert.equal(r.status, 1, args.join(' '))
      assert.equal((r.json as ErrorJson).error.code, 'no_identity', args.join(' '))
    }
  })

  it('a data directory other users can write to is refused, before anything is read or written there', () => {
    const shared = join(dir.path, 'shared')
    mkdirSync(shared, { mode: 0o700 })
    chmodSync(shared, 0o777)
    const init = talken(shared, ['init', '--name', 'Shared', '--json'])
    assert.equal(init.status, 1)
    assert.equal((init.json as ErrorJson).error.code, 'unsafe_directory')
    assert.deepEqual(readdirSync(shared), [])
    // An identity made while the directory was private, then opened up.
    chmodSync(shared, 0o700)
    assert.equal(talken(shared, ['init', '--name', 'Shared']).status, 0)
    chmodSync(shared, 0o770)
    for (const args of [['id'], ['send', 'nobody', 'hi'], ['rooms'], ['daemon', '--no-mdns']]) {
      const r = talken(shared, [...args, '--json'])
      assert.equal((r.json as ErrorJson).error.code, 'unsafe_directory', args.join(' '))
    }
    assert.deepEqual(readdirSync(shared).sort(), ['identity.key', 'talken.db'], 'no lock or socket was made')
  })

  it('a data directory too long for a control socket still works without a daemon', () => {
    const long = join(dir.path, 'l'.repeat(Math.max(1, 100 - dir.path.length)))
    assert.equal(talken(long, ['init', '--name', 'Long']).status, 0)
    const status = talken(long, ['status', '--json'])
    assert.equal(status.status, 0, status.stderr)
    assert.equal((status.json as { running: boolean }).running, false)
    const daemon = talken(long, ['daemon', '--no-mdns', '--json'])
    assert.equal((daemon.json as ErrorJson).error.code, 'invalid_argument')
  })

  it('an empty TALKEN_HOME means the default directory, not the current one', () => {
    assert.equal(resolveHome(undefined, { TALKEN_HOME: '' }), join(homedir(), '.talken'))
    assert.equal(resolveHome(undefined, { TALKEN_HOME: '/x/y' }), '/x/y')
  })

  it('an empty --home is refused, and nothing is written in the current directory', () => {
    const cwd = join(dir.path, 'cwd')
    mkdirSync(cwd, { mode: 0o700 })
    for (const args of [
      ['--home', '', 'init', '--name', 'Here'],
      ['--home=', 'id'],
    ]) {
      const r = spawnSync(process.execPath, [bin, ...args, '--json'], {
        cwd,
        env: { ...process.env, TALKEN_HOME: alice, TALKEN_PASSPHRASE: '' },
        encoding: 'utf8',
        timeout: 60_000,
      })
      assert.equal(r.status, 2, args.join(' '))
      assert.equal((JSON.parse(r.stdout) as ErrorJson).error.code, 'invalid_argument', args.join(' '))
    }
    assert.deepEqual(readdirSync(cwd), [])
  })

  it('usage errors exit 2, and JSON mode reports them as JSON', () => {
    const r = talken(alice, ['frobnicate', '--json'])
    assert.equal(r.status, 2)
    assert.equal((r.json as ErrorJson).error.code, 'invalid_argument')
    assert.equal(talken(alice, ['add']).status, 2)
  })

  it('the chat screen without a terminal is a typed error, not a blank screen', () => {
    const r = talken(alice, ['tui', '--no-mdns', '--json'])
    assert.equal(r.status, 1)
    const { error } = r.json as ErrorJson
    assert.equal(error.code, 'invalid_argument')
    assert.match(error.message, /needs a terminal/)
  })

  it('every command has --help', () => {
    for (const cmd of [[], ['init'], ['id'], ['add'], ['contacts'], ['verify']]) {
      const r = talken(alice, [...cmd, '--help'])
      assert.equal(r.status, 0, `${cmd.join(' ')} --help`)
      assert.match(r.stdout, /Usage: talken/)
    }
  })

  it('init --encrypt protects the key file with the passphrase', () => {
    const home = join(dir.path, 'locked')
    const r = talken(home, ['init', '--name', 'Dana', '--encrypt', '--json'], {
      TALKEN_PASSPHRASE: 'hunter2 hunter2',
    })
    assert.equal(r.status, 0, r.stderr)
    const bytes = new Uint8Array(readFileSync(join(home, 'identity.key')))
    assert.equal(isKeyFileEncrypted(bytes), true)
    // Without a terminal and no passphrase given, --encrypt fails cleanly and creates nothing.
    const none = talken(join(dir.path, 'nopass'), ['init', '--encrypt', '--json'])
    assert.equal((none.json as ErrorJson).error.code, 'passphrase_required')
    assert.equal(talken(join(dir.path, 'nopass'), ['id', '--json']).status, 1)
  })

  it('a passphrase given to init encrypts the key file without --encrypt; --no-encrypt refuses it', () => {
    const encrypted = (home: string) =>
      isKeyFileEncrypted(new Uint8Array(readFileSync(join(home, 'identity.key'))))
    const file = join(dir.path, 'pass.txt')
    writeFileSync(file, 'correct horse\n', { mode: 0o600 })
    const fromFile = join(dir.path, 'from-file')
    const r = talken(fromFile, ['init', '--name', 'Eve', '--passphrase-file', file, '--json'])
    assert.equal(r.status, 0, r.stderr)
    assert.equal((r.json as { encrypted: boolean }).encrypted, true)
    assert.equal(encrypted(fromFile), true)
    const fromEnv = join(dir.path, 'from-env')
    const e = talken(fromEnv, ['init', '--name', 'Fay'], { TALKEN_PASSPHRASE: 'correct horse' })
    assert.equal(e.status, 0, e.stderr)
    assert.match(e.stdout, /encrypted/)
    assert.equal(encrypted(fromEnv), true)
    const plain = join(dir.path, 'plain')
    const n = talken(plain, ['init', '--name', 'Gil', '--no-encrypt', '--json'], { TALKEN_PASSPHRASE: 'x' })
    assert.equal(n.status, 0, n.stderr)
    assert.equal((n.json as { encrypted: boolean }).encrypted, false)
    assert.equal(encrypted(plain), false)
    const both = talken(join(dir.path, 'both'), ['init', '--no-encrypt', '--passphrase-file', file, '--json'])
    assert.equal((both.json as ErrorJson).error.code, 'invalid_argument')
  })

  it('talken with no command creates an identity on first run and shows the link', () => {
    const home = join(dir.path, 'first')
    const first = talken(home, ['--json'])
    assert.equal(first.status, 0, first.stderr)
    assert.equal((first.json as { created: boolean }).created, true)
    const second = talken(home, [])
    assert.equal(second.status, 0, second.stderr)
    assert.match(second.stdout, /Link: talken:/)
  })
})

describe('npx talken', () => {
  it('runs the package bin from the project folder', async () => {
    const { spawnSync } = await import('node:child_process')
    const root = new URL('../..', import.meta.url).pathname
    const r = spawnSync('npx', ['--no-install', 'talken', '--version'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
    })
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout.trim(), /^\d+\.\d+\.\d+$/)
  })
})
