/**
 * The terminal client (ink): contacts and rooms on the left with unread counts, the conversation
 * on the right with times and each message's delivery state as it changes, an input line with
 * slash commands, and screens for peers and routes, your ID and QR code, adding a contact, and
 * safety numbers. It talks to the node only through a {@link TuiClient}.
 */
import { Box, type Key, Text, useApp, useInput, useStdout } from 'ink'
import { useCallback, useEffect, useRef, useState } from 'react'
import { resentAs } from '../node/direct-messages.ts'
import type { ContactSummary } from '../node/inbox.ts'
import type { PeerInfo, RouteInfo } from '../node/node.ts'
import type { RoomHistoryItem, RoomSummary } from '../node/rooms.ts'
import type { DeliveryState } from '../store/store.ts'
import type { TuiClient, TuiEvent } from './client.ts'
import {
  COMMANDS,
  clock,
  cut,
  dropLast,
  hangingWrap,
  laterState,
  pad,
  parseInput,
  pick,
  printable,
  receiptsChoice,
  remember,
  stateLabel,
  tail,
  typed,
} from './view.ts'

/** The open conversation. */
export type Chat =
  | { readonly kind: 'contact'; readonly id: string; readonly name: string }
  | { readonly kind: 'room'; readonly id: string; readonly name: string }

type Screen = 'chat' | 'peers' | 'id' | 'verify' | 'help' | 'add'

/** One message or room entry as shown. */
export interface Line {
  readonly id: string
  readonly at: number
  readonly who: string
  readonly text: string
  readonly mine: boolean
  readonly state?: DeliveryState | undefined
  /** The conversation an event or a send added this line to (lines read back carry none). */
  readonly chat?: string
  /** For a line an event or a send added: when, in the order of such lines (1, 2, …). */
  readonly seq?: number
}

export interface AppProps {
  readonly client: TuiClient
  /** Renders a QR code for a link (injected: tests skip it). */
  readonly qr?: (text: string) => Promise<string>
  /** Called when the user quits. */
  readonly onExit?: () => void
  /** First run: open on the screen with the link to share. */
  readonly welcome?: boolean
}

const SIDEBAR = 22

/**
 * A conversation read back (`read`, in the node's order) with what came while it was read: the
 * lines that events or sends added to `chat` after the read was asked for (`seq` above `since`)
 * and that it did not return, each placed by its time; and states newer than the read. A line
 * added before the read was asked for and not returned by it is left out: it is older than the
 * read's window (the newest 200 messages), or a message the node no longer shows (one given up
 * because it was sent again, as are those in `resent`).
 */
function readBack(
  read: readonly Line[],
  shown: readonly Line[],
  chat: string,
  since: number,
  states: ReadonlyMap<string, DeliveryState>,
  resent: ReadonlyMap<string, string>,
): Line[] {
  const ids = new Set(read.map((l) => l.id))
  let lines = read
    .filter((l) => !resent.has(l.id))
    .map((l) => (l.state === undefined ? l : { ...l, state: laterState(l.state, states.get(l.id)) }))
  for (const l of shown) {
    if (l.chat === chat && (l.seq ?? 0) > since && !ids.has(l.id) && !resent.has(l.id)) {
      lines = placed(lines, l)
    }
  }
  return lines
}

/**
 * `lines` with `line` after the last of them that is not newer: at the end, unless it comes late
 * (a reply to a send that came after a message, say). Times are the node's and this machine's.
 */
function placed(lines: readonly Line[], line: Line): Line[] {
  let at = lines.length
  while (at > 0 && lines[at - 1]!.at > line.at) at--
  return [...lines.slice(0, at), line, ...lines.slice(at)]
}

const sameChat = (a: Chat | undefined, b: Chat) => a?.kind === b.kind && a.id === b.id

/**
 * A room entry as a conversation line (posts as text, membership changes as a note); ours when
 * its author is our own ID `me`, not by the name "you", which the node gives us but a contact may
 * also be called.
 */
