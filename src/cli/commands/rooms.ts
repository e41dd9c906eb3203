/**
 * `talken rooms …`: group rooms. With a daemon running, each action goes through its control
 * socket (so posts spread at once); without one, the action runs on the data directory under its
 * lock, and what it wrote spreads when the node next runs (members sync when they meet).
 */
import type { Command } from 'commander'
import { roomAction } from '../../daemon/daemon.ts'
import { acquireLockWhenFree } from '../../daemon/lock.ts'
import { TalkenError } from '../../errors.ts'
import { qrToTerminal } from '../../identity/qr.ts'
import { requireIdentity } from '../../node/data-dir.ts'
import { createNode } from '../../node/node.ts'
import type { RoomHistoryItem, RoomMemberInfo, RoomSummary } from '../../node/rooms.ts'
import type { CommandContext } from '../context.ts'
import { hangingIndent, shortTime } from '../message-lines.ts'
import { emit, isoTime } from '../output.ts'
import { unlockPassphrase } from '../passphrase.ts'
import { refuseUnknownCommands } from '../unknown-command.ts'
import { daemonClient } from './network.ts'

/** Options every `rooms` command takes. */
interface RoomsOptions {
  readonly passphraseFile?: string
}

async function run<T>(ctx: CommandContext, opts: RoomsOptions, params: Record<string, unknown>): Promise<T> {
  const client = await daemonClient(ctx.home)
  if (client !== undefined) {
    try {
      return await client.call<T>('rooms', params)
    } finally {
      client.close()
    }
  }
  if (params.action === 'sync') {
    // Without a daemon no member is reachable: asking nobody is not loading history.
    throw new TalkenError(
      'not_running',
      `loading history from peers needs the daemon, and none is running for ${ctx.home}: start one with \`talken daemon\``,
    )
  }
  requireIdentity(ctx.home)
  // Asked before the lock is taken: others wait for the lock a few seconds, not for our typing.
  const passphrase = await unlockPassphrase(ctx.home, opts.passphraseFile)
  const release = await acquireLockWhenFree(ctx.home, 'cli')
  try {
    const node = await createNode({ home: ctx.home, mdns: false, ...(passphrase ? { passphrase } : {}) })
    try {
      return roomAction(node.rooms, params) as T
    } finally {
      await node.stop()
    }
  } finally {
    release()
  }
}

const summaryLine = (r: RoomSummary) =>
  `${r.id.slice(0, 12)}  ${r.name}  (${r.status === 'member' ? `${r.members} members` : r.status === 'joining' ? 'joining…' : 'left'}, ${r.entries} entries)`

function historyLine(h: RoomHistoryItem): string {
  const at = shortTime(h.time)
  const who = h.authorName ?? h.author.slice(0, 12)
  const subject = h.subject ? ` ${h.subjectName ?? h.subject.slice(0, 12)}` : ''
  switch (h.kind) {
    case 'post':
      // A post's lines after its first are indented: a member cannot forge another's line.
      return hangingIndent(`${at}  ${who}: `, h.text ?? '(no key for this post)')
    case 'genesis':
      return `${at}  ${who} created the room`
    case 'add':
      return `${at}  ${who} added${subject}`
    case 'remove':
      return `${at}  ${who} removed${subject}`
    case 'rotate':
      return `${at}  ${who} rotated the room key`
    case 'leave':
      return `${at}  ${who} left`
  }
}

