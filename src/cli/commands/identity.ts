/**
 * `talken init` and `talken id`: create and show one's identity.
 */
import { userInfo } from 'node:os'
import { join } from 'node:path'
import type { Command } from 'commander'
import { controlSocketPath } from '../../daemon/control.ts'
import { isTalkenError, TalkenError } from '../../errors.ts'
import { decodeContactCard } from '../../identity/contact-card.ts'
import { toContactLink } from '../../identity/contact-link.ts'
import { isKeyFileEncrypted, readFileIfExists } from '../../identity/key-file.ts'
import { qrToTerminal, writeQrFile } from '../../identity/qr.ts'
import { toTextId } from '../../identity/text-id.ts'
import { initHome, KEY_FILE, openHome } from '../../node/data-dir.ts'
import type { StoredIdentity } from '../../store/store.ts'
import type { CommandContext } from '../context.ts'
import { initLeftovers } from '../init-leftovers.ts'
import { emit } from '../output.ts'
import { newPassphrase, passphraseFromEnvOrFile } from '../passphrase.ts'
import { usageError } from '../usage-error.ts'

/** The identity as `--json` shows it. */
export function profileJson(profile: StoredIdentity) {
  const card = decodeContactCard(profile.card)
  return {
    id: toTextId(profile.accountKey),
    name: profile.name,
    link: toContactLink(card),
    devices: card.devices.map((d) => ({ name: d.deviceName, key: Buffer.from(d.deviceKey).toString('hex') })),
    addresses: card.addresses,
  }
}

function defaultName(): string {
  try {
    return userInfo().username || 'me'
  } catch {
    return 'me'
  }
}

/**
 * Creates the identity; shared by `talken init` and the first run of `talken`.
 *
 * The key file is encrypted with `encrypt`, and also when a passphrase is given without it
 * (`passphraseFile`, or `$TALKEN_PASSPHRASE`): a passphrase given is never silently dropped, and
 * the commands that load the keys later take the same one. `encrypt: false` (`--no-encrypt`)
 * writes it unencrypted whatever `$TALKEN_PASSPHRASE` holds.
 *
 * A failed init leaves no database behind. `warning` says when the daemon cannot run in this
 * data directory (its path too long for the control socket); the other commands can.
 */
export async function runInit(
  ctx: CommandContext,
  opts: { name?: string; device?: string; encrypt?: boolean; passphraseFile?: string },
): Promise<{ profile: StoredIdentity; encrypted: boolean; warning?: string }> {
  if (opts.encrypt === false && opts.passphraseFile !== undefined) {
    throw usageError('--no-encrypt and --passphrase-file contradict each other')
  }
  const given = opts.encrypt === false ? undefined : passphraseFromEnvOrFile(opts.passphraseFile)
  if (given === '') {
    throw new TalkenError(
      'invalid_argument',
      `the passphrase file ${opts.passphraseFile} is empty: an empty passphrase protects nothing`,
    )
  }
  const passphrase = given ?? (opts.encrypt ? await newPassphrase() : undefined)
  const leftovers = initLeftovers(ctx.home)
  let opened: ReturnType<typeof initHome>
  try {
    opened = initHome({
      home: ctx.home,
      name: opts.name ?? defaultName(),
      passphrase,
      now: ctx.now(),
      ...(opts.device ? { deviceName: opts.device } : {}),
    })
  } catch (err) {
    leftovers.undo()
    throw err
  }
  opened.close()
  const warning = daemonWarning(ctx.home)
  // What the key file on disk is, not what was asked: keys kept from an earlier init (its
  // database lost) keep their file, re-encrypted only when plain and a passphrase was given.
  const keyFile = readFileIfExists(join(ctx.home, KEY_FILE))
  const encrypted = keyFile !== undefined && isKeyFileEncrypted(keyFile)
  return { profile: opened.profile, encrypted, ...(warning ? { warning } : {}) }
}

/** Why `talken daemon` cannot run in `home`, if it cannot: its control socket's path is too long. */
function daemonWarning(home: string): string | undefined {
  try {
    controlSocketPath(home)
    return undefined
  } catch (err) {
    if (!isTalkenError(err, 'invalid_argument')) throw err
    return `\`talken daemon\` cannot run in this data directory: ${err.message}. The other commands work; to run the node, move the directory to a shorter path`
  }
}

/** Registers `init` and `id`. */
export function registerIdentityCommands(program: Command, context: () => CommandContext): void {
  program
    .command('init')
    .description('create your identity (account key and this device) in the data directory')
    .option('--name <name>', 'your display name, shown to contacts (default: your user name)')
    .option('--device <name>', "this device's name (default: the host name)")
    .option(
      '--encrypt',
      'protect the key file with a passphrase (--passphrase-file, $TALKEN_PASSPHRASE, or asked)',
    )
    .option('--no-encrypt', 'do not encrypt the key file, even with $TALKEN_PASSPHRASE set')
    .option('--passphrase-file <file>', 'read the new passphrase from a file (implies --encrypt)')
    .action(async (opts: { name?: string; device?: string; encrypt?: boolean; passphraseFile?: string }) => {
      const ctx = context()
      const { profile, encrypted, warning } = await runInit(ctx, opts)
      const info = profileJson(profile)
      if (warning !== undefined && !ctx.output.json) ctx.output.err(`talken: warning: ${warning}`)
      emit(ctx.output, { ...info, home: ctx.home, encrypted, ...(warning ? { warning } : {}) }, () =>
        [
          `Created ${info.name}'s identity in ${ctx.home}`,
          `ID:   ${info.id}`,
          `Link: ${info.link}`,
          ...(encrypted
            ? ['The key file is encrypted: commands that use the keys need the passphrase.']
            : []),
          '',
          'Share the link (or `talken id --qr`) with the people you want to talk to.',
        ].join('\n'),
      )
    })

  program
    .command('id')
    .description('show your ID and contact link')
    .option('--qr', 'also show the link as a QR code')
    .option('--qr-file <file>', 'write the QR code to a .png or .svg file')
    .action(async (opts: { qr?: boolean; qrFile?: string }) => {
      const ctx = context()
      const home = openHome({ home: ctx.home })
      const info = profileJson(home.profile)
      home.close()
      if (opts.qrFile) await writeQrFile(info.link, opts.qrFile)
      const qr = opts.qr && !ctx.output.json ? await qrToTerminal(info.link) : ''
      emit(ctx.output, { ...info, ...(opts.qrFile ? { qrFile: opts.qrFile } : {}) }, () =>
        [
          `${info.name}`,
          `ID:   ${info.id}`,
          `Link: ${info.link}`,
          ...(qr ? ['', qr] : []),
          ...(opts.qrFile ? [`QR code written to ${opts.qrFile}`] : []),
        ].join('\n'),
      )
    })
}