export function roomLine(h: RoomHistoryItem, me: string | undefined): Line {
  return {
    id: h.hash,
    at: h.time,
    who: h.authorName ?? h.author.slice(0, 10),
    text:
      h.kind === 'post'
        ? (h.text ?? '(no key for this post)')
        : `· ${h.kind}${h.subject ? ` ${h.subject.slice(0, 10)}` : ''}`,
    mine: me !== undefined && h.author === me,
  }
}

export function App({ client, qr, onExit, welcome }: AppProps) {
  const { exit } = useApp()
  const { stdout } = useStdout()
  const [size, setSize] = useState({ columns: stdout?.columns ?? 80, rows: stdout?.rows ?? 24 })
  const [me, setMe] = useState<{ id: string; name: string; link: string }>()
  const [contacts, setContacts] = useState<ContactSummary[]>([])
  const [rooms, setRooms] = useState<RoomSummary[]>([])
  const [roomUnread, setRoomUnread] = useState<Record<string, number>>({})
  const [chat, setChat] = useState<Chat>()
  const [lines, setLines] = useState<Line[]>([])
  const [input, setInputState] = useState('')
  // Keys can arrive faster than renders: the line being typed lives in a ref, the state mirrors it.
  const inputRef = useRef('')
  const setInput = useCallback((next: string | ((s: string) => string)) => {
    inputRef.current = typeof next === 'function' ? next(inputRef.current) : next
    setInputState(inputRef.current)
  }, [])
  const [notice, setNotice] = useState(
    welcome
      ? 'Welcome! Share this link so people can add you. Esc: the chat · /help: commands'
      : 'Type /help for commands.',
  )
  const [screen, setScreenState] = useState<Screen>(welcome ? 'id' : 'chat')
  // Events and reads check what is on screen now, not at their closure's render: a ref, set
  // together with the state.
  const screenRef = useRef<Screen>(screen)
  const setScreen = useCallback((next: Screen) => {
    screenRef.current = next
    setScreenState(next)
  }, [])
  const [connected, setConnected] = useState(true)
  const [peers, setPeers] = useState<{ peers: PeerInfo[]; routes: RouteInfo[] }>({ peers: [], routes: [] })
  const [safety, setSafety] = useState<{
    id: string
    name: string
    safetyNumber: string
    verified: boolean
  }>()
  const [qrText, setQrText] = useState('')
  const chatRef = useRef<Chat | undefined>(undefined)
  chatRef.current = chat
  const meRef = useRef<{ id: string; name: string; link: string } | undefined>(undefined)
  // Contacts whose conversation is open but was not on screen when messages came: they are marked
  // read (which sends read receipts) only once the chat is shown.
  const unseen = useRef(new Set<string>())
  // The latest state events of our messages: events come on their own connection, so one can
  // arrive before the reply to the send that made its message (newest 64 kept).
  const statesSeen = useRef(new Map<string, DeliveryState>())
  // Messages the node gave up because it sent them again, and the ID of the copy sent (newest 64).
  const resent = useRef(new Map<string, string>())
  // How many lines events and sends have added (each line's `seq`): a read-back keeps only those
  // added after it was asked for.
  const added = useRef(0)

  const fail = useCallback((err: unknown) => setNotice(`! ${(err as Error).message}`), [])

  useEffect(() => {
    if (!stdout) return
    const onResize = () => setSize({ columns: stdout.columns, rows: stdout.rows })
    stdout.on('resize', onResize)
    return () => {
      stdout.off('resize', onResize)
    }
  }, [stdout])

  const refresh = useCallback(async () => {
    const [c, r] = await Promise.all([client.contacts(), client.rooms()])
    setContacts(c)
    setRooms(r)
    return { c, r }
  }, [client])

  const load = useCallback(
    async (target: Chat, limit = 200) => {
      const since = added.current
      if (target.kind === 'contact') {
        const messages = await client.conversation(target.id, limit)
        // Another conversation opened while this one was read: its own read shows it.
        if (!sameChat(chatRef.current, target)) return
        const read = messages.map((m) => ({
          id: m.id,
          at: m.at,
          who: m.direction === 'out' ? 'me' : target.name,
          text: m.text,
          mine: m.direction === 'out',
          state: m.direction === 'out' ? m.state : undefined,
        }))
        setLines((shown) => readBack(read, shown, target.id, since, statesSeen.current, resent.current))
        if (messages.some((m) => m.direction === 'in' && m.state === 'received')) {
          // Read back behind another screen (a reconnect, say): not read until it is shown.
          if (screenRef.current !== 'chat') {
            unseen.current.add(target.id)
            return
          }
          await client.markRead(target.id)
          setContacts(await client.contacts())
        }
      } else {
        const history = await client.roomHistory(target.id)
        if (!sameChat(chatRef.current, target)) return
        const mine = meRef.current?.id
        setLines((shown) =>
          readBack(
            history.map((h) => roomLine(h, mine)),
            shown,
            target.id,
            since,
            statesSeen.current,
            resent.current,
          ),
        )
        setRoomUnread((u) => ({ ...u, [target.id]: 0 }))
      }
    },
    [client],
  )

  const open = useCallback(
    (target: Chat) => {
      chatRef.current = target // now, not at the next render: the read below checks it
      setChat(target)
      setScreen('chat')
      load(target).catch(fail)
    },
    [load, fail, setScreen],
  )

  // Back on the chat screen: what came for the open contact meanwhile is read now.
  useEffect(() => {
    if (screen !== 'chat' || chat?.kind !== 'contact' || !unseen.current.has(chat.id)) return
    unseen.current.delete(chat.id)
    client
      .markRead(chat.id)
      .then(() => client.contacts())
      .then(setContacts)
      .catch(fail)
  }, [screen, chat, client, fail])

  const mounted = useRef(true)
  useEffect(() => {
    mounted.current = true
    return () => {
      mounted.current = false
    }
  }, [])

  // First load: who we are, the lists, the most recent conversation. Run at start and again each
  // time the node comes up until it has succeeded once (the node may be unreachable at start);
  // runs are chained so that two never overlap.
  const loaded = useRef(false)
  const firstLoading = useRef<Promise<void>>(Promise.resolve())
  const firstLoad = useCallback((): Promise<void> => {
    const run = async () => {
      if (loaded.current || !mounted.current) return
      const identity = await client.identity()
      meRef.current = identity
      setMe(identity)
      if (welcome) setQrText(identity.link)
      const { c } = await refresh()
      loaded.current = true
      // An error of an earlier try (the node was not running) is stale now.
      setNotice((n) => (n.startsWith('! ') ? 'Type /help for commands.' : n))
      if (!mounted.current || chatRef.current) return
      const latest = [...c].filter((x) => x.lastAt > 0).sort((a, b) => b.lastAt - a.lastAt)[0]
      if (welcome) return
      if (latest) open({ kind: 'contact', id: latest.id, name: latest.name })
      else if (c.length > 0)
        setNotice('/chat NAME opens a conversation (Tab goes through them); /help lists commands.')
      else setNotice('No contacts yet: /id shows your link to share, /add LINK adds someone.')
    }
    const next = firstLoading.current.then(run, run)
    firstLoading.current = next.catch(() => {})
    return next
  }, [client, refresh, open, welcome])

  useEffect(() => {
    firstLoad().catch(fail)
  }, [firstLoad, fail])

  /**
   * Shows a message of ours in the open conversation, once: the reply to our own send and the
   * daemon's `outgoing` event both come, in either order. Its state is the later of the one given
   * and any seen since.
   */
  const showMine = useCallback(
    (m: { id: string; at: number; text: string; state: DeliveryState; chat: string }) => {
      const line: Line = {
        ...m,
        who: 'me',
        mine: true,
        state: laterState(m.state, statesSeen.current.get(m.id)),
        seq: ++added.current,
      }
      setLines((l) => (l.some((x) => x.id === m.id) ? l : placed(l, line)))
    },
    [],
  )

  // The node's events.
  useEffect(() => {
    const onEvent = (e: TuiEvent) => {
      const current = chatRef.current
      switch (e.type) {
        case 'connection':
          setConnected(e.up)
          if (e.up && !loaded.current) firstLoad().catch(fail)
          else if (e.up) {
            refresh().catch(() => {})
            if (current) load(current).catch(() => {})
          }
          return
        case 'message':
          if (current?.kind === 'contact' && current.id === e.from) {
            const line: Line = {
              id: e.id,
              at: e.receivedAt,
              who: current.name,
              text: e.text,
              mine: false,
              chat: e.from,
              seq: ++added.current,
            }
            // A read-back may already hold it (the event came after the read): once only.
            setLines((l) => (l.some((x) => x.id === e.id) ? l : placed(l, line)))
            if (screenRef.current === 'chat') {
              client.markRead(e.from).catch(() => {})
              return
            }
            // Open, but behind another screen: unread until the chat is shown again.
            unseen.current.add(e.from)
          }
          setContacts((cs) =>
            cs.map((c) => (c.id === e.from ? { ...c, unread: c.unread + 1, lastAt: e.receivedAt } : c)),
          )
          refresh().catch(() => {})
          return
        case 'outgoing': {
          // One of ours, sent here or from another client (`talken send`): shown once, whichever
          // of this event and the reply to our own send comes first. A copy given up already
          // (sent again) is not: the new copy shows in its place.
          if (resent.current.has(e.id)) return
          if (current?.kind === 'contact' && current.id === e.conversation) {
            showMine({ id: e.id, at: e.at, text: e.text, state: e.state, chat: e.conversation })
          }
          setContacts((cs) =>
            cs.map((c) => (c.id === e.conversation ? { ...c, lastAt: Math.max(c.lastAt, e.at) } : c)),
          )
          return
        }
        case 'state': {
          // A message given up because the node sent it again (its recipient could not open it)
          // is not shown: the new copy is, in its place.
          const again = e.state === 'failed' ? resentAs(e.reason) : undefined
          if (again !== undefined) remember(resent.current, e.id, again)
          if (current?.kind === 'contact' && current.id === e.conversation) {
            remember(statesSeen.current, e.id, e.state)
            if (again !== undefined) setLines((l) => l.filter((x) => x.id !== e.id))
            // A message given up: the conversation read back shows the copy sent again, if any.
            if (e.state === 'failed') load(current).catch(() => {})
            else setLines((l) => l.map((x) => (x.id === e.id ? { ...x, state: e.state } : x)))
          }
          return
        }
        case 'room':
          if (current?.kind === 'room' && current.id === e.room) {
            const h = e.item
            const line = { ...roomLine(h, meRef.current?.id), chat: e.room, seq: ++added.current }
            setLines((l) => (l.some((x) => x.id === h.hash) ? l : placed(l, line)))
          } else if (e.item.author !== meRef.current?.id) {
            setRoomUnread((u) => ({ ...u, [e.room]: (u[e.room] ?? 0) + 1 }))
          }
          return
      }
    }
    return client.follow(onEvent)
  }, [client, refresh, load, firstLoad, fail, showMine])

  // The peers screen refreshes itself while it is open.
  useEffect(() => {
    if (screen !== 'peers') return
    const tick = () => {
      Promise.all([client.peers(), client.routes()])
        .then(([p, r]) => setPeers({ peers: p, routes: r }))
        .catch(fail)
    }
    tick()
    const timer = setInterval(tick, 2000)
    return () => clearInterval(timer)
  }, [screen, client, fail])

  const quit = useCallback(() => {
    onExit?.()
    exit()
  }, [exit, onExit])

  const conversations: Chat[] = [
    ...contacts.map((c) => ({ kind: 'contact' as const, id: c.id, name: c.name })),
    ...rooms.map((r) => ({ kind: 'room' as const, id: r.id, name: r.name })),
  ]

  const command = async (name: string, args: string) => {
    switch (name) {
      case 'chat': {
        const target =
          pick(
            contacts.map((c) => ({ ...c, kind: 'contact' as const })),
            args,
          ) ??
          pick(
            rooms.map((r) => ({ ...r, kind: 'room' as const })),
            args,
          )
        if (target === undefined)
          throw new Error(`no contact or room "${args}" (one name, or the start of one)`)
        open({ kind: target.kind, id: target.id, name: target.name })
        setNotice(`${target.kind === 'room' ? 'room' : 'chat with'} ${target.name}`)
        return
      }
      case 'add': {
        if (args === '') {
          setScreen('add')
          return
        }
        const [link, ...rest] = args.split(/\s+/)
        if (link!.toLowerCase().startsWith('talken:room/')) {
          const room = await client.roomJoin(link!)
          await refresh()
          setNotice(`asked to join ${room.name}: you are in once the inviter's node answers`)
          return
        }
        const added = await client.addContact(link!, rest.join(' ') || undefined)
        await refresh()
        open({ kind: 'contact', id: added.id, name: added.name })
        setNotice(`${added.outcome} ${added.name}: compare safety numbers with /verify`)
        return
      }
      case 'history':
        if (chat) await load(chat, 2000)
        setNotice('the whole conversation held here')
        return
      case 'load-history': {
        if (chat?.kind !== 'room')
          throw new Error('/load-history is for rooms: a direct chat lives on the two devices only')
        const asked = await client.roomSync(chat.id)
        setNotice(`asked ${asked} member(s) for what is missing`)
        return
      }
      case 'verify': {
        const target = args !== '' ? pick(contacts, args) : chat?.kind === 'contact' ? chat : undefined
        if (target === undefined) throw new Error('/verify NAME: which contact?')
        setSafety(await client.safetyNumber(target.id))
        setScreen('verify')
        return
      }
      case 'receipts': {
        if (chat?.kind !== 'contact')
          throw new Error('/receipts on|off applies to a contact: open one with /chat')
        const choice = receiptsChoice(args)
        if (choice === undefined)
          throw new Error(`/receipts on, /receipts off, or /receipts alone: not "${args}"`)
        if (choice === 'show') {
          const on = contacts.find((c) => c.id === chat.id)?.receipts
          if (on === undefined) throw new Error('/receipts on|off: read receipts to this contact')
          setNotice(`read receipts to ${chat.name} are ${on ? 'on' : 'off'}: /receipts on|off changes that`)
          return
        }
        const on = choice === 'on'
        await client.setReceipts(chat.id, on)
        await refresh()
        setNotice(`read receipts to ${chat.name} ${on ? 'on' : 'off'}`)
        return
      }
      case 'room': {
        if (args === '') throw new Error('/room NAME creates a room')
        const room = await client.roomCreate(args)
        await refresh()
        open({ kind: 'room', id: room.id, name: room.name })
        setNotice(`created ${room.name}: /invite makes a link to share`)
        return
      }
      case 'invite': {
        if (chat?.kind !== 'room') throw new Error('/invite works in a room')
        const { link } = await client.roomInvite(chat.id)
        setQrText(link)
        setScreen('id')
        setNotice(`invitation to ${chat.name}, valid 7 days`)
        return
      }
      case 'members': {
        if (chat?.kind !== 'room') throw new Error('/members works in a room')
        const members = await client.roomMembers(chat.id)
        setNotice(
          members
            .map((m) => `${m.name ?? m.id.slice(0, 10)}${m.role === 'admin' ? ' (admin)' : ''}`)
            .join(', '),
        )
        return
      }
      case 'peers':
        setScreen('peers')
        return
      case 'id':
        setQrText(me?.link ?? '')
        setScreen('id')
        return
      case 'help':
        setScreen('help')
        return
      case 'exit':
      case 'quit':
        quit()
        return
      default:
        throw new Error(`unknown command /${name}: /help lists them`)
    }
  }

  const submit = async (line: string) => {
    const parsed = parseInput(line)
    if (parsed.kind === 'empty') return
    if (parsed.kind === 'command') {
      await command(parsed.name, parsed.args)
      return
    }
    const target = chat
    if (target === undefined) throw new Error('no conversation open: /chat NAME, or /add LINK first')
    if (target.kind === 'room') {
      await client.roomPost(target.id, parsed.text)
      return
    }
    const sent = await client.send(target.id, parsed.text)
    // Another conversation opened while the send was under way: the line belongs to the one it
    // was sent in (whose read-back shows it when it is opened again), not to the one open now.
    // Sent again by the node already: the read-back that came with it shows the new copy.
    if (!sameChat(chatRef.current, target) || resent.current.has(sent.id)) return
    showMine({ id: sent.id, at: Date.now(), text: parsed.text, state: sent.state, chat: target.id })
  }

  // ink registers its input handler in an effect, after the frame is drawn: a key pressed right
  // after a frame could reach the previous handler. The registered one calls the latest.
  const onKey = (ch: string, key: Key) => {
    if (key.ctrl && ch === 'c') {
      quit()
      return
    }
    if (key.escape) {
      setScreen('chat')
      return
    }
    if (screen === 'verify' && ch === 'y' && safety && !safety.verified) {
      client
        .safetyNumber(safety.id, true)
        .then((s) => {
          setSafety(s)
          setNotice(`${s.name} marked as verified`)
          return refresh()
        })
        .catch(fail)
      return
    }
    if (key.tab && conversations.length > 0) {
      const at = conversations.findIndex((c) => c.kind === chat?.kind && c.id === chat?.id)
      const step = key.shift ? -1 : 1
      open(conversations[(at + step + conversations.length) % conversations.length]!)
      return
    }
    if (key.return) {
      const line = inputRef.current
      setInput('')
      submit(line).catch(fail)
      return
    }
    if (key.backspace || key.delete) {
      setInput(dropLast)
      return
    }
    if (key.ctrl && ch === 'u') {
      setInput('')
      return
    }
    if (ch && !key.ctrl && !key.meta && !key.upArrow && !key.downArrow && !key.leftArrow && !key.rightArrow) {
      const { text, submit: enter } = typed(ch)
      if (!enter) {
        setInput((s) => s + text)
        return
      }
      const line = inputRef.current + text
      setInput('')
      submit(line).catch(fail)
    }
  }
  const onKeyRef = useRef(onKey)
  onKeyRef.current = onKey
  useInput((ch, key) => onKeyRef.current(ch, key))

  const width = Math.max(40, size.columns)
  const height = Math.max(12, size.rows)
  const bodyRows = height - 4
  const mainWidth = width - SIDEBAR - 1

  return (
    <Box flexDirection="column" width={width} height={height}>
      <Header me={me} connected={connected} chat={chat} width={width} />
      <Box flexDirection="row" height={bodyRows}>
        <Sidebar contacts={contacts} rooms={rooms} roomUnread={roomUnread} chat={chat} rows={bodyRows} />
        <Box flexDirection="column" width={mainWidth} height={bodyRows} paddingLeft={1} overflow="hidden">
          {screen === 'chat' && (
            <Conversation lines={lines} chat={chat} width={mainWidth - 1} rows={bodyRows} />
          )}
          {screen === 'help' && <Help />}
          {screen === 'peers' && <Peers peers={peers.peers} routes={peers.routes} rows={bodyRows} />}
          {screen === 'id' && (
            <IdScreen me={me} link={qrText} qr={qr} width={mainWidth - 1} rows={bodyRows} />
          )}
          {screen === 'verify' && safety && <Verify safety={safety} />}
          {screen === 'add' && <AddContact />}
        </Box>
      </Box>
      <Text wrap="truncate-end">
        {'> '}
        {/* The end, where the cursor is, of a line wider than the screen ('> ' and the cursor take 3). */}
        {tail(printable(input), width - 3)}
        <Text inverse> </Text>
      </Text>
      <Text dimColor wrap="truncate-end">
        {printable(notice)}
      </Text>
    </Box>
  )
}

