/**
 * Starts the terminal client on a data directory: on first run it asks for a display name and
 * creates the identity; it uses the daemon already running for that directory, or runs the node
 * in this process (serving the same control socket, so `talken send` and friends work beside it)
 * and stops it on exit.
 */
import { appendFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { Box, render, Text, useApp, useInput } from 'ink'
import { useRef, useState } from 'react'
import { ControlClient } from '../daemon/control.ts'
import { type Daemon, lineLogger, runDaemon } from '../daemon/daemon.ts'
import { lockHolder } from '../daemon/lock.ts'
import { qrToTerminal } from '../identity/qr.ts'
import { initHome, KEY_FILE } from '../node/data-dir.ts'
import { App } from './app.tsx'
import { daemonTuiClient } from './client.ts'
import { dropLast, printable, typed } from './view.ts'

/** Options of {@link runTui}. */
export interface TuiOptions {
  readonly home: string
  readonly mdns?: boolean
  /** Passphrase of an encrypted key file, for a node run in this process. */
  readonly passphrase?: string
}

/** Asks for a display name (first run). */
export function FirstRun({ onName }: { onName: (name: string) => void }) {
  const { exit } = useApp()
  const [name, setNameState] = useState('')
  const nameRef = useRef('')
  const setName = (next: (n: string) => string) => {
    nameRef.current = next(nameRef.current)
    setNameState(nameRef.current)
  }
  const [error, setError] = useState('')
  useInput((ch, key) => {
    if (key.ctrl && ch === 'c') {
      exit()
      return
    }
    const chunk = key.return ? { text: '', submit: true } : typed(ch)
    if (chunk.submit) {
      const trimmed = (nameRef.current + chunk.text).trim()
      if (trimmed === '' || Buffer.byteLength(trimmed) > 64) {
        setError('A name of 1 to 64 bytes, please.')
        return
      }
      onName(trimmed)
      exit()
      return
    }
    if (key.backspace || key.delete) setName(dropLast)
    else if (!key.ctrl && !key.meta) setName((n) => n + chunk.text)
  })
  return (
    <Box flexDirection="column">
      <Text bold>Welcome to Talken</Text>
      <Text>No server, no phone number: your identity is a key made on this device.</Text>
      <Text> </Text>
      <Text>
        What name should your contacts see? {printable(name)}
        <Text inverse> </Text>
      </Text>
      {error && <Text color="red">{error}</Text>}
    </Box>
  )
}

async function askName(): Promise<string | undefined> {
  let chosen: string | undefined
  const app = render(
    <FirstRun
      onName={(n) => {
        chosen = n
      }}
    />,
  )
  await app.waitUntilExit()
  app.clear()
  return chosen
}

/** Runs the terminal client until the user quits. */
export async function runTui(options: TuiOptions): Promise<void> {
  const { home } = options
  const firstRun = !existsSync(join(home, KEY_FILE))
  if (firstRun) {
    const name = await askName()
    if (name === undefined) return
    initHome({ home, name }).close()
  }
  let daemon: Daemon | undefined
  const running = await ControlClient.connect(home)
  if (running) running.close()
  else if (lockHolder(home)?.role !== 'daemon') {
    // Logs go to a file: the screen belongs to the client.
    const logFile = join(home, 'talken.log')
    daemon = await runDaemon({
      home,
      mdns: options.mdns ?? true,
      ...(options.passphrase ? { passphrase: options.passphrase } : {}),
      logger: lineLogger('warn', false, (line) => appendFileSync(logFile, `${line}\n`)),
    })
  }
  const client = daemonTuiClient(home)
  const app = render(<App client={client} qr={qrToTerminal} welcome={firstRun} />, { exitOnCtrlC: false })
  try {
    await app.waitUntilExit()
  } finally {
    client.close()
    await daemon?.stop()
  }
}
