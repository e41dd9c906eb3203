/**
 * The command line typed wrong: usage errors exit with status 2 (docs/errors.md), a mistyped
 * command is called unknown, bad daemon addresses are refused in Talken's words, and the help
 * says how to send text that starts with "-".
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { ensureBuilt, talken, tempDir } from '../helpers/cli.ts'

interface ErrorJson {
  error: { code: string; message: string }
}

describe('usage errors', () => {
  const dir = tempDir('talken-ux-usage-')
  const home = dir.path
  before(() => {
    ensureBuilt()
    assert.equal(talken(home, ['init', '--name', 'Ada']).status, 0)
  })
  after(() => dir.remove())

  it('bad option values exit with status 2, as invalid_argument', () => {
    for (const args of [
      ['send', 'Bob', 'hi', '--wait', 'abc'],
      ['send', 'Bob', 'hi', '--wait', '-1'],
      ['inbox', '--limit', '0'],
      ['inbox', '--limit', '2.5'],
      ['--home', '', 'id'],
      ['daemon', '--no-mdns', '--log-level', 'bogus'],
      ['init', '--no-encrypt', '--passphrase-file', 'x'],
    ]) {
      const r = talken(home, [...args, '--json'])
      assert.equal(r.status, 2, args.join(' '))
      assert.equal((r.json as ErrorJson).error.code, 'invalid_argument', args.join(' '))
      const human = talken(home, args)
      assert.equal(human.status, 2, args.join(' '))
      assert.match(human.stderr, /^talken: /, args.join(' '))
    }
  })

  it('an operation that fails still exits with status 1', () => {
    const r = talken(home, ['send', 'Nobody', 'hi', '--json'])
    assert.equal(r.status, 1)
    assert.equal((r.json as ErrorJson).error.code, 'unknown_contact')
  })

  it('a mistyped command is an unknown command, with the commands it looks like', () => {
    const contact = talken(home, ['contact'])
    assert.equal(contact.status, 2)
    assert.match(contact.stderr, /unknown command 'contact'/)
    assert.match(contact.stderr, /talken contacts/)
    assert.doesNotMatch(contact.stderr, /too many arguments/)
    const list = talken(home, ['rooms', 'list', '--json'])
    assert.equal(list.status, 2)
    const { error } = list.json as ErrorJson
    assert.equal(error.code, 'invalid_argument')
    assert.match(error.message, /unknown command 'list'/)
    assert.match(error.message, /`talken rooms` alone lists your rooms/)
    // Arguments of real commands are still counted.
    assert.match(talken(home, ['rooms', 'create', 'a', 'b']).stderr, /too many arguments/)
  })

  it('`help` shows the help', () => {
    const help = talken(home, ['help'])
    assert.equal(help.status, 0)
    assert.match(help.stdout, /Usage: talken/)
    const rooms = talken(home, ['rooms', 'help'])
    assert.equal(rooms.status, 0)
    assert.match(rooms.stdout, /Usage: talken rooms/)
  })

  it('the help of send and rooms post says how to send text that starts with "-"', () => {
    for (const args of [
      ['send', '--help'],
      ['rooms', 'post', '--help'],
    ]) {
      const r = talken(home, args)
      assert.equal(r.status, 0)
      assert.match(r.stdout, /starts with "-"/, args.join(' '))
      assert.match(r.stdout, / -- -5 degrees/, args.join(' '))
    }
    assert.match(talken(home, ['rooms', '--help']).stdout, /alone, lists your rooms/)
  })
})

describe('daemon addresses', () => {
  const dir = tempDir('talken-ux-addr-')
  const home = dir.path
  let taken: Server
  let port = 0
  before(async () => {
    ensureBuilt()
    assert.equal(talken(home, ['init', '--name', 'Ada']).status, 0)
    taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    port = (taken.address() as { port: number }).port
  })
  after(() => {
    taken.close()
    dir.remove()
  })

  it('a malformed --listen, or one not on TCP, is a usage error naming it', () => {
    for (const address of ['garbage', '/ip4/127.0.0.1/tcp/99999', '/ip4/127.0.0.1/udp/5']) {
      const r = talken(home, ['daemon', '--no-mdns', '--listen', address, '--json'])
      assert.equal(r.status, 2, address)
      const { error } = r.json as ErrorJson
      assert.equal(error.code, 'invalid_argument', address)
      assert.ok(error.message.startsWith(`--listen ${address}:`), error.message)
      assert.doesNotMatch(error.message, /unexpected failure|faultTolerance/, address)
    }
  })

  it('a --listen port in use is io_failed naming the address and the port', () => {
    const address = `/ip4/127.0.0.1/tcp/${port}`
    const r = talken(home, ['daemon', '--no-mdns', '--listen', address, '--json'])
    assert.equal(r.status, 1)
    const { error } = r.json as ErrorJson
    assert.equal(error.code, 'io_failed')
    assert.match(error.message, new RegExp(`^cannot listen on ${address}: port ${port} is in use`))
    assert.doesNotMatch(error.message, /unexpected failure|faultTolerance/)
    // It stopped cleanly: another daemon may start.
    assert.equal((talken(home, ['status', '--json']).json as { running: boolean }).running, false)
  })

  it('a --bootstrap address with an invalid peer ID is refused', () => {
    const r = talken(home, [
      'daemon',
      '--no-mdns',
      '--bootstrap',
      '/ip4/127.0.0.1/tcp/1/p2p/garbage',
      '--json',
    ])
    assert.equal(r.status, 2)
    const { error } = r.json as ErrorJson
    assert.equal(error.code, 'invalid_argument')
    assert.match(error.message, /"garbage" is not a peer ID/)
  })
})