function Header({
  me,
  connected,
  chat,
  width,
}: {
  me: { name: string } | undefined
  connected: boolean
  chat: Chat | undefined
  width: number
}) {
  return (
    <Box width={width}>
      <Text bold>Talken</Text>
      <Text>{me ? ` · ${printable(me.name)}` : ''}</Text>
      <Text color={connected ? 'green' : 'red'}>
        {connected ? ' · node running' : ' · node not running (waiting for it)'}
      </Text>
      <Text dimColor wrap="truncate-end">
        {chat ? ` · ${chat.kind === 'room' ? '#' : ''}${printable(chat.name)}` : ''}
      </Text>
    </Box>
  )
}

/** Contacts and rooms, with unread counts; the open one marked. */
export function Sidebar({
  contacts,
  rooms,
  roomUnread,
  chat,
  rows,
}: {
  contacts: readonly ContactSummary[]
  rooms: readonly RoomSummary[]
  roomUnread: Readonly<Record<string, number>>
  chat: Chat | undefined
  rows: number
}) {
  const entries = [
    ...contacts.map((c) => ({
      key: `c${c.id}`,
      open: chat?.kind === 'contact' && chat.id === c.id,
      label: `${c.verified ? '✓' : ' '}${printable(c.name)}`,
      unread: c.unread,
    })),
    ...rooms.map((r) => ({
      key: `r${r.id}`,
      open: chat?.kind === 'room' && chat.id === r.id,
      label: `#${printable(r.name)}${r.status === 'left' ? ' (left)' : r.status === 'joining' ? '…' : ''}`,
      unread: roomUnread[r.id] ?? 0,
    })),
  ]
  return (
    <Box
      flexDirection="column"
      width={SIDEBAR}
      borderStyle="single"
      borderTop={false}
      borderBottom={false}
      borderLeft={false}
    >
      {entries.length === 0 && <Text dimColor>(nobody yet)</Text>}
      {entries.slice(0, rows).map((e) => (
        <Text key={e.key} inverse={e.open} wrap="truncate-end">
          {/* In columns: a wide (CJK, emoji) name must not push the unread count out. */}
          {pad(cut(e.label, SIDEBAR - 6), SIDEBAR - 5)}
          {e.unread > 0 ? <Text color="yellow">{String(e.unread).padStart(3)}</Text> : ''}
        </Text>
      ))}
    </Box>
  )
}

