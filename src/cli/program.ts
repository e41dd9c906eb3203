/**
 * The `talken` command line: global options, the commands, and one error path.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline/promises'
import { Command, CommanderError } from 'commander'
import { lockHolder } from '../daemon/lock.ts'
import { TalkenError } from '../errors.ts'
import { qrToTerminal } from '../identity/qr.ts'
import { KEY_FILE, openHome, requireIdentity } from '../node/data-dir.ts'
import { registerContactCommands } from './commands/contacts.ts'
import { profileJson, registerIdentityCommands, runInit } from './commands/identity.ts'
import { registerNetworkCommands, runDaemonCommand } from './commands/network.ts'
import { registerRoomCommands } from './commands/rooms.ts'
import { type CommandContext, type GlobalOptions, homeFrom } from './context.ts'
import { EXIT_FAILURE, EXIT_USAGE, emit, type Output, processOutput, report } from './output.ts'
import { passphraseFromEnvOrFile, unlockPassphrase } from './passphrase.ts'
import { refuseUnknownCommands } from './unknown-command.ts'
import { isUsageError } from './usage-error.ts'

/** The package version, read from package.json (two levels up from both src/cli and dist/cli). */
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version

async function askName(): Promise<string | undefined> {
  if (!process.stdin.isTTY) return undefined
  const rl = createInterface({ input: process.stdin, output: process.stderr })
  try {
    const answer = (await rl.question('Your display name (shown to your contacts): ')).trim()
    return answer.length > 0 ? answer : undefined
  } finally {
    rl.close()
  }
}

/** `talken` with no command: first run creates the identity, every run shows how to be reached. */
async function welcome(ctx: CommandContext, passphraseFile?: string): Promise<void> {
  let created = false
  if (!existsSync(join(ctx.home, KEY_FILE))) {
    const name = ctx.output.json ? undefined : await askName()
    const { warning } = await runInit(ctx, {
      ...(name ? { name } : {}),
      ...(passphraseFile ? { passphraseFile } : {}),
    })
    if (warning !== undefined && !ctx.output.json) ctx.output.err(`talken: warning: ${warning}`)
    created = true
  }
  const home = openHome({ home: ctx.home })
  const info = profileJson(home.profile)
  const contacts = home.store.listContacts().length
  home.close()
  const qr = ctx.output.json ? '' : await qrToTerminal(info.link)
  emit(ctx.output, { ...info, created, contacts, home: ctx.home }, () =>
    [
      created
        ? `Welcome to Talken, ${info.name}. Your identity was created in ${ctx.home}.`
        : `Talken: ${info.name}`,
      '',
      qr,
      `ID:   ${info.id}`,
      `Link: ${info.link}`,
      '',
      `Contacts: ${contacts}. Others add you with \`talken add <your link>\` or by scanning the code.`,
      'Next: `talken add <their link>`, `talken contacts`, `talken verify <name>`, `talken --help`.',
    ].join('\n'),
  )
}

