/**
 * A daemon that is stopped (SIGSTOP) or stuck: its control socket accepts connections (the kernel
 * queues them) and nothing answers. Every command fails with `not_running` after its deadline
 * instead of waiting forever; `send` says that the message may have been stored.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { controlSocketPath } from '../../src/daemon/control.ts'
import { ensureBuilt, talken, tempDir } from '../helpers/cli.ts'

const bin = join(new URL('../..', import.meta.url).pathname, 'bin', 'talken.js')

/** Runs the CLI without blocking this process (the fake daemon lives here); killed after 60 s. */
function talkenAsync(
  home: string,
  args: readonly string[],
): Promise<{ status: number | null; stdout: string }> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, TALKEN_HOME: home, TALKEN_PASSPHRASE: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d
  })
  child.stderr.resume()
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  return new Promise((resolve) =>
    child.on('close', (status) => {
      clearTimeout(timer)
      resolve({ status, stdout })
    }),
  )
}

describe('talken with a daemon that does not answer', () => {
  const dir = tempDir('talken-stuck-')
  const home = join(dir.path, 'ada')
  let server: Server
  const requests: string[] = []

  before(async () => {
    ensureBuilt()
    assert.equal(talken(home, ['init', '--name', 'Ada']).status, 0)
    server = createServer((socket) => {
      socket.setEncoding('utf8').on('data', (d: string) => requests.push(d))
    })
    await new Promise<void>((resolve) => server.listen(controlSocketPath(home), resolve))
  })
  after(() => {
    server.close()
    dir.remove()
  })

  it('status, inbox (--follow too), peers, rooms and send fail with not_running instead of hanging; send points to inbox --all', async () => {
    const [status, inbox, follow, peers, rooms, send] = await Promise.all([
      talkenAsync(home, ['status', '--json']),
      talkenAsync(home, ['inbox', '--json']),
      talkenAsync(home, ['inbox', '--follow', '--json']),
      talkenAsync(home, ['peers', '--json']),
      talkenAsync(home, ['rooms', '--json']),
      talkenAsync(home, ['send', 'Bob', 'hello', '--wait', '0', '--json']),
    ])
    for (const [what, r] of Object.entries({ status, inbox, follow, peers, rooms, send })) {
      assert.equal(r.status, 1, `${what}: ${r.stdout}`)
      const { error } = JSON.parse(r.stdout) as { error: { code: string; message: string } }
      assert.equal(error.code, 'not_running', what)
      assert.match(error.message, /not answering/, what)
    }
    const { error } = JSON.parse(send.stdout) as { error: { message: string } }
    assert.match(error.message, /may have been stored/)
    assert.match(error.message, /talken inbox --all/)
    assert.ok(
      requests.some((r) => r.includes('"method":"send"')),
      'the send request reached the socket',
    )
  })
})