/**
 * The open conversation: the last lines that fit, times (a date too for other days than today,
 * `now`'s) and delivery states. A message's rows after its first are indented (`hangingWrap`):
 * text from others (names, messages, posts) is printable only, and cannot draw a row that looks
 * like a message of its own.
 */
export function Conversation({
  lines,
  chat,
  width,
  rows,
  now = Date.now(),
}: {
  lines: readonly Line[]
  chat: Chat | undefined
  width: number
  rows: number
  now?: number
}) {
  if (chat === undefined) return <Text dimColor>No conversation open. /chat NAME, or /add LINK.</Text>
  const rendered: Array<{ key: string; text: string; mine: boolean; state?: string }> = []
  for (const l of lines) {
    const label = l.state ? stateLabel(l.state) : ''
    const wrapped = hangingWrap(
      `${clock(l.at, now)} ${printable(l.who)}: `,
      printable(l.text, true),
      Math.max(10, width - (label ? label.length + 2 : 0)),
    )
    wrapped.forEach((text, i) => {
      rendered.push({
        key: `${l.id}:${i}`,
        text,
        mine: l.mine,
        ...(i === wrapped.length - 1 && label ? { state: label } : {}),
      })
    })
  }
  const visible = rendered.slice(-Math.max(1, rows))
  return (
    <Box flexDirection="column">
      {visible.length === 0 && <Text dimColor>Nothing here yet: type a message and press Enter.</Text>}
      {visible.map((r) => (
        <Text key={r.key} wrap="truncate-end" color={r.mine ? 'cyan' : undefined}>
          {r.text}
          {r.state ? <Text dimColor>{`  ${r.state}`}</Text> : ''}
        </Text>
      ))}
    </Box>
  )
}