/** Builds the program; `output` is chosen once the global options are known. */
export function buildProgram(state: { output: Output; now: () => number }): Command {
  const program = new Command()
  const context = (): CommandContext => {
    const opts = program.opts<GlobalOptions>()
    return { home: homeFrom(opts), output: state.output, now: state.now }
  }
  program
    .name('talken')
    .description(
      'Serverless, end-to-end encrypted messaging: on a shared Wi-Fi, a hotspot, or through other devices.',
    )
    .version(VERSION, '-v, --version')
    .option('--home <dir>', 'data directory (default: $TALKEN_HOME or ~/.talken)')
    .option('--json', 'print machine-readable JSON')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => {
        if (!state.output.json) process.stderr.write(s)
      },
    })
    .hook('preAction', () => {
      state.output = processOutput(Boolean(program.opts<GlobalOptions>().json))
    })
    .action(() => welcome(context()))
  registerIdentityCommands(program, context)
  registerContactCommands(program, context)
  registerNetworkCommands(program, context)
  registerRoomCommands(program, context)
  program
    .command('start')
    .description(
      'first run creates your identity; then show your link and run the node (what `npm start` does)',
    )
    .option('--no-mdns', 'do not discover peers on the local network')
    .option('--no-tui', 'no chat screen: show your link and run the node in the foreground')
    .option('--log-level <level>', 'debug, info, warn or error', 'warn')
    .option(
      '--passphrase-file <file>',
      'read the key file passphrase from a file (else $TALKEN_PASSPHRASE, or asked); on first run it encrypts the new key file',
    )
    .action(async (opts: { mdns: boolean; tui: boolean; logLevel: string; passphraseFile?: string }) => {
      const ctx = context()
      // In a terminal, the chat screen (it asks for a name on first run); otherwise the node.
      if (opts.tui && !ctx.output.json && process.stdin.isTTY && process.stdout.isTTY) {
        await runTuiCommand(ctx, opts.mdns, opts.passphraseFile)
        return
      }
      await welcome(ctx, opts.passphraseFile)
      await runDaemonCommand(ctx, {
        mdns: opts.mdns,
        logLevel: opts.logLevel,
        ...(opts.passphraseFile ? { passphraseFile: opts.passphraseFile } : {}),
      })
    })

  program
    .command('tui')
    .description('the chat screen: uses the running daemon, or runs the node itself while open')
    .option('--no-mdns', 'do not discover peers on the local network (when it runs the node)')
    .option(
      '--passphrase-file <file>',
      'when it runs the node: read the key file passphrase from a file (else $TALKEN_PASSPHRASE, or asked)',
    )
    .action((opts: { mdns: boolean; passphraseFile?: string }) =>
      runTuiCommand(context(), opts.mdns, opts.passphraseFile),
    )
  refuseUnknownCommands(program)
  return program
}

async function runTuiCommand(ctx: CommandContext, mdns: boolean, passphraseFile?: string): Promise<void> {
  if (!process.stdin.isTTY || !process.stdout.isTTY) {
    throw new TalkenError(
      'invalid_argument',
      'the chat screen needs a terminal; without one, run `talken daemon` and use `talken send` and `talken inbox`',
    )
  }
  // ink draws only the last frame when it believes it runs under CI (a CI or
  // CONTINUOUS_INTEGRATION variable, read once when ink loads). The chat screen runs only in a
  // terminal, where a person (or a terminal test) must see every frame: clear the flags first.
  delete process.env.CI
  delete process.env.CONTINUOUS_INTEGRATION
  const { runTui } = await import('../tui/run.tsx')
  // The keys are needed only when the chat screen runs the node itself: no daemon runs, and there
  // is an identity already (a first run creates one unencrypted, as before).
  const runsNode = existsSync(join(ctx.home, KEY_FILE)) && lockHolder(ctx.home)?.role !== 'daemon'
  if (runsNode) requireIdentity(ctx.home) // the directory is checked before the key file is read
  const passphrase = runsNode
    ? await unlockPassphrase(ctx.home, passphraseFile)
    : passphraseFromEnvOrFile(passphraseFile)
  await runTui({ home: ctx.home, mdns, ...(passphrase ? { passphrase } : {}) })
}

/** Runs the CLI on `argv` (as process.argv) and returns the exit code. */
export async function runCli(argv: readonly string[], now: () => number = Date.now): Promise<number> {
  const state = { output: processOutput(argv.includes('--json')), now }
  const program = buildProgram(state)
  try {
    await program.parseAsync([...argv])
    return 0
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return 0 // --help, --version
      if (state.output.json) {
        return report(
          state.output,
          new TalkenError('invalid_argument', err.message.replace(/^error: /, '')),
          EXIT_USAGE,
        )
      }
      return EXIT_USAGE
    }
    return report(state.output, err, isUsageError(err) ? EXIT_USAGE : EXIT_FAILURE)
  }
}
