/**
 * An encrypted key file and the commands that load the keys: `send` and `rooms` without a daemon,
 * `daemon`, `start`. Each takes --passphrase-file or $TALKEN_PASSPHRASE, asks on a terminal, and
 * without any of them says how to give the passphrase.
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { readlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, describe, it } from 'node:test'
import { ensureBuilt, talken, tempDir } from '../helpers/cli.ts'

interface ErrorJson {
  error: { code: string; message: string }
}

const bin = join(new URL('../..', import.meta.url).pathname, 'bin', 'talken.js')
const scriptMissing = spawnSync('script', ['--version']).status !== 0

/**
 * `talken start` has no --listen option: it listens on every interface (/ip4/0.0.0.0/tcp/0). So it
 * runs in a network namespace of its own, with no interface but a loopback that is down: what it
 * listens on cannot be reached, and no network outside the test is touched. `unshare --net` as
 * root; otherwise in a user namespace of its own too, where the system allows one.
 */
const privateNetwork: string[] | undefined = (() => {
  const flags = process.getuid?.() === 0 ? ['--net'] : ['--net', '--map-root-user']
  return spawnSync('unshare', [...flags, 'true']).status === 0 ? flags : undefined
})()

describe('an encrypted key file', () => {
  const dir = tempDir('talken-passphrase-')
  const ada = join(dir.path, 'ada')
  const bob = join(dir.path, 'bob')
  const file = join(dir.path, 'passphrase')

  before(() => {
    ensureBuilt()
    writeFileSync(file, 'open sesame\n', { mode: 0o600 })
    const init = talken(ada, ['init', '--name', 'Ada', '--passphrase-file', file, '--json'])
    assert.equal(init.status, 0, init.stderr)
    assert.equal((init.json as { encrypted: boolean }).encrypted, true)
    const bobLink = (talken(bob, ['init', '--name', 'Bob', '--json']).json as { link: string }).link
    assert.equal(talken(ada, ['add', bobLink]).status, 0)
  })
  after(() => dir.remove())

  it('send and rooms without a daemon take --passphrase-file or $TALKEN_PASSPHRASE', () => {
    const sent = talken(ada, ['send', 'Bob', 'hi', '--passphrase-file', file, '--json'])
    assert.equal(sent.status, 0, sent.stdout + sent.stderr)
    assert.deepEqual(
      { state: (sent.json as { state: string }).state, daemon: (sent.json as { daemon: boolean }).daemon },
      { state: 'queued', daemon: false },
    )
    const env = talken(ada, ['send', 'Bob', 'again', '--json'], { TALKEN_PASSPHRASE: 'open sesame' })
    assert.equal(env.status, 0, env.stdout + env.stderr)
    const created = talken(ada, ['rooms', 'create', 'Crag', '--passphrase-file', file, '--json'])
    assert.equal(created.status, 0, created.stdout + created.stderr)
    const posted = talken(ada, ['rooms', '--passphrase-file', file, 'post', 'Crag', 'dry', '--json'])
    assert.equal(posted.status, 0, posted.stdout + posted.stderr)
    const wrong = join(dir.path, 'wrong')
    writeFileSync(wrong, 'not it\n')
    const bad = talken(ada, ['send', 'Bob', 'hi', '--passphrase-file', wrong, '--json'])
    assert.equal((bad.json as ErrorJson).error.code, 'bad_passphrase')
  })

  it('without a passphrase or a terminal, each says how to give one', () => {
    for (const args of [
      ['send', 'Bob', 'hi'],
      ['rooms', 'create', 'Other'],
      ['rooms'],
      ['daemon', '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0'],
    ]) {
      const r = talken(ada, [...args, '--json'])
      assert.equal(r.status, 1, args.join(' '))
      const { error } = r.json as ErrorJson
      assert.equal(error.code, 'passphrase_required', args.join(' '))
      assert.match(error.message, /--passphrase-file/, args.join(' '))
      assert.match(error.message, /TALKEN_PASSPHRASE/, args.join(' '))
      assert.match(error.message, /terminal/, args.join(' '))
    }
  })

  it('start takes --passphrase-file', {
    skip:
      privateNetwork === undefined &&
      'no network namespace can be made here, and `talken start` would listen on every interface',
  }, async () => {
    // unshare execs talken in the new namespace: the child is talken itself, signals and all.
    const child = spawn(
      'unshare',
      [
        ...(privateNetwork ?? []),
        process.execPath,
        bin,
        'start',
        '--no-tui',
        '--no-mdns',
        '--json',
        '--passphrase-file',
        file,
      ],
      { env: { ...process.env, TALKEN_HOME: ada, TALKEN_PASSPHRASE: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    try {
      const ready = await new Promise<boolean>((resolve) => {
        createInterface({ input: child.stdout }).on('line', (line) => {
          if (line.includes('"event":"ready"')) resolve(true)
        })
        void exited.then(() => resolve(false))
      })
      assert.equal(ready, true, stderr)
      assert.notEqual(
        readlinkSync(`/proc/${child.pid}/ns/net`),
        readlinkSync('/proc/self/ns/net'),
        'talken start runs in a network of its own',
      )
      child.kill('SIGTERM')
      assert.equal(await exited, 0)
    } finally {
      clearTimeout(timer)
      child.kill('SIGKILL')
    }
  })

  it('on a terminal, send asks for the passphrase', {
    skip: scriptMissing && 'script (util-linux) is not installed',
  }, async () => {
    // `script` runs the command on a pseudo-terminal and passes our input to it.
    const command = `${process.execPath} ${bin} send Bob typed --json`
    const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], {
      env: { ...process.env, TALKEN_HOME: ada, TALKEN_PASSPHRASE: '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let output = ''
    let typed = false
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      output += d
      if (!typed && output.includes('Passphrase: ')) {
        typed = true
        child.stdin.write('open sesame\r')
      }
    })
    const status = await new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)))
    clearTimeout(timer)
    child.stdin.destroy()
    assert.equal(typed, true, output)
    assert.equal(status, 0, output)
    assert.match(output, /"state":"queued"/)
    assert.doesNotMatch(output, /open sesame/, 'not echoed')
  })
})