export function Help() {
  return (
    <Box flexDirection="column">
      <Text bold>Commands</Text>
      {COMMANDS.map(([c, meaning]) => (
        <Text key={c} wrap="truncate-end">
          {c.padEnd(18)}
          <Text dimColor>{meaning}</Text>
        </Text>
      ))}
      <Text dimColor>Tab / Shift-Tab: next / previous conversation · Esc: back · Ctrl-C: quit</Text>
    </Box>
  )
}

/** Connected peers (contacts by name, others by peer ID only) and the routes the mesh knows. */
export function Peers({
  peers,
  routes,
  rows,
}: {
  peers: readonly PeerInfo[]
  routes: readonly RouteInfo[]
  rows: number
}) {
  const half = Math.max(2, Math.floor((rows - 2) / 2))
  return (
    <Box flexDirection="column">
      <Text bold>Peers ({peers.length})</Text>
      {peers.length === 0 && <Text dimColor>nobody in range yet</Text>}
      {peers.slice(0, half).map((p) => (
        <Text key={p.peerId} wrap="truncate-end">
          {p.mesh ? '● ' : '○ '}
          {printable(p.contact ?? p.peerId.slice(0, 16))}
        </Text>
      ))}
      <Text bold>Routes ({routes.length})</Text>
      {routes.slice(0, half).map((r) => (
        <Text key={r.destination} wrap="truncate-end">
          {pad(printable(r.contact ?? r.destination.slice(0, 12)), 16)} {String(r.metric).padStart(2)} hop
          {r.metric === 1 ? ' ' : 's'} via {printable(r.nextHop.slice(-8))}
        </Text>
      ))}
    </Box>
  )
}

