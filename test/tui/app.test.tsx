/**
 * The terminal client's screens, rendered with ink-testing-library against a fake node: the
 * chat list with unread counts, a conversation whose delivery states change as events arrive,
 * sending, slash commands, peers and routes, the ID screen, adding a contact, safety numbers,
 * rooms, the first-run prompt, and errors shown instead of thrown.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { render } from 'ink-testing-library'
import type { ContactSummary, MessageView } from '../../src/node/inbox.ts'
import type { RoomHistoryItem, RoomSummary } from '../../src/node/rooms.ts'
import { App } from '../../src/tui/app.tsx'
import type { TuiClient, TuiEvent } from '../../src/tui/client.ts'
import { FirstRun } from '../../src/tui/run.tsx'

const ADA = 'tk1ada'
const BOB = 'tk1bob'
const tick = (ms = 30) => new Promise((r) => setTimeout(r, ms))

async function until(
  frame: () => string | undefined,
  check: (f: string) => boolean,
  what: string,
): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const f = frame() ?? ''
    if (check(f)) return f
    await tick(20)
  }
  throw new Error(`never saw ${what}:\n${frame()}`)
}

/** A node that answers from memory and records what it was asked. */
function fakeClient(
  init: { contacts?: ContactSummary[]; messages?: MessageView[]; rooms?: RoomSummary[] } = {},
) {
  let contacts = init.contacts ?? []
  const messages = [...(init.messages ?? [])]
  const rooms = init.rooms ?? []
  const history: RoomHistoryItem[] = []
  const calls: string[] = []
  let emit: (e: TuiEvent) => void = () => {}
  const client: TuiClient = {
    identity: async () => ({ id: 'tk1me', name: 'Me', link: 'talken:me-link' }),
    contacts: async () => contacts,
    conversation: async (contact) => messages.filter((m) => m.conversation === contact),
    send: async (contact, text) => {
      calls.push(`send ${contact} ${text}`)
      const m: MessageView = {
        id: `m${messages.length}`,
        conversation: contact,
        contact: 'Bob',
        direction: 'out',
        text,
        at: 0,
        state: 'queued',
      }
      messages.push(m)
      return { id: m.id, state: 'queued' }
    },
    addContact: async (link, name) => {
      calls.push(`add ${link} ${name ?? ''}`)
      contacts = [
        ...contacts,
        { id: 'tk1cat', name: name ?? 'Cat', verified: false, unread: 0, lastAt: 0, receipts: true },
      ]
      return { outcome: 'added', id: 'tk1cat', name: name ?? 'Cat' }
    },
    safetyNumber: async (contact, confirm) => {
      calls.push(`safety ${contact} ${confirm === true}`)
      return {
        id: contact,
        name: 'Bob',
        safetyNumber: '12345 67890 12345 67890 12345 67890 12345 67890 12345 67890 12345 67890',
        verified: confirm === true,
      }
    },
    markRead: async (contact) => {
      calls.push(`read ${contact}`)
      contacts = contacts.map((c) => (c.id === contact ? { ...c, unread: 0 } : c))
      return 1
    },
    setReceipts: async (contact, on) => {
      calls.push(`receipts ${contact} ${on}`)
    },
    peers: async () => [
      { peerId: '12D3KooWpeerOfBob', addresses: [], mesh: true, contact: 'Bob' },
      { peerId: '12D3KooWstranger', addresses: [], mesh: true, contact: undefined },
    ],
    routes: async () => [
      { destination: 'aa'.repeat(16), contact: 'Bob', nextHop: '12D3KooWpeerOfBob', metric: 1 },
    ],
    rooms: async () => rooms,
    roomHistory: async () => history,
    roomMembers: async () => [{ id: 'tk1me', name: 'you', role: 'admin', self: true }],
    roomPost: async (room, text) => {
      calls.push(`post ${room} ${text}`)
    },
    roomCreate: async (name) => ({ id: 'ab'.repeat(32), name, member: true, members: 1, entries: 1 }),
    roomJoin: async () => ({ id: 'cd'.repeat(32), name: 'Joined', member: false, members: 0, entries: 0 }),
    roomInvite: async () => ({ link: 'talken:room/invite' }),
    roomSync: async () => 2,
    follow: (onEvent) => {
      emit = onEvent
      return () => {}
    },
    close: () => {},
  }
  const unread = (id: string) => {
    contacts = contacts.map((c) => (c.id === id ? { ...c, unread: c.unread + 1 } : c))
  }
  return { client, calls, emit: (e: TuiEvent) => emit(e), history, unread }
}

