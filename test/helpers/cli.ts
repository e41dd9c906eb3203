/**
 * Runs the real `talken` command (bin/talken.js over the compiled dist/) in a child process.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const root = new URL('../..', import.meta.url).pathname
const bin = join(root, 'bin', 'talken.js')

/** Builds dist/ once if it is missing (npm test builds before testing). */
export function ensureBuilt(): void {
  if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) {
    execFileSync(
      process.execPath,
      [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      {
        cwd: root,
        stdio: 'inherit',
      },
    )
  }
}

/** What one CLI run printed. */
export interface CliResult {
  readonly status: number
  readonly stdout: string
  readonly stderr: string
  /** stdout parsed as JSON, when it is. */
  readonly json: unknown
}

/** Runs `talken ...args` with TALKEN_HOME set to `home`. */
export function talken(home: string, args: readonly string[], env: Record<string, string> = {}): CliResult {
  const r = spawnSync(process.execPath, [bin, ...args], {
    env: { ...process.env, TALKEN_HOME: home, TALKEN_PASSPHRASE: '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  })
  let json: unknown
  try {
    json = JSON.parse(r.stdout)
  } catch {
    json = undefined
  }
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, json }
}

/**
 * Runs `talken ...args` without waiting for it (killed after 60 s); resolves with its exit code
 * and output. `stdout()` is what it printed so far.
 */
export function talkenAsync(
  home: string,
  args: readonly string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> & { stdout(): string } {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, TALKEN_HOME: home, TALKEN_PASSPHRASE: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d
  })
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const done = new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (status) => {
      clearTimeout(timer)
      resolve({ status, stdout, stderr })
    }),
  )
  return Object.assign(done, { stdout: () => stdout })
}

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix))
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) }
}