/** A link to share (yours, or a room invitation) with its QR code when it fits. */
export function IdScreen({
  me,
  link,
  qr,
  width,
  rows,
}: {
  me: { id: string; name: string } | undefined
  link: string
  qr: ((text: string) => Promise<string>) | undefined
  width: number
  rows: number
}) {
  const [code, setCode] = useState('')
  useEffect(() => {
    let live = true
    if (qr && link) {
      qr(link)
        .then((c) => {
          if (live) setCode(c)
        })
        .catch(() => {})
    }
    return () => {
      live = false
    }
  }, [qr, link])
  const codeLines = code.split('\n').filter((l) => l !== '')
  const fits = codeLines.length > 0 && codeLines.length <= rows - 3 && (codeLines[0]?.length ?? 0) <= width
  // Taller than the screen: keep every line's height and let the bottom be cut, not the top squeezed.
  return (
    <Box flexDirection="column" flexShrink={0}>
      {me && <Text wrap="truncate-end">{printable(`${me.name}  ${me.id}`)}</Text>}
      <Text dimColor>
        Share this link (`talken id` prints it whole; `talken id --qr-file me.png` saves the QR code):
      </Text>
      <Text wrap="wrap">{printable(link)}</Text>
      {fits ? (
        codeLines.map((l, i) => <Text key={String(i)}>{l}</Text>)
      ) : (
        <Text dimColor>
          {code
            ? 'The QR code does not fit this terminal: enlarge it, or run `talken id --qr-file me.png`.'
            : ''}
        </Text>
      )}
    </Box>
  )
}

/** The safety number to compare, in three groups. */
export function Verify({ safety }: { safety: { name: string; safetyNumber: string; verified: boolean } }) {
  const groups = printable(safety.safetyNumber).split(' ')
  const name = printable(safety.name)
  return (
    <Box flexDirection="column">
      <Text bold>Safety number with {name}</Text>
      <Text> </Text>
      <Text>{groups.slice(0, 4).join(' ')}</Text>
      <Text>{groups.slice(4, 8).join(' ')}</Text>
      <Text>{groups.slice(8).join(' ')}</Text>
      <Text> </Text>
      {safety.verified ? (
        <Text color="green">✓ verified</Text>
      ) : (
        <Text>Compare it with {name}, in person or on a call. Same number? Press y. Esc goes back.</Text>
      )}
    </Box>
  )
}

export function AddContact() {
  return (
    <Box flexDirection="column">
      <Text bold>Add a contact</Text>
      <Text>Ask them for their link (`talken id`, or /id in their Talken) and paste it:</Text>
      <Text> </Text>
      <Text color="cyan">/add talken:… [name]</Text>
      <Text> </Text>
      <Text dimColor>A talken:room/… link joins a room instead. Esc goes back.</Text>
    </Box>
  )
}
