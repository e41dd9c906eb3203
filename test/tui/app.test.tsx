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
import { App, roomLine } from '../../src/tui/app.tsx'
import type { TuiClient, TuiEvent } from '../../src/tui/client.ts'
import { FirstRun } from '../../src/tui/run.tsx'
import { columns } from '../../src/tui/view.ts'

const ADA = 'tk1ada'
const BOB = 'tk1bob'
const tick = (ms = 30) => new Promise((r) => setTimeout(r, ms))

/** The frame once `check` holds, looking every 20 ms; fails after `ms` (a bound, not a pace). */
async function until(
  frame: () => string | undefined,
  check: (f: string) => boolean,
  what: string,
  ms = 30_000,
): Promise<string> {
  const deadline = Date.now() + ms
  for (;;) {
    const f = frame() ?? ''
    if (check(f)) return f
    if (Date.now() > deadline) throw new Error(`never saw ${what}:\n${frame()}`)
    await tick(20)
  }
}

/** Characters of `s` that a terminal would act on rather than show (newlines aside), or lone surrogates. */
function unsafe(s: string): string[] {
  const out: string[] = []
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    const pair = c >= 0xd800 && c <= 0xdbff && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff
    if (pair) i++
    else if ((c < 0x20 && c !== 0x0a) || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xdfff))
      out.push(`U+${c.toString(16).padStart(4, '0')}`)
  }
  return out
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
    roomCreate: async (name) => ({
      id: 'ab'.repeat(32),
      name,
      member: true,
      status: 'member',
      members: 1,
      entries: 1,
    }),
    roomJoin: async () => ({
      id: 'cd'.repeat(32),
      name: 'Joined',
      member: false,
      status: 'joining',
      members: 0,
      entries: 0,
    }),
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
  return { client, calls, emit: (e: TuiEvent) => emit(e), history, unread, messages }
}

/** The conversation's rows of a frame: what is right of the sidebar. */
const conversationRows = (frame: string): string[] =>
  frame
    .split('\n')
    .slice(1, -2)
    .map((row) => row.split('│')[1]?.slice(1) ?? '')

