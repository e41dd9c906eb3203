/**
 * A real full disk (a 4 MiB tmpfs, mounted in a mount namespace of the test's own): when SQLite
 * answers SQLITE_FULL by rolling back the whole transaction under way, nothing the transaction
 * writes after that lands on disk on its own, and the transaction fails with `storage_full`.
 * Needs root (mount namespaces); skips with the reason otherwise.
 */
import { strict as assert } from 'node:assert'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, it } from 'node:test'
import { fileURLToPath } from 'node:url'

const childPath = fileURLToPath(new URL('./full-disk-child.ts', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'talken-full-disk-'))
after(() => rmSync(dir, { recursive: true, force: true }))

function skipReason(): string | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return 'a real full disk needs root to mount a small tmpfs (run as root, as CI does)'
  }
  const probe = spawnSync('unshare', ['-m', 'mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir])
  if (probe.status !== 0) return `cannot mount a tmpfs in a mount namespace: ${String(probe.stderr).trim()}`
  return undefined
}
const skip = skipReason()
if (skip) console.log(`skipping the real full disk test: ${skip}`)

it('a transaction SQLite rolled back on a full disk writes nothing after, and fails with storage_full', {
  skip,
}, () => {
  const script = `mount -t tmpfs -o size=4m tmpfs "$1" && exec "$2" --import tsx "$3" "$1"`
  const child = spawnSync('unshare', ['-m', 'sh', '-c', script, 'sh', dir, process.execPath, childPath], {
    encoding: 'utf8',
    timeout: 60_000,
  })
  assert.equal(child.status, 0, child.stderr)
  const result = JSON.parse(child.stdout.trim().split('\n').pop()!)
  assert.equal(result.inner, 'storage_full')
  assert.equal(result.outer, 'storage_full')
  assert.deepEqual(result.kept, [], 'nothing of the transaction is on disk')
})
