/**
 * Runs `talken daemon` as a child process (loopback only, mDNS off) and waits for its ready line.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

const bin = join(new URL('../..', import.meta.url).pathname, 'bin', 'talken.js')

/** The daemon's `--json` ready line. */
export interface Ready {
  readonly event: 'ready'
  readonly id: string
  readonly peerId: string
  readonly addresses: string[]
}

export interface DaemonProcess {
  readonly ready: Ready
  readonly child: ChildProcess
  /** Every stdout line so far. */
  readonly lines: string[]
  /** Sends `signal` and resolves with the exit code once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/** Starts a daemon for `home`; rejects if it exits or prints no ready line within `timeoutMs`. */
export function startDaemon(
  home: string,
  extra: readonly string[] = [],
  timeoutMs = 20_000,
): Promise<DaemonProcess> {
  const child = spawn(
    process.execPath,
    [
      bin,
      'daemon',
      '--json',
      '--no-mdns',
      '--listen',
      '/ip4/127.0.0.1/tcp/0',
      '--log-level',
      'debug',
      ...extra,
    ],
    { env: { ...process.env, TALKEN_HOME: home, TALKEN_PASSPHRASE: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  const lines: string[] = []
  const stderr: string[] = []
  child.stderr?.setEncoding('utf8').on('data', (d: string) => stderr.push(d))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`daemon not ready after ${timeoutMs} ms: ${stderr.join('')}`))
    }, timeoutMs)
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`daemon exited (${code}) before it was ready: ${stderr.join('')}${lines.join('\n')}`))
    })
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line)
      let parsed: { event?: string } | undefined
      try {
        parsed = JSON.parse(line)
      } catch {
        return
      }
      if (parsed?.event !== 'ready') return
      clearTimeout(timer)
      resolve({
        ready: parsed as Ready,
        child,
        lines,
        stop: (signal = 'SIGTERM') => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal)
          return exited
        },
      })
    })
  })
}
