/**
 * What the terminal client needs from a node, and its implementation over the daemon's control
 * socket (docs/protocol.md §Control socket). The screens depend on {@link TuiClient} only, so
 * component tests hand them a fake.
 */
import { ControlClient } from '../daemon/control.ts'
import type { ContactSummary, MessageView } from '../node/inbox.ts'
import type { PeerInfo, RouteInfo } from '../node/node.ts'
import type { RoomHistoryItem, RoomMemberInfo, RoomSummary } from '../node/rooms.ts'
import type { DeliveryState } from '../store/store.ts'

/** Something that happened on the node. */
export type TuiEvent =
  | {
      readonly type: 'message'
      readonly id: string
      readonly from: string
      readonly fromName: string
      readonly text: string
      readonly receivedAt: number
    }
  | {
      readonly type: 'state'
      readonly id: string
      readonly conversation: string
      readonly state: DeliveryState
      /** Why, for some: a message given up because the node sent it again names the new one (`resentAs`). */
      readonly reason?: string | undefined
    }
  | ({
      /**
       * One of our messages, just sent from this client or another (`talken send`): as the
       * conversation lists it (`direction` out). Copies the node sends again are not announced so.
       */
      readonly type: 'outgoing'
    } & MessageView)
  | { readonly type: 'room'; readonly room: string; readonly item: RoomHistoryItem }
  | { readonly type: 'connection'; readonly up: boolean }

/** The node as the terminal client sees it. */
export interface TuiClient {
  identity(): Promise<{ id: string; name: string; link: string }>
  contacts(): Promise<ContactSummary[]>
  conversation(contact: string, limit?: number): Promise<MessageView[]>
  send(contact: string, text: string): Promise<{ id: string; state: DeliveryState }>
  addContact(link: string, name?: string): Promise<{ outcome: string; id: string; name: string }>
  safetyNumber(
    contact: string,
    confirm?: boolean,
  ): Promise<{ id: string; name: string; safetyNumber: string; verified: boolean }>
  markRead(contact: string): Promise<number>
  setReceipts(contact: string, on: boolean): Promise<void>
  peers(): Promise<PeerInfo[]>
  routes(): Promise<RouteInfo[]>
  rooms(): Promise<RoomSummary[]>
  roomHistory(room: string): Promise<RoomHistoryItem[]>
  roomMembers(room: string): Promise<RoomMemberInfo[]>
  roomPost(room: string, text: string): Promise<void>
  roomCreate(name: string): Promise<RoomSummary>
  roomJoin(link: string): Promise<RoomSummary>
  roomInvite(room: string): Promise<{ link: string }>
  roomSync(room: string): Promise<number>
  /** Calls `onEvent` with the node's events until the returned function is called. */
  follow(onEvent: (e: TuiEvent) => void): () => void
  close(): void
}

/**
 * A client of the daemon of `home`. Calls open a connection each (the control socket is local and
 * cheap); the event stream reconnects by itself when the daemon goes away and comes back.
 */
export function daemonTuiClient(home: string): TuiClient {
  let closed = false
  const call = async <T>(method: string, params: Record<string, unknown> = {}): Promise<T> => {
    const client = await ControlClient.connect(home)
    if (client === undefined) throw new Error('the node is not running')
    try {
      return await client.call<T>(method, params)
    } finally {
      client.close()
    }
  }
  const rooms = <T>(action: string, params: Record<string, unknown> = {}) =>
    call<T>('rooms', { action, ...params })
  return {
    identity: () => call('identity'),
    contacts: () => call('contacts'),
    conversation: (contact, limit = 200) => call('conversation', { contact, limit }),
    send: (contact, text) => call('send', { to: contact, text }),
    addContact: (link, name) => call('addContact', { link, name: name ?? '' }),
    safetyNumber: (contact, confirm = false) => call('safetyNumber', { contact, confirm }),
    markRead: async (contact) => (await call<{ read: number }>('markRead', { contact })).read,
    setReceipts: async (contact, on) => {
      await call('receipts', { contact, on })
    },
    peers: () => call('peers'),
    routes: () => call('routes'),
    rooms: () => rooms('list'),
    roomHistory: (room) => rooms('history', { room }),
    roomMembers: (room) => rooms('members', { room }),
    roomPost: async (room, text) => {
      await rooms('post', { room, text })
    },
    roomCreate: (name) => rooms('create', { name }),
    roomJoin: (link) => rooms('join', { link }),
    roomInvite: (room) => rooms('invite', { room }),
    roomSync: async (room) => (await rooms<{ asked: number }>('sync', { room })).asked,
    follow(onEvent) {
      let client: ControlClient | undefined
      let stopped = false
      let up: boolean | undefined
      const report = (now: boolean) => {
        if (up !== now) onEvent({ type: 'connection', up: now })
        up = now
      }
      const loop = async () => {
        while (!stopped && !closed) {
          client = await ControlClient.connect(home).catch(() => undefined)
          if (client === undefined) {
            report(false)
            await new Promise((r) => setTimeout(r, 500))
            continue
          }
          report(true)
          await client.call('follow', {}, (e) => onEvent(e as TuiEvent)).catch(() => {})
          client.close()
          if (!stopped) report(false)
        }
      }
      void loop()
      return () => {
        stopped = true
        client?.close()
      }
    },
    close() {
      closed = true
    },
  }
}
