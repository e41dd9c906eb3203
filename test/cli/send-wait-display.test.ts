/**
 * `talken send --wait`: what it prints and how it exits for each way a wait ends (delivered,
 * read, failed, expired, still on its way, sent again by the node), run as a user would against
 * a daemon of the test's own that plays each story; and the daemon's `send` following a message
 * that the node sends again after a first-contact collision (real nodes on loopback).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { ControlServer } from '../../src/daemon/control.ts'
import { controlMethods } from '../../src/daemon/daemon.ts'
import { resentAs } from '../../src/node/direct-messages.ts'
import { ensureBuilt, talkenAsync, tempDir } from '../helpers/cli.ts'
import { startResendTrio } from '../helpers/nodes.ts'

const BOB = 'tk1bob'
const FIRST = '11'.repeat(16)
const AGAIN = '22'.repeat(16)
const RESENT_REASON = `Bob could not open it (its first-contact prekey was taken); sent again as ${AGAIN}`

/** What the daemon says for each message text: events, then the answer. */
const STORIES: Record<string, { events: unknown[]; result: Record<string, unknown> }> = {
  resent: {
    events: [
      { id: FIRST, to: BOB, state: 'queued' },
      { state: 'sent' },
      { state: 'failed', reason: RESENT_REASON },
      { id: AGAIN, to: BOB, state: 'sent', replaces: FIRST },
      { state: 'delivered' },
    ],
    result: { id: AGAIN, to: BOB, state: 'delivered', daemon: true, replaces: FIRST },
  },
  read: {
    events: [{ id: FIRST, to: BOB, state: 'sent' }, { state: 'delivered' }],
    result: { id: FIRST, to: BOB, state: 'read', daemon: true },
  },
  failed: {
    events: [
      { id: FIRST, to: BOB, state: 'sent' },
      { state: 'failed', reason: 'Bob refused it' },
    ],
    result: { id: FIRST, to: BOB, state: 'failed', daemon: true, reason: 'Bob refused it' },
  },
  expired: {
    events: [{ id: FIRST, to: BOB, state: 'queued' }, { state: 'expired' }],
    result: { id: FIRST, to: BOB, state: 'expired', daemon: true },
  },
  slow: {
    events: [{ id: FIRST, to: BOB, state: 'queued' }, { state: 'sent' }],
    result: { id: FIRST, to: BOB, state: 'sent', daemon: true },
  },
}

describe('talken send --wait: how a wait ends', () => {
  const dir = tempDir('talken-send-wait-')
  let server: ControlServer
  before(async () => {
    ensureBuilt()
    server = await ControlServer.listen(dir.path, {
      send: (params, ctx) => {
        const story = STORIES[String(params.text)]
        if (story === undefined) throw new Error(`no story ${String(params.text)}`)
        for (const e of story.events) ctx.event(e)
        return story.result
      },
    })
  })
  after(async () => {
    await server.close()
    dir.remove()
  })
  const send = (text: string, ...more: string[]) =>
    talkenAsync(dir.path, ['send', 'Bob', text, '--wait', '5', ...more])

  it('a message the node sent again: says why, follows the new copy, and ends delivered', async () => {
    const r = await send('resent')
    assert.equal(r.status, 0, r.stderr)
    assert.equal(
      r.stdout,
      ['sent', `given up: ${RESENT_REASON}`, 'sent', `delivered  ${AGAIN}`, ''].join('\n'),
    )
    const json = await send('resent', '--json')
    assert.equal(json.status, 0, json.stderr)
    assert.deepEqual(JSON.parse(json.stdout), STORIES.resent!.result)
  })

  it('read is success: delivered and read', async () => {
    const r = await send('read')
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, `read  ${FIRST} (delivered and read)\n`)
    assert.doesNotMatch(r.stdout, /goes on trying/)
  })

  it('failed or expired (not sent again) fails the command, with the reason', async () => {
    const failed = await send('failed')
    assert.equal(failed.status, 1)
    assert.equal(failed.stdout, 'failed: Bob refused it\n')
    assert.equal(failed.stderr, `talken: message ${FIRST} failed: Bob refused it\n`)
    const json = await send('failed', '--json')
    assert.equal(json.status, 1)
    assert.deepEqual(JSON.parse(json.stdout), {
      error: { code: 'io_failed', message: `message ${FIRST} failed: Bob refused it` },
    })
    const expired = await send('expired')
    assert.equal(expired.status, 1)
    assert.doesNotMatch(expired.stdout, /goes on trying/)
    assert.match(expired.stderr, new RegExp(`message ${FIRST} expired`))
  })

  it('still on its way when the wait ends: it goes on trying, and that is no failure', async () => {
    const r = await send('slow')
    assert.equal(r.status, 0, r.stderr)
    assert.equal(
      r.stdout,
      `sent\nsent  ${FIRST}\nIt goes on trying; \`talken inbox --all\` shows its state.\n`,
    )
  })
})

describe("the daemon's send, when the node sends the message again", () => {
  it('follows the new copy to delivered, and answers with its ID', async (t) => {
    // Bob cannot open Cid's first message, and asks Cid to send it again.
    const { cid } = await startResendTrio(t)
    const events: Array<Record<string, unknown>> = []
    const result = (await controlMethods(cid).send!(
      { to: 'Bob', text: 'hello from Cid', waitMs: 30_000 },
      { event: (e) => events.push(e as Record<string, unknown>), signal: new AbortController().signal },
    )) as { id: string; state: string; replaces?: string }
    const first = String(events[0]?.id)
    const given = events.find((e) => e.state === 'failed')
    const again = resentAs(given?.reason as string | undefined)
    assert.ok(again !== undefined, JSON.stringify(events))
    assert.deepEqual(
      { id: result.id, state: result.state, replaces: result.replaces },
      { id: again, state: 'delivered', replaces: first },
    )
    assert.ok(
      events.some((e) => e.id === again && e.replaces === first),
      `the new copy announced: ${JSON.stringify(events)}`,
    )
    assert.equal(cid.store.getMessage(again)?.state, 'delivered')
  })
})
