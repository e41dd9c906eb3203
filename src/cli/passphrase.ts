/**
 * Getting a passphrase: a file named with `--passphrase-file`, `$TALKEN_PASSPHRASE`, or a prompt
 * with echo off when standard input is a terminal.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { TalkenError } from '../errors.ts'
import { isKeyFileEncrypted, readFileIfExists } from '../identity/key-file.ts'
import { KEY_FILE } from '../node/data-dir.ts'

/** Reads one line from the terminal without echoing it. */
export async function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin
  if (!stdin.isTTY)
    throw new TalkenError('passphrase_required', 'a passphrase is needed and there is no terminal to ask')
  // Echo off before the question shows: what is typed the moment it appears is never echoed.
  stdin.setRawMode(true)
  stdin.resume()
  stdin.setEncoding('utf8')
  process.stderr.write(question)
  return new Promise((resolve, reject) => {
    let value = ''
    const done = (err?: TalkenError) => {
      stdin.setRawMode(false)
      stdin.pause()
      stdin.off('data', onData)
      process.stderr.write('\n')
      if (err) reject(err)
      else resolve(value)
    }
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done()
        if (ch === '\u0003') return done(new TalkenError('passphrase_required', 'cancelled'))
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1)
        else value += ch
      }
    }
    stdin.on('data', onData)
  })
}

/** The passphrase from the environment or a file, if either gives one. */
export function passphraseFromEnvOrFile(file?: string): string | undefined {
  if (file !== undefined) {
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '')
    } catch (cause) {
      throw new TalkenError('io_failed', `cannot read the passphrase file ${file}`, { cause })
    }
  }
  const env = process.env.TALKEN_PASSPHRASE
  return env !== undefined && env.length > 0 ? env : undefined
}

/** A new passphrase: from the environment or file, else asked twice on the terminal. */
export async function newPassphrase(file?: string): Promise<string> {
  const given = passphraseFromEnvOrFile(file)
  if (given !== undefined) return given
  const first = await promptHidden('New passphrase: ')
  if (first.length === 0) throw new TalkenError('invalid_argument', 'an empty passphrase protects nothing')
  const second = await promptHidden('Repeat passphrase: ')
  if (first !== second) throw new TalkenError('invalid_argument', 'the two passphrases differ')
  return first
}

/**
 * The passphrase that unlocks the key file of `home`, for a command that loads the identity's
 * keys (`daemon`, `start`, and `send` and `rooms` without a daemon): from `file`, else
 * `$TALKEN_PASSPHRASE`, else asked on the terminal when the key file is encrypted. Undefined
 * when none is given and none is needed. Throws `passphrase_required` naming the ways to give
 * one when the key file is encrypted and there is no terminal to ask.
 */
export async function unlockPassphrase(home: string, file?: string): Promise<string | undefined> {
  const given = passphraseFromEnvOrFile(file)
  if (given !== undefined) return given
  const bytes = readFileIfExists(join(home, KEY_FILE))
  // No key file, or not one: the command fails on it further on, with its own error.
  let encrypted = false
  try {
    encrypted = bytes !== undefined && isKeyFileEncrypted(bytes)
  } catch {
    encrypted = false
  }
  if (!encrypted) return undefined
  if (!process.stdin.isTTY) {
    throw new TalkenError(
      'passphrase_required',
      `the key file in ${home} is encrypted: give its passphrase with --passphrase-file <file> or $TALKEN_PASSPHRASE, or run the command in a terminal to be asked for it`,
    )
  }
  return promptHidden('Passphrase: ')
}
