/**
 * `talken add`, `talken contacts` and `talken verify`.
 */
import type { Command } from 'commander'
import { TalkenError } from '../../errors.ts'
import { decodeContactCard } from '../../identity/contact-card.ts'
import { type AddContactResult, addContact, verifyContact } from '../../node/contacts.ts'
import { openHome } from '../../node/data-dir.ts'
import type { Contact } from '../../store/store.ts'
import type { CommandContext } from '../context.ts'
import { emit, isoTime } from '../output.ts'
import { daemonClient } from './network.ts'

/** A contact as `--json` shows it. */
export function contactJson(c: Contact) {
  const card = decodeContactCard(c.card)
  return {
    id: c.id,
    name: c.name,
    displayName: card.name,
    verified: c.verified,
    addedAt: isoTime(c.addedAt),
    devices: card.devices.length,
    addresses: card.addresses,
  }
}

/**
 * Adds the contact of `link`: through the running daemon, so that its node dials the contact's
 * addresses at once (it dials its contacts only when it starts), else in the store directly.
 */
async function add(ctx: CommandContext, link: string, name: string | undefined): Promise<AddContactResult> {
  const client = await daemonClient(ctx.home)
  if (client === undefined) {
    const home = openHome({ home: ctx.home })
    try {
      return addContact(home.store, home.profile.accountKey, link, { name, now: ctx.now() })
    } finally {
      home.close()
    }
  }
  let added: { outcome: AddContactResult['outcome']; id: string }
  try {
    added = await client.call('addContact', { link, name: name ?? '' })
  } finally {
    client.close()
  }
  // The daemon answers with the ID; the contact as stored is read back for the output.
  const home = openHome({ home: ctx.home })
  try {
    const contact = home.store.getContact(added.id)
    if (contact === undefined)
      throw new TalkenError('not_found', `the contact ${added.id} was removed meanwhile`)
    return { contact, outcome: added.outcome }
  } finally {
    home.close()
  }
}

/** Registers `add`, `contacts` and `verify`. */
export function registerContactCommands(program: Command, context: () => CommandContext): void {
  program
    .command('add')
    .description('add a contact from their talken: link (it is verified before anything is stored)')
    .argument('<link>', 'the talken: link they shared')
    .option('--name <name>', 'what to call them (default: the name in their link)')
    .action(async (link: string, opts: { name?: string }) => {
      const ctx = context()
      const { contact, outcome } = await add(ctx, link, opts.name)
      emit(ctx.output, { outcome, contact: contactJson(contact) }, () => {
        const verb = outcome === 'added' ? 'Added' : outcome === 'updated' ? 'Updated' : 'Already have'
        return `${verb} ${contact.name} (${contact.id})\nCompare safety numbers with \`talken verify ${contact.name}\`.`
      })
    })

  program
    .command('contacts')
    .description('list your contacts')
    .action(() => {
      const ctx = context()
      const home = openHome({ home: ctx.home })
      try {
        const list = home.store.listContacts().map(contactJson)
        emit(ctx.output, { contacts: list }, () =>
          list.length === 0
            ? 'No contacts yet: add one with `talken add <link>`.'
            : list.map((c) => `${c.verified ? '✓' : ' '} ${c.name.padEnd(20)} ${c.id}`).join('\n'),
        )
      } finally {
        home.close()
      }
    })

  program
    .command('verify')
    .description('show the safety number to compare with a contact, in person or on a call')
    .argument('<contact>', 'name, ID, or the start of either')
    .option('--confirm', 'mark the contact as verified (after the numbers matched)')
    .action((query: string, opts: { confirm?: boolean }) => {
      const ctx = context()
      const home = openHome({ home: ctx.home })
      try {
        const { contact, safetyNumber: number } = verifyContact(
          home.store,
          home.profile.accountKey,
          query,
          opts.confirm === true,
        )
        emit(
          ctx.output,
          { contact: contact.id, name: contact.name, safetyNumber: number, verified: contact.verified },
          () => {
            const groups = number.split(' ')
            return [
              `Safety number with ${contact.name}:`,
              '',
              `  ${groups.slice(0, 4).join(' ')}`,
              `  ${groups.slice(4, 8).join(' ')}`,
              `  ${groups.slice(8).join(' ')}`,
              '',
              contact.verified
                ? 'Marked as verified.'
                : `If ${contact.name} sees the same number, run \`talken verify ${contact.name} --confirm\`.`,
            ].join('\n')
          },
        )
      } finally {
        home.close()
      }
    })
}