/** A row that begins a message: its time (with a date for another day) and a name, at the left edge. */
const MESSAGE_START = /^(\d{4}-\d\d-\d\d )?\d\d:\d\d [^ ]+: /

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
const fromAda: MessageView = { ...fromBob, id: 'in9', conversation: ADA, contact: 'Ada', text: 'from ada' }

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
    // Something that comes after Ada's read has come back: once it shows, a stale read that
    // was going to show would have.
    emit({
      type: 'message',
      id: 'in3',
      from: BOB,
      fromName: 'Bob',
      text: 'after the stale read',
      receivedAt: 0,
    })
    const after = await until(
      ui.lastFrame,
      (s) => s.includes('Bob: after the stale read'),
      'the later message',
    )
    assert.doesNotMatch(after, /from ada/)
    assert.match(after, /chat with Bob/)
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

  it('a message typed here that the node sends again shows once: the new copy, in its place', async () => {
    const { client, emit, messages } = fakeClient({ contacts: [bob], messages: [fromBob] })
    const ui = render(<App client={client} />)
    await until(ui.lastFrame, (s) => s.includes('Bob: hi there'), 'the conversation')
    ui.stdin.write('first words\r')
    await until(ui.lastFrame, (s) => /me: first words\s+queued/.test(s), 'the line sent')
    ui.stdin.write('and more\r')
    await until(ui.lastFrame, (s) => /me: and more\s+queued/.test(s), 'the second line')
    // Bob could not open it: the node sends it again and gives the first copy up, naming the new
    // one; the conversation no longer holds the first (the node hides it), the new one comes last.
    const first = messages.findIndex((m) => m.text === 'first words')
    const again: MessageView = { ...messages[first]!, id: 'ab'.repeat(16), state: 'sent' }
    messages.splice(first, 1)
    messages.push(again)
    emit({ type: 'state', id: again.id, conversation: BOB, state: 'sent' })
    emit({
      type: 'state',
      id: 'm1',
      conversation: BOB,
      state: 'failed',
      reason: `Bob could not open it (its first-contact prekey was taken); sent again as ${again.id}`,
    })
    const f = await until(ui.lastFrame, (s) => /me: first words\s+sent/.test(s), 'the new copy')
    assert.equal(f.match(/first words/g)?.length, 1, f)
    assert.doesNotMatch(f, /failed/)
    ui.unmount()
  })

  it('after a reload, lines that fell out of the window stay out, and the rows keep their order', async () => {
    const { client, emit, messages } = fakeClient({ contacts: [bob], messages: [fromBob] })
    // As the node reads back: the newest `limit` (200) only.
    const conversation = client.conversation
    const reads: Array<Promise<unknown>> = []
    client.conversation = (contact, limit = 200) => {
      const read = conversation(contact).then((all) => all.slice(-limit))
      reads.push(read)
      return read
    }
    const ui = render(<App client={client} />)
    await until(ui.lastFrame, (s) => s.includes('Bob: hi there'), 'the conversation')
    // 205 messages come while the chat is open: the first 6 (hi there and 5 of these) drop out of the window.
    const start = Date.now()
    for (let i = 0; i < 205; i++) {
      const m: MessageView = {
        ...fromBob,
        id: `in-${i}`,
        text: `msg ${String(i).padStart(3, '0')}`,
        at: start + i,
      }
      messages.push(m)
      emit({ type: 'message', id: m.id, from: BOB, fromName: 'Bob', text: m.text, receivedAt: m.at })
    }
    await until(ui.lastFrame, (s) => s.includes('msg 204'), 'the last message')
    // A reconnect reads the conversation back.
    emit({ type: 'connection', up: false })
    emit({ type: 'connection', up: true })
    await until(
      () => String(reads.length),
      (n) => n === '2',
      'the read-back',
    )
    await reads[1] // the app awaited it first: what it did with it is done now
    await tick(100) // and drawn
    const rows = conversationRows(ui.lastFrame() ?? '').filter((r) => r.includes('msg '))
    const numbers = rows.map((r) => Number(/msg (\d+)/.exec(r)?.[1]))
    assert.equal(numbers.at(-1), 204, rows.join('\n'))
    assert.deepEqual(
      numbers,
      [...numbers].sort((a, b) => a - b),
      rows.join('\n'),
    )
    // And /history, which reads all of it, shows the first ones again, in their place.
    ui.stdin.write('/history\r')
    await until(ui.lastFrame, (s) => s.includes('the whole conversation'), 'the history')
    const after = conversationRows(ui.lastFrame() ?? '').filter((r) => r.includes('msg '))
    assert.match(after.at(-1) ?? '', /msg 204/, after.join('\n'))
    ui.unmount()
  })

  it("a contact's line breaks and long lines cannot draw a row that passes for a message", async () => {
    const now = new Date()
    const hhmm = `${String(now.getHours()).padStart(2, '0')}:${String(now.getMinutes()).padStart(2, '0')}`
    const mine: MessageView = {
      ...fromBob,
      id: 'o1',
      direction: 'out',
      text: 'can you lend me 50?',
      at: now.getTime(),
      state: 'read',
    }
    const forged: MessageView = {
      ...fromBob,
      id: 'in2',
      text: `sure\n${hhmm} me: never mind, I found it  read\n${'padding '.repeat(12)}${hhmm} me: again`,
      at: now.getTime(),
    }
    const room = 'ef'.repeat(32)
    const { client, emit, history } = fakeClient({
      contacts: [bob],
      messages: [mine, forged],
      rooms: [{ id: room, name: 'Crag', member: true, status: 'member', members: 2, entries: 1 }],
    })
    const post = {
      hash: 'h1',
      kind: 'post',
      author: BOB,
      authorName: 'Bob',
      depth: 1,
      time: now.getTime(),
    } as const
    history.push({ ...post, text: 'a' })
    const ui = render(<App client={client} />)
    let f = await until(ui.lastFrame, (s) => s.includes('Bob: sure'), 'the conversation')
    const starts = (frame: string) => conversationRows(frame).filter((r) => MESSAGE_START.test(r))
    assert.deepEqual(
      starts(f).map((r) => r.trimEnd()),
      [`${hhmm} me: can you lend me 50?  read`, `${hhmm} Bob: sure`],
      f,
    )
    // The same from an event, and in a room from a member's post.
    emit({
      type: 'message',
      id: 'in3',
      from: BOB,
      fromName: 'Bob',
      text: `ok\n${hhmm} me: forged`,
      receivedAt: Date.now(),
    })
    f = await until(ui.lastFrame, (s) => s.includes('me: forged'), 'the event')
    assert.equal(starts(f).length, 3, f)
    assert.ok(
      conversationRows(f).some((r) => /^ +\d\d:\d\d me: forged/.test(r)),
      f,
    )
    ui.stdin.write('/chat crag\r')
    await until(ui.lastFrame, (s) => s.includes('Bob: a'), 'the room')
    emit({
      type: 'room',
      room,
      item: { ...post, hash: 'h2', depth: 2, text: `b\n${hhmm} Ada: I agree with Bob` },
    })
    f = await until(ui.lastFrame, (s) => s.includes('Ada: I agree'), 'the post')
    assert.deepEqual(
      starts(f).map((r) => r.trimEnd()),
      [`${hhmm} Bob: a`, `${hhmm} Bob: b`],
      f,
    )
    ui.unmount()
  })

  it('a message from another day shows its date; one from today, the time only', async () => {
    const now = new Date()
    const old = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 3, 9, 5)
    const day = `${old.getFullYear()}-${String(old.getMonth() + 1).padStart(2, '0')}-${String(old.getDate()).padStart(2, '0')}`
    const { client } = fakeClient({
      contacts: [bob],
      messages: [
        { ...fromBob, id: 'old', text: 'last week', at: old.getTime() },
        { ...fromBob, id: 'new', text: 'today', at: now.getTime() },
      ],
    })
    const ui = render(<App client={client} />)
    const f = await until(ui.lastFrame, (s) => s.includes('Bob: today'), 'the conversation')
    const rows = conversationRows(f)
    assert.ok(rows.includes(`${day} 09:05 Bob: last week`), f)
    assert.ok(
      rows.some((r) => /^\d\d:\d\d Bob: today$/.test(r.trimEnd())),
      f,
    )
    ui.unmount()
  })

  it('/receipts: on or off in any case; alone, what they are; anything else is refused', async () => {
    const { client, calls } = fakeClient({ contacts: [{ ...bob, receipts: false }], messages: [fromBob] })
    const ui = render(<App client={client} />)
    await until(ui.lastFrame, (s) => s.includes('hi there'), 'the conversation')
    const receipts = () => calls.filter((c) => c.startsWith('receipts '))
    ui.stdin.write('/receipts\r')
    await until(ui.lastFrame, (s) => s.includes('read receipts to Bob are off'), 'the setting')
    ui.stdin.write('/receipts OFF\r')
    await until(ui.lastFrame, (s) => s.includes('read receipts to Bob off'), 'receipts off')
    assert.deepEqual(receipts(), [`receipts ${BOB} false`])
    ui.stdin.write('/receipts On\r')
    await until(ui.lastFrame, (s) => s.includes('read receipts to Bob on'), 'receipts on')
    for (const other of ['no', 'Of', 'maybe']) {
      ui.stdin.write(`/receipts ${other}\r`)
      await until(ui.lastFrame, (s) => s.includes(`not "${other}"`), `"${other}" refused`)
    }
    assert.deepEqual(receipts(), [`receipts ${BOB} false`, `receipts ${BOB} true`])
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

  it('shows text from others with its control characters and lone surrogates made visible', async () => {
    const room = 'ef'.repeat(32)
    const { client, emit, history } = fakeClient({
      contacts: [{ ...bob, name: 'Bob\u001b]0;owned\u0007' }],
      messages: [{ ...fromBob, text: 'hi there\u001b[2J\u009b31m \ud83d' }],
      rooms: [{ id: room, name: 'Crag\u001b[5m', member: true, status: 'member', members: 2, entries: 1 }],
    })
    history.push({
      hash: 'h1',
      kind: 'post',
      author: BOB,
      authorName: 'Bob',
      depth: 1,
      time: 0,
      text: 'a\u001bc',
    })
    client.addContact = async () => {
      throw new Error('no such link\u001b[31m')
    }
    const ui = render(<App client={client} />)
    let f = await until(ui.lastFrame, (s) => s.includes('hi there'), 'the conversation')
    assert.deepEqual(unsafe(f), [], f)
    assert.match(f, /hi there\ufffd\[2J\ufffd31m \ufffd/)
    assert.match(f, /Bob\ufffd\]0;owned\ufffd/)
    emit({ type: 'message', id: 'in2', from: BOB, fromName: 'Bob', text: 'x\u001b[Hy', receivedAt: 0 })
    f = await until(ui.lastFrame, (s) => s.includes('x\ufffd[Hy'), 'the new message')
    assert.deepEqual(unsafe(f), [], f)
    ui.stdin.write('/add talken:nope\r')
    f = await until(ui.lastFrame, (s) => s.includes('! no such link\ufffd[31m'), 'the error')
    assert.deepEqual(unsafe(f), [], f)
    ui.stdin.write('/chat crag\r')
    f = await until(ui.lastFrame, (s) => s.includes('Bob: a\ufffdc'), 'the room post')
    assert.deepEqual(unsafe(f), [], f)
    emit({
      type: 'room',
      room,
      item: {
        hash: 'h2',
        kind: 'post',
        author: BOB,
        authorName: 'Bob',
        depth: 2,
        time: 0,
        text: 'b\u0085\u009dz',
      },
    })
    f = await until(ui.lastFrame, (s) => s.includes('Bob: b\ufffd\ufffdz'), 'the new post')
    assert.deepEqual(unsafe(f), [], f)
    // Names in a notice, on the peers screen and the safety number screen.
    client.roomMembers = async () => [{ id: BOB, name: 'Eve\u001b[2J', role: 'member', self: false }]
    ui.stdin.write('/members\r')
    f = await until(ui.lastFrame, (s) => s.includes('Eve\ufffd[2J'), 'the members')
    assert.deepEqual(unsafe(f), [], f)
    client.peers = async () => [{ peerId: '12D3KooWx', addresses: [], mesh: true, contact: 'Pat\u009b2J' }]
    client.routes = async () => [
      { destination: 'aa'.repeat(16), contact: 'Pat\u009b2J', nextHop: '12D3KooWx', metric: 1 },
    ]
    ui.stdin.write('/peers\r')
    f = await until(ui.lastFrame, (s) => s.includes('Routes (1)') && s.includes('Pat\ufffd2J'), 'the peers')
    assert.deepEqual(unsafe(f), [], f)
    const safety = client.safetyNumber
    client.safetyNumber = async (contact, confirm) => ({
      ...(await safety(contact, confirm)),
      name: 'Bob\u0007',
    })
    ui.stdin.write('/verify bob\r')
    f = await until(ui.lastFrame, (s) => s.includes('Safety number with Bob\ufffd'), 'the safety number')
    assert.deepEqual(unsafe(f), [], f)
    ui.unmount()
  })

  it('wraps wide text by screen columns: a long CJK message shows whole with its state, names fit', async () => {
    const han = '漢'.repeat(50)
    const mine: MessageView = { ...fromBob, id: 'out1', direction: 'out', text: han, state: 'delivered' }
    const { client } = fakeClient({
      contacts: [
        { ...bob, name: '鲍'.repeat(12), unread: 0 },
        { ...ada, name: '😀'.repeat(12), unread: 3 },
      ],
      messages: [{ ...mine, conversation: BOB }],
    })
    const ui = render(<App client={client} />)
    const f = await until(ui.lastFrame, (s) => s.includes('漢'), 'the conversation')
    assert.equal(f.replace(/[^漢]/g, ''), han, `every character shows:\n${f}`)
    assert.match(f, /漢\s+delivered/, 'the state after the last line')
    assert.match(f, /😀\s+3\s*│/, 'the unread count beside a wide name')
    for (const line of f.split('\n')) assert.ok(columns(line) <= 100, `${columns(line)} columns: ${line}`)
    ui.unmount()
  })

  it('a sent message shows in the chat it was sent in, not in one opened before the reply came', async () => {
    const { client } = fakeClient({ contacts: [bob, { ...ada, unread: 0 }], messages: [fromBob, fromAda] })
    // The first send's reply waits until let go.
    const send = client.send
    const held: Array<() => void> = []
    let firstReply: Promise<unknown> | undefined
    client.send = (contact, text) => {
      if (firstReply) return send(contact, text)
      const reply = send(contact, text).then(
        (sent) => new Promise<typeof sent>((resolve) => held.push(() => resolve(sent))),
      )
      firstReply = reply
      return reply
    }
    const ui = render(<App client={client} />)
    await until(ui.lastFrame, (s) => s.includes('Bob: hi there'), "Bob's conversation")
    ui.stdin.write('for bob\r')
    await until(
      () => String(held.length),
      (n) => n === '1',
      'the send',
    )
    ui.stdin.write('\t')
    await until(ui.lastFrame, (s) => s.includes('Ada: from ada'), "Ada's conversation")
    held[0]!()
    // The app awaits this same reply, and was first to: its handling of it has run after this.
    await firstReply
    ui.stdin.write('for ada\r')
    const f = await until(ui.lastFrame, (s) => s.includes('me: for ada'), 'the second send')
    assert.doesNotMatch(f, /for bob/)
    ui.stdin.write('\t')
    await until(
      ui.lastFrame,
      (s) => s.includes('me: for bob') && !s.includes('for ada'),
      'back in Bob’s chat',
    )
    ui.unmount()
  })

  it('a message for the open chat behind another screen stays unread until the chat is shown', async () => {
    const { client, calls, emit, unread } = fakeClient({ contacts: [bob], messages: [fromBob] })
    const reads: Array<Promise<unknown>> = []
    const conversation = client.conversation
    client.conversation = (contact, limit) => {
      const read = conversation(contact, limit)
      reads.push(read)
      return read
    }
    const markedRead = () => calls.filter((c) => c === `read ${BOB}`).length
    const ui = render(<App client={client} />)
    // The peers screen polls on a timer: unmount even when a check fails, or the run never ends.
    try {
      await until(ui.lastFrame, (s) => s.includes('Bob: hi there'), 'the conversation')
      await until(
        () => String(markedRead()),
        (n) => n === '1',
        'the conversation marked read',
      )
      ui.stdin.write('/peers\r')
      await until(ui.lastFrame, (s) => s.includes('Routes (1)'), 'the peers screen')
      // A reconnect reads the open conversation back (an unread message in it) behind the screen.
      emit({ type: 'connection', up: true })
      await until(
        () => String(reads.length),
        (n) => n === '2',
        'the read-back',
      )
      await reads[1] // the app awaited it first: what it did with it is done now
      unread(BOB)
      emit({ type: 'message', id: 'in2', from: BOB, fromName: 'Bob', text: 'while away', receivedAt: 0 })
      await until(ui.lastFrame, (s) => /Bob\s+1\s*│/.test(s), "an unread count on Bob's chat")
      assert.equal(markedRead(), 1, 'not read while not shown')
      ui.stdin.write('\u001b')
      await until(
        ui.lastFrame,
        (s) => s.includes('Bob: while away') && !/Bob\s+1\s*│/.test(s),
        'the chat, read',
      )
      assert.equal(markedRead(), 2)
    } finally {
      ui.unmount()
    }
  })

  it('finds who we are once the node is reachable, when it was not at start', async () => {
    const { client, emit } = fakeClient({ contacts: [bob], messages: [fromBob] })
    const identity = client.identity
    let tries = 0
    client.identity = async () => {
      tries++
      if (tries === 1) throw new Error('the node is not running')
      return identity()
    }
    const ui = render(<App client={client} />)
    await until(ui.lastFrame, (s) => s.includes('! the node is not running'), 'the error')
    emit({ type: 'connection', up: false })
    emit({ type: 'connection', up: true })
    const f = await until(
      ui.lastFrame,
      (s) => s.includes('Talken · Me') && s.includes('Bob: hi there'),
      'our name and the latest conversation',
    )
    assert.doesNotMatch(f, /the node is not running/)
    ui.unmount()
  })

  it('rooms: ours by our ID, not by the name "you" a contact may have', async () => {
    const post = (hash: string, author: string): RoomHistoryItem => ({
      hash,
      kind: 'post',
      author,
      authorName: 'you',
      depth: 1,
      time: 0,
      text: hash,
    })
    assert.equal(roomLine(post('h1', 'tk1me'), 'tk1me').mine, true)
    assert.equal(roomLine(post('h2', 'tk1you'), 'tk1me').mine, false)
    const room = 'ef'.repeat(32)
    const { client, emit } = fakeClient({
      contacts: [bob],
      messages: [fromBob],
      rooms: [{ id: room, name: 'Crag', member: true, status: 'member', members: 3, entries: 1 }],
    })
    const ui = render(<App client={client} />)
    await until(ui.lastFrame, (s) => s.includes('Talken · Me') && s.includes('hi there'), 'the conversation')
    // Ours (not counted), a contact called "you", ours again, Bob: two unread in the room.
    emit({ type: 'room', room, item: post('h1', 'tk1me') })
    emit({ type: 'room', room, item: post('h2', 'tk1you') })
    emit({ type: 'room', room, item: post('h3', 'tk1me') })
    emit({ type: 'room', room, item: { ...post('h4', BOB), authorName: 'Bob' } })
    await until(ui.lastFrame, (s) => /#Crag\s+2\s*│/.test(s), 'two unread in the room')
    ui.unmount()
  })

  it('the input line shows its end, where the cursor is, when wider than the screen', async () => {
    const { client } = fakeClient({ contacts: [bob], messages: [fromBob] })
    const ui = render(<App client={client} />)
    await until(ui.lastFrame, (s) => s.includes('hi there'), 'the conversation')
    const inputLine = (s: string) => s.split('\n').find((l) => l.startsWith('>')) ?? ''
    ui.stdin.write(`START${'x'.repeat(150)}END`)
    let f = await until(ui.lastFrame, (s) => inputLine(s).includes('xEND'), 'the end of an ASCII line')
    assert.doesNotMatch(f, /START/)
    ui.stdin.write('\u0015') // Ctrl-U
    await until(ui.lastFrame, (s) => inputLine(s).trim() === '>', 'an empty line')
    // 60 wide characters are 120 columns: measured in columns, the end still shows.
    ui.stdin.write(`${'漢'.repeat(60)}END`)
    f = await until(ui.lastFrame, (s) => inputLine(s).includes('漢END'), 'the end of a CJK line')
    assert.ok(columns(inputLine(f)) <= 100, inputLine(f))
    ui.stdin.write('\u0015')
    await until(ui.lastFrame, (s) => inputLine(s).trim() === '>', 'an empty line')
    // Backspace takes a whole emoji, not half of it.
    ui.stdin.write('😀')
    await until(ui.lastFrame, (s) => inputLine(s).includes('😀'), 'the emoji')
    ui.stdin.write('\u007f')
    ui.stdin.write('ok')
    f = await until(ui.lastFrame, (s) => inputLine(s).includes('ok'), 'the next text')
    assert.equal(inputLine(f).trimEnd(), '> ok', 'nothing of the emoji left')
    ui.unmount()
  })

  it('a message event that comes after a read-back already holding it shows once', async () => {
    const { client, emit } = fakeClient({ contacts: [bob], messages: [fromBob] })
    const ui = render(<App client={client} />)
    await until(ui.lastFrame, (s) => s.includes('Bob: hi there'), 'the conversation')
    emit({ type: 'message', id: 'in1', from: BOB, fromName: 'Bob', text: 'hi there', receivedAt: 0 })
    emit({ type: 'message', id: 'in2', from: BOB, fromName: 'Bob', text: 'and then', receivedAt: 0 })
    const f = await until(ui.lastFrame, (s) => s.includes('Bob: and then'), 'the next message')
    assert.equal(f.match(/hi there/g)?.length, 1, f)
    ui.unmount()
  })

  it('a message sent from another client shows in the open conversation once, as ours', async () => {
    const { client, emit, messages } = fakeClient({
      contacts: [bob, { ...ada, unread: 0 }],
      messages: [fromBob],
    })
    const ui = render(<App client={client} />)
    await until(ui.lastFrame, (s) => s.includes('Bob: hi there'), 'the conversation')
    // `talken send Bob …` in another terminal: the node stores it, and the follow announces it.
    const elsewhere: MessageView = {
      id: 'out1',
      conversation: BOB,
      contact: 'Bob',
      direction: 'out',
      text: 'from my other terminal',
      at: 1,
      state: 'queued',
    }
    messages.push(elsewhere)
    emit({ type: 'outgoing', ...elsewhere })
    await until(
      ui.lastFrame,
      (s) => /me: from my other terminal\s+queued/.test(s),
      'the message sent elsewhere',
    )
    emit({ type: 'state', id: 'out1', conversation: BOB, state: 'sent' })
    // Announced again, or read back with the conversation (the node came back): still once.
    emit({ type: 'outgoing', ...elsewhere })
    emit({ type: 'connection', up: false })
    emit({ type: 'connection', up: true })
    // One sent to a contact whose conversation is not open shows in that one only.
    emit({ type: 'outgoing', ...elsewhere, id: 'out2', conversation: ADA, contact: 'Ada', text: 'to Ada' })
    emit({ type: 'message', id: 'in2', from: BOB, fromName: 'Bob', text: 'and then', receivedAt: 2 })
    const f = await until(
      ui.lastFrame,
      (s) => s.includes('Bob: and then') && /from my other terminal\s+sent/.test(s),
      'the message after, and the state',
    )
    assert.equal(f.match(/from my other terminal/g)?.length, 1, f)
    assert.doesNotMatch(f, /to Ada/)
    ui.unmount()
  })

  it('a message typed here shows once, whether its announcement comes before the reply to the send or after', async () => {
    const { client, emit, messages } = fakeClient({ contacts: [bob], messages: [fromBob] })
    // The follow is a connection of its own: the node's announcement of the message may beat the
    // reply that names it, or come after it.
    const send = client.send
    let announceFirst = true
    client.send = async (contact, text) => {
      const sent = await send(contact, text)
      const announce = () => emit({ type: 'outgoing', ...messages.find((m) => m.id === sent.id)! })
      if (announceFirst) {
        announce()
        await tick()
      } else setTimeout(announce, 50)
      return sent
    }
    const ui = render(<App client={client} />)
    await until(ui.lastFrame, (s) => s.includes('Bob: hi there'), 'the conversation')
    ui.stdin.write('announced first\r')
    await until(ui.lastFrame, (s) => /me: announced first\s+queued/.test(s), 'the first line')
    announceFirst = false
    ui.stdin.write('announced after\r')
    await until(ui.lastFrame, (s) => /me: announced after\s+queued/.test(s), 'the second line')
    await tick(150)
    emit({ type: 'message', id: 'in2', from: BOB, fromName: 'Bob', text: 'and then', receivedAt: 2 })
    const f = await until(ui.lastFrame, (s) => s.includes('Bob: and then'), 'the message after')
    assert.equal(f.match(/announced first/g)?.length, 1, f)
    assert.equal(f.match(/announced after/g)?.length, 1, f)
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
