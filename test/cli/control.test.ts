/**
 * The control socket in-process, with methods of the test's own: replies too large for a line,
 * lists cut to the newest that fit, a client that stops reading, one that ends its side after its
 * request, and a daemon that never answers.
 */
import assert from 'node:assert/strict'
import diagnosticsChannel from 'node:diagnostics_channel'
import { EventEmitter } from 'node:events'
import { chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import {
  ControlClient,
  ControlServer,
  controlSocketPath,
  fitNewest,
  MAX_CONTROL_LINE,
  MAX_UNREAD_BYTES,
} from '../../src/daemon/control.ts'
import { controlMethods } from '../../src/daemon/daemon.ts'
import { isTalkenError } from '../../src/errors.ts'
import type { TalkenNode } from '../../src/node/node.ts'
import { rejectsCode } from '../helpers/errors.ts'

/** `promise`, or a failure once `ms` have passed: a wait in a test ends, whatever goes wrong. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

describe('control socket', () => {
  const home = mkdtempSync(join(tmpdir(), 'talken-control-'))
  let server: ControlServer
  let floodAborted: Promise<number>
  let floodStarted!: () => void
  const started = new Promise<void>((resolve) => {
    floodStarted = resolve
  })

  let answerLater: ((value: unknown) => void) | undefined
  let laterAsked: () => void = () => {}

  before(async () => {
    let aborted!: (sent: number) => void
    floodAborted = new Promise((resolve) => {
      aborted = resolve
    })
    server = await ControlServer.listen(home, {
      echo: (params) => params,
      big: () => ({ text: 'x'.repeat(MAX_CONTROL_LINE) }),
      list: () => fitNewest(Array.from({ length: 100 }, (_, i) => ({ i, text: 'y'.repeat(50_000) }))),
      // Answers when the test says (`answer`), with how many requests were pending then.
      later: () =>
        new Promise((resolve) => {
          answerLater = resolve
          laterAsked()
        }),
      // Events as fast as the socket takes them, at most 100 MB, until the client is gone.
      flood: (_params, ctx) =>
        new Promise<null>((resolve) => {
          floodStarted()
          let sent = 0
          const chunk = 'z'.repeat(100_000)
          const tick = (): void => {
            if (ctx.signal.aborted || sent >= 1_000) {
              aborted(sent)
              resolve(null)
              return
            }
            ctx.event({ chunk })
            sent++
            setImmediate(tick)
          }
          tick()
        }),
    })
  })
  after(async () => {
    await server.close()
    rmSync(home, { recursive: true, force: true })
  })

  it('a reply over one line is a too_large error, and the connection goes on', async () => {
    const client = await ControlClient.connect(home)
    assert.ok(client)
    try {
      await assert.rejects(client.call('big'), (err: Error & { code?: string }) => err.code === 'too_large')
      assert.deepEqual(await client.call('echo', { a: 1 }), { a: 1 })
    } finally {
      client.close()
    }
  })

  it('a request over one line fails every pending call with too_large, not with a closed connection', async () => {
    const client = await ControlClient.connect(home)
    assert.ok(client)
    try {
      const pending = client.call('later')
      pending.catch(() => {}) // awaited below
      await assert.rejects(client.call('echo', { pad: 'x'.repeat(MAX_CONTROL_LINE + 10) }), (err: unknown) =>
        isTalkenError(err, 'too_large'),
      )
      await assert.rejects(pending, (err: unknown) => isTalkenError(err, 'too_large'))
    } finally {
      client.close()
    }
  })

  it('a client that ends its side after its request still gets the answer, then the connection ends', async (t) => {
    // The server's end of the connection, to see when it has read the client's end.
    let serverEnd!: () => void
    const serverEnded = new Promise<void>((resolve) => {
      serverEnd = resolve
    })
    const onServerSocket = (message: unknown): void => {
      ;(message as { socket: Socket }).socket.once('end', () => serverEnd())
    }
    diagnosticsChannel.subscribe('net.server.socket', onServerSocket)
    t.after(() => diagnosticsChannel.unsubscribe('net.server.socket', onServerSocket))
    const socket = connect(controlSocketPath(home))
    let received = ''
    socket.setEncoding('utf8').on('data', (d: string) => {
      received += d
    })
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    const asked = new Promise<void>((resolve) => {
      laterAsked = resolve
    })
    socket.end(`${JSON.stringify({ id: 5, method: 'later' })}\n`)
    await within(asked, 30_000, 'the request')
    // The daemon reads the end behind the request before it answers: a daemon that dropped a
    // half-closed client would end the connection then, and the answer would be lost.
    await within(serverEnded, 30_000, 'the daemon to read the end of the request')
    // Its own handler of the end has run (the listener above ran first, in the same emit).
    await new Promise((r) => setImmediate(r))
    answerLater?.({ late: true })
    await within(closed, 30_000, 'the daemon to end the connection')
    assert.deepEqual(JSON.parse(received), { id: 5, result: { late: true } })
  })

  it('a list is cut to its newest items that fit in a line', async () => {
    const client = await ControlClient.connect(home)
    assert.ok(client)
    try {
      const items = await client.call<Array<{ i: number }>>('list')
      assert.ok(items.length > 10 && items.length < 100, `${items.length} items`)
      assert.equal(items.at(-1)?.i, 99)
      assert.deepEqual(
        items.map((x) => x.i),
        Array.from({ length: items.length }, (_, k) => 100 - items.length + k),
      )
    } finally {
      client.close()
    }
  })

  it('fitNewest keeps everything that fits, and nothing when the newest alone is too large', () => {
    assert.deepEqual(fitNewest([1, 2, 3]), [1, 2, 3])
    assert.deepEqual(fitNewest(['a'.repeat(MAX_CONTROL_LINE)]), [])
  })

  it('a client that stops reading is let go once more than the bound waits for it', async () => {
    const socket = connect(controlSocketPath(home))
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    socket.write(`${JSON.stringify({ id: 1, method: 'flood' })}\n`)
    socket.pause() // and never read again
    await started
    const sent = await floodAborted
    assert.ok(sent < 1_000, `the daemon stopped after ${sent} events, not at the test's cap`)
    assert.ok(sent * 100_000 >= MAX_UNREAD_BYTES, `${sent} events: at least the bound was written`)
    socket.destroy()
    // Others are served as before.
    const client = await ControlClient.connect(home)
    assert.ok(client)
    try {
      assert.deepEqual(await client.call('echo', { b: 2 }), { b: 2 })
    } finally {
      client.close()
    }
  })
})

describe('control client: a daemon that does not answer', () => {
  it('a call fails with not_running once its deadline passes; follow has none', async () => {
    const home = mkdtempSync(join(tmpdir(), 'talken-control-stuck-'))
    // Accepts connections and reads requests, and never answers: a daemon under SIGSTOP, as the
    // client sees it.
    const server = createServer((s) => s.resume())
    try {
      await new Promise<void>((resolve) => server.listen(controlSocketPath(home), resolve))
      const client = await ControlClient.connect(home)
      assert.ok(client)
      try {
        let followEnded = false
        const follow = client.call('follow', {}, () => {})
        follow.then(
          () => {
            followEnded = true
          },
          () => {
            followEnded = true
          },
        )
        const err = await rejectsCode(
          () => within(client.call('status', {}, undefined, { timeoutMs: 300 }), 30_000, 'the deadline'),
          'not_running',
        )
        assert.equal(err.details?.reason, 'no_answer')
        assert.match(err.message, /not answering/)
        // The follow, started first, outlived the call's deadline.
        assert.equal(followEnded, false)
      } finally {
        client.close()
      }
    } finally {
      server.close()
      rmSync(home, { recursive: true, force: true })
    }
  })
})

describe("the daemon's follow method", () => {
  it('serves any number of followers through one listener per node event', async () => {
    const node = new EventEmitter()
    const follow = controlMethods(node as unknown as TalkenNode).follow!
    const followers = Array.from({ length: 25 }, () => {
      const abort = new AbortController()
      const events: unknown[] = []
      const call = follow({}, { event: (e) => events.push(e), signal: abort.signal })
      return { abort, events, call }
    })
    for (const event of ['message', 'state', 'room:entry', 'stopped']) {
      assert.equal(node.listenerCount(event), 1, `listeners of ${event}`)
    }
    node.emit('message', { text: 'to all' })
    node.emit('room:entry', { hash: 'h' })
    for (const f of followers) {
      assert.deepEqual(f.events, [
        { type: 'message', text: 'to all' },
        { type: 'room', hash: 'h' },
      ])
    }
    followers[0]!.abort.abort()
    assert.equal(await followers[0]!.call, null)
    node.emit('state', { id: 'x', state: 'sent' })
    assert.equal(followers[0]!.events.length, 2, 'a follower gone gets nothing more')
    assert.deepEqual(followers[1]!.events.at(-1), { type: 'state', id: 'x', state: 'sent' })
    // The node stops: every follow ends, and no listener is left.
    node.emit('stopped')
    for (const f of followers) assert.equal(await f.call, null)
    for (const event of ['message', 'state', 'room:entry', 'stopped']) {
      assert.equal(node.listenerCount(event), 0, `listeners of ${event}`)
    }
  })

  it('leaves no listener on the node once its client is gone', async () => {
    const node = new EventEmitter()
    const follow = controlMethods(node as unknown as TalkenNode).follow!
    for (let i = 0; i < 20; i++) {
      const abort = new AbortController()
      const events: unknown[] = []
      const call = follow({}, { event: (e) => events.push(e), signal: abort.signal })
      node.emit('message', { text: 'hi' })
      abort.abort()
      assert.equal(await call, null)
      assert.deepEqual(events, [{ type: 'message', text: 'hi' }])
    }
    for (const event of ['message', 'state', 'room:entry', 'stopped']) {
      assert.equal(node.listenerCount(event), 0, `listeners of ${event}`)
    }
  })
})

describe('control socket: where it may be', () => {
  it('a data directory too long for a socket path is a typed error, and nothing is bound elsewhere', async () => {
    const base = mkdtempSync(join(tmpdir(), 'talken-control-long-'))
    try {
      const home = join(base, 'x'.repeat(120))
      mkdirSync(home)
      await assert.rejects(ControlServer.listen(home, {}), (err: unknown) =>
        isTalkenError(err, 'invalid_argument'),
      )
      assert.deepEqual(readdirSync(base), ['x'.repeat(120)])
      assert.deepEqual(readdirSync(home), [])
    } finally {
      rmSync(base, { recursive: true, force: true })
    }
  })

  it('a socket another user put in the data directory is not used', async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root, to make a socket owned by another user')
      return
    }
    const home = mkdtempSync(join(tmpdir(), 'talken-control-foreign-'))
    const server = createServer((s) => s.end())
    try {
      await new Promise<void>((resolve) => server.listen(controlSocketPath(home), resolve))
      chownSync(controlSocketPath(home), 65534, 65534)
      await assert.rejects(ControlClient.connect(home), (err: unknown) =>
        isTalkenError(err, 'unsafe_directory'),
      )
    } finally {
      server.close()
      rmSync(home, { recursive: true, force: true })
    }
  })
})