/** Registers `talken rooms` and its subcommands. */
export function registerRoomCommands(program: Command, context: () => CommandContext): void {
  const rooms = program
    .command('rooms')
    .description(
      'group rooms: alone, lists your rooms; create, invite, join, post, history, members, leave, remove, sync',
    )
    .option(
      '--passphrase-file <file>',
      'with no daemon running: read the key file passphrase from a file (else $TALKEN_PASSPHRASE, or asked); for every rooms command',
    )
    .action(async () => {
      const ctx = context()
      const list = await run<RoomSummary[]>(ctx, rooms.opts<RoomsOptions>(), { action: 'list' })
      emit(ctx.output, list, () =>
        list.length === 0
          ? 'No rooms yet: `talken rooms create <name>` makes one.'
          : list.map(summaryLine).join('\n'),
      )
    })

  rooms
    .command('create')
    .description('create a room; you are its first member and admin')
    .argument('<name>', 'the room name (at most 64 bytes)')
    .action(async (name: string) => {
      const ctx = context()
      const r = await run<RoomSummary>(ctx, rooms.opts<RoomsOptions>(), { action: 'create', name })
      emit(
        ctx.output,
        r,
        () => `created ${r.name}  ${r.id}\nInvite people with \`talken rooms invite ${r.name}\`.`,
      )
    })

  rooms
    .command('invite')
    .description('make a room link (and QR code) that lets someone join; valid 7 days')
    .argument('<room>', 'room name or ID prefix')
    .option('--qr', 'also print the link as a QR code')
    .action(async (room: string, opts: { qr?: boolean }) => {
      const ctx = context()
      const r = await run<{ room: string; link: string; expiresAt: number }>(
        ctx,
        rooms.opts<RoomsOptions>(),
        { action: 'invite', room },
      )
      const qr = opts.qr && !ctx.output.json ? await qrToTerminal(r.link) : ''
      emit(ctx.output, { ...r, expiresAt: isoTime(r.expiresAt) }, () =>
        [
          r.link,
          qr,
          `Valid until ${isoTime(r.expiresAt)}. Whoever joins with it is added when your node hears the request.`,
        ]
          .filter((l) => l !== '')
          .join('\n'),
      )
    })

  rooms
    .command('join')
    .description('join a room from its link; the inviter adds you when its node hears you')
    .argument('<link>', 'a talken:room/… link')
    .action(async (link: string) => {
      const ctx = context()
      const r = await run<RoomSummary>(ctx, rooms.opts<RoomsOptions>(), { action: 'join', link })
      emit(ctx.output, r, () =>
        r.member
          ? `member of ${r.name}  ${r.id}`
          : `asked to join ${r.name}  ${r.id}\nYou are in once the inviter's node answers (\`talken rooms\` shows it).`,
      )
    })

  rooms
    .command('post')
    .description('post to a room')
    .argument('<room>', 'room name or ID prefix')
    .argument('<text...>', 'the post (after `--` when it starts with "-")')
    .addHelpText(
      'after',
      '\nText that starts with "-" goes after `--`, which ends the options:\n  talken rooms post Climbing -- -5 degrees at the crag',
    )
    .action(async (room: string, words: string[]) => {
      const ctx = context()
      const r = await run<{ room: string; hash: string }>(ctx, rooms.opts<RoomsOptions>(), {
        action: 'post',
        room,
        text: words.join(' '),
      })
      emit(ctx.output, r, () => `posted  ${r.hash.slice(0, 16)}`)
    })

  rooms
    .command('history')
    .description('show a room history, in causal order (with --sync, ask members for what is missing first)')
    .argument('<room>', 'room name or ID prefix')
    .option('--sync', 'load history from reachable members first (needs the daemon)')
    .action(async (room: string, opts: { sync?: boolean }) => {
      const ctx = context()
      if (opts.sync) await run(ctx, rooms.opts<RoomsOptions>(), { action: 'sync', room })
      const items = await run<RoomHistoryItem[]>(ctx, rooms.opts<RoomsOptions>(), { action: 'history', room })
      emit(
        ctx.output,
        items.map((h) => ({ ...h, time: isoTime(h.time) })),
        () => items.map(historyLine).join('\n') || '(empty: the history has not arrived yet)',
      )
    })

  rooms
    .command('members')
    .description('list the members of a room')
    .argument('<room>', 'room name or ID prefix')
    .action(async (room: string) => {
      const ctx = context()
      const list = await run<RoomMemberInfo[]>(ctx, rooms.opts<RoomsOptions>(), { action: 'members', room })
      emit(ctx.output, list, () =>
        list.map((m) => `${m.id}  ${m.role}${m.name ? `  ${m.name}` : ''}`).join('\n'),
      )
    })

  rooms
    .command('leave')
    .description('leave a room; the others rotate its key')
    .argument('<room>', 'room name or ID prefix')
    .action(async (room: string) => {
      const ctx = context()
      const r = await run<RoomSummary>(ctx, rooms.opts<RoomsOptions>(), { action: 'leave', room })
      emit(ctx.output, r, () => `left ${r.name}`)
    })

  rooms
    .command('remove')
    .description('remove a member (admins); the room key rotates to those who stay')
    .argument('<room>', 'room name or ID prefix')
    .argument('<member>', "the member's text ID or contact name")
    .action(async (room: string, member: string) => {
      const ctx = context()
      const r = await run<RoomSummary>(ctx, rooms.opts<RoomsOptions>(), { action: 'remove', room, member })
      emit(ctx.output, r, () => `removed ${member} from ${r.name}`)
    })

  rooms
    .command('sync')
    .description('load history from peers: ask every reachable member for what is missing')
    .argument('<room>', 'room name or ID prefix')
    .action(async (room: string) => {
      const ctx = context()
      const r = await run<{ asked: number }>(ctx, rooms.opts<RoomsOptions>(), { action: 'sync', room })
      emit(ctx.output, r, () => `asked ${r.asked} member(s)`)
    })

  refuseUnknownCommands(rooms, '`talken rooms` alone lists your rooms')
}