const bob: ContactSummary = { id: BOB, name: 'Bob', verified: false, unread: 0, lastAt: 5, receipts: true }
const ada: ContactSummary = { id: ADA, name: 'Ada', verified: true, unread: 2, lastAt: 1, receipts: true }
const fromBob: MessageView = {
  id: 'in1',
  conversation: BOB,
  contact: 'Bob',
  direction: 'in',
  text: 'hi there',
  at: 0,
  state: 'received',
}

describe('terminal client', () => {
  it('lists contacts with unread counts and opens the most recent conversation, marking it read', async () => {
    const { client, calls } = fakeClient({ contacts: [ada, bob], messages: [fromBob] })
    const ui = render(<App client={client} />)
    const f = await until(ui.lastFrame, (s) => s.includes('Bob: hi there'), 'the conversation')
    assert.match(f, /✓Ada\s+2/, 'Ada, verified, 2 unread')
    assert.match(f, /Talken · Me/)
    await until(
      () => calls.join(','),
      (c) => c.includes(`read ${BOB}`),
      'markRead',
    )
    ui.unmount()
  })

  it('sends what is typed and shows its delivery state changing as events arrive', async () => {
    const { client, calls, emit } = fakeClient({ contacts: [bob], messages: [fromBob] })
    const ui = render(<App client={client} />)
    await until(ui.lastFrame, (s) => s.includes('hi there'), 'the conversation')
    ui.stdin.write('see you at nine')
    await until(ui.lastFrame, (s) => s.includes('> see you at nine'), 'the typed line')
    ui.stdin.write('\r')
    await until(ui.lastFrame, (s) => /me: see you at nine\s+queued/.test(s), 'queued')
    assert.ok(calls.includes(`send ${BOB} see you at nine`))
    for (const state of ['sent', 'relayed', 'delivered', 'read'] as const) {
      emit({ type: 'state', id: 'm1', conversation: BOB, state })
      await until(ui.lastFrame, (s) => new RegExp(`see you at nine\\s+${state}`).test(s), state)
    }
    ui.unmount()
  })

  it('a state event that comes before the reply to the send is not lost', async () => {
    const { client, emit } = fakeClient({ contacts: [bob], messages: [fromBob] })
    // Events come on a connection of their own: delivered can beat the reply that names the message.
    const send = client.send
    client.send = async (contact, text) => {
      const sent = await send(contact, text)
      emit({ type: 'state', id: sent.id, conversation: contact, state: 'sent' })
      emit({ type: 'state', id: sent.id, conversation: contact, state: 'delivered' })
      await tick()
      return sent
    }
    const ui = render(<App client={client} />)
    await until(ui.lastFrame, (s) => s.includes('hi there'), 'the conversation')
    ui.stdin.write('quick one')
    await until(ui.lastFrame, (s) => s.includes('> quick one'), 'the typed line')
    ui.stdin.write('\r')
    await until(ui.lastFrame, (s) => /me: quick one\s+delivered/.test(s), 'delivered')
    ui.unmount()
  })

  it('what comes while a conversation is read is kept, and a slow read does not show in another chat', async () => {
    const fromAda: MessageView = {
      ...fromBob,
      id: 'in9',
      conversation: ADA,
      contact: 'Ada',
      text: 'from ada',
    }
    const { client, emit } = fakeClient({
      contacts: [bob, { ...ada, unread: 0 }],
      messages: [fromBob, fromAda],
    })
    // Reads wait until let go; events come meanwhile.
    const held: Array<() => void> = []
    const conversation = client.conversation
    client.conversation = (contact, limit) =>
      new Promise((resolve) => held.push(() => resolve(conversation(contact, limit))))
    const ui = render(<App client={client} />)
    await until(
      () => String(held.length),
      (n) => n === '1',
      "Bob's conversation read",
    )
    emit({ type: 'message', id: 'in2', from: BOB, fromName: 'Bob', text: 'during the read', receivedAt: 0 })
    held.shift()!()
    const f = await until(ui.lastFrame, (s) => s.includes('Bob: hi there'), 'the conversation')
    assert.match(f, /Bob: during the read/)
    // Ada's chat is opened and then Bob's again; Ada's read comes back last.
    ui.stdin.write('/chat ada\r')
    await until(
      () => String(held.length),
      (n) => n === '1',
      "Ada's conversation read",
    )
    ui.stdin.write('/chat bob\r')
    await until(
      () => String(held.length),
      (n) => n === '2',
      "Bob's second read",
    )
    held.pop()!()
    await until(ui.lastFrame, (s) => s.includes('chat with Bob') && s.includes('Bob: hi there'), 'Bob again')
    held.pop()!()
    await tick(60)
    assert.doesNotMatch(ui.lastFrame() ?? '', /from ada/)
    ui.unmount()
  })

  it('a message the node gave up and sent again shows once, as the new one', async () => {
    // What the node's conversation reads back after a resend: the new copy only.
    const resent: MessageView = {
      ...fromBob,
      id: 'new1',
      direction: 'out',
      text: 'first words',
      state: 'sent',
    }
    const old: MessageView = { ...resent, id: 'old1', state: 'relayed' }
    const { client, emit } = fakeClient({ contacts: [bob], messages: [fromBob, old] })
    const ui = render(<App client={client} />)
    await until(ui.lastFrame, (s) => /first words\s+relayed/.test(s), 'the first copy')
    // The node sends it again, then gives the old one up; the conversation now holds the new one.
    Object.assign(old, resent)
    emit({ type: 'state', id: 'old1', conversation: BOB, state: 'failed' })
    const f = await until(ui.lastFrame, (s) => /first words\s+sent/.test(s), 'the new copy')
    assert.equal(f.match(/first words/g)?.length, 1, f)
    assert.doesNotMatch(f, /failed/)
    ui.unmount()
  })

  it('shows an incoming message in the open chat, and counts one for another contact', async () => {
    const { client, emit, unread } = fakeClient({
      contacts: [bob, { ...ada, unread: 0 }],
      messages: [fromBob],
    })
    const ui = render(<App client={client} />)
    await until(ui.lastFrame, (s) => s.includes('hi there'), 'the conversation')
    emit({ type: 'message', id: 'in2', from: BOB, fromName: 'Bob', text: 'still there?', receivedAt: 0 })
    await until(ui.lastFrame, (s) => s.includes('Bob: still there?'), 'the new message')
    unread(ADA)
    emit({ type: 'message', id: 'in3', from: ADA, fromName: 'Ada', text: 'psst', receivedAt: 0 })
    await until(ui.lastFrame, (s) => /✓Ada\s+1/.test(s), "Ada's unread count")
    emit({ type: 'connection', up: false })
    await until(ui.lastFrame, (s) => s.includes('node not running'), 'the connection state')
    ui.unmount()
  })

  it('slash commands: help, peers and routes, id, add, verify with y, receipts, unknown', async () => {
    const { client, calls } = fakeClient({ contacts: [bob], messages: [fromBob] })
    const ui = render(<App client={client} qr={async () => '██\n██\n'} />)
    await until(ui.lastFrame, (s) => s.includes('hi there'), 'the conversation')
    const run = async (line: string, check: (s: string) => boolean, what: string) => {
      ui.stdin.write(`${line}\r`)
      return until(ui.lastFrame, check, what)
    }
    await run('/help', (s) => s.includes('/load-history') && s.includes('/verify'), 'help')
    ui.stdin.write('\u001b')
    await until(ui.lastFrame, (s) => s.includes('hi there'), 'back to the chat')
    const peers = await run('/peers', (s) => s.includes('Routes (1)'), 'peers')
    assert.match(peers, /● Bob/)
    assert.match(peers, /● 12D3KooWstranger/, 'a stranger shows by peer ID only')
    assert.match(peers, /Bob\s+1 hop/)
    await run(
      '/id',
      (s) => s.includes('talken:me-link') && s.includes('██'),
      'the id screen with its QR code',
    )
    await run('/add', (s) => s.includes('Add a contact'), 'the add-contact screen')
    await run('/add talken:cat-link Cathy', (s) => s.includes('added Cathy'), 'the contact added')
    assert.ok(calls.includes('add talken:cat-link Cathy'))
    await run(
      '/verify Bob',
      (s) => s.includes('12345 67890 12345 67890') && s.includes('Press y'),
      'the safety number',
    )
    ui.stdin.write('y')
    await until(ui.lastFrame, (s) => s.includes('✓ verified'), 'verified')
    assert.ok(calls.includes(`safety ${BOB} true`))
    await run('/chat bob', (s) => s.includes('chat with Bob'), 'back to Bob')
    await run('/receipts off', (s) => s.includes('read receipts to Bob off'), 'receipts off')
    assert.ok(calls.includes(`receipts ${BOB} false`))
    await run('/frobnicate', (s) => s.includes('unknown command /frobnicate'), 'an error line')
    await run('/chat nobody', (s) => s.includes('no contact or room "nobody"'), 'an error line')
    ui.unmount()
  })

  it('rooms: create, post, entries as they arrive, load history from peers, invite', async () => {
    const { client, calls, emit } = fakeClient({ contacts: [bob] })
    const ui = render(<App client={client} />)
    await until(ui.lastFrame, (s) => s.includes('Bob'), 'the list')
    ui.stdin.write('/room Crag\r')
    await until(ui.lastFrame, (s) => s.includes('created Crag'), 'the room')
    ui.stdin.write('west side is dry\r')
    await until(
      () => calls.join(','),
      (c) => c.includes(`post ${'ab'.repeat(32)} west side is dry`),
      'the post',
    )
    emit({
      type: 'room',
      room: 'ab'.repeat(32),
      item: {
        hash: 'h1',
        kind: 'post',
        author: 'tk1bob',
        authorName: 'Bob',
        depth: 3,
        time: 0,
        text: 'bring a rope',
      },
    })
    await until(ui.lastFrame, (s) => s.includes('Bob: bring a rope'), 'a room entry')
    ui.stdin.write('/load-history\r')
    await until(ui.lastFrame, (s) => s.includes('asked 2 member(s)'), 'sync')
    ui.stdin.write('/invite\r')
    await until(ui.lastFrame, (s) => s.includes('talken:room/invite'), 'the invitation')
    ui.unmount()
  })

  it('fits 80×24 and reflows on resize: long messages wrap, nothing spills past the screen', async () => {
    const long = Array.from({ length: 40 }, (_, i) => ({
      ...fromBob,
      id: `x${i}`,
      text: `message ${i} ${'word '.repeat(20)}`,
    }))
    const { client } = fakeClient({ contacts: [bob], messages: long })
    const ui = render(<App client={client} />)
    await until(ui.lastFrame, (s) => s.includes('message 39'), 'the last message')
    assert.ok(
      (ui.lastFrame() ?? '').split('\n').some((l) => l.length > 80),
      'wider than 80 at first (100 columns)',
    )
    Object.defineProperty(ui.stdout, 'columns', { value: 80, configurable: true })
    Object.defineProperty(ui.stdout, 'rows', { value: 24, configurable: true })
    ui.stdout.emit('resize')
    const f = await until(
      ui.lastFrame,
      (s) => s.split('\n').every((l) => l.length <= 80),
      'the reflow to 80 columns',
    )
    const lines = f.split('\n')
    assert.ok(lines.length <= 24, `${lines.length} lines`)
    assert.ok(
      lines.every((l) => l.length <= 80),
      'no line wider than 80',
    )
    assert.ok(!f.includes('message 0 '), 'older lines scrolled away')
    ui.unmount()
  })

  it('first run opens on the link to share, and Esc goes to the chat', async () => {
    const { client } = fakeClient()
    const ui = render(<App client={client} welcome />)
    await until(
      ui.lastFrame,
      (s) => s.includes('talken:me-link') && s.includes('Welcome! Share this link'),
      'the link',
    )
    ui.stdin.write('\u001b')
    await until(ui.lastFrame, (s) => s.includes('No conversation open'), 'the chat')
    ui.unmount()
  })

  it('first run asks for a name and refuses an empty one', async () => {
    let chosen: string | undefined
    const ui = render(
      <FirstRun
        onName={(n) => {
          chosen = n
        }}
      />,
    )
    await until(ui.lastFrame, (s) => s.includes('What name should your contacts see?'), 'the prompt')
    ui.stdin.write('\r')
    await until(ui.lastFrame, (s) => s.includes('A name of 1 to 64 bytes'), 'the refusal')
    ui.stdin.write('Ada\r')
    await until(
      () => chosen ?? '',
      (c) => c === 'Ada',
      'the name',
    )
    ui.unmount()
  })
})
