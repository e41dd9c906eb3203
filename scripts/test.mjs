#!/usr/bin/env node
// Runs the test suite with Node's own test runner: every test/**/*.test.ts (or those under the
// paths given as arguments), TypeScript loaded through tsx. Node 20 has no glob support in
// `--test`, hence this file.
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const roots = process.argv.slice(2).filter((a) => !a.startsWith('-'))
const flags = process.argv.slice(2).filter((a) => a.startsWith('-'))

function collect(path, out) {
  const st = statSync(path)
  if (st.isFile()) {
    if (path.endsWith('.test.ts') || path.endsWith('.test.tsx')) out.push(path)
    return out
  }
  for (const name of readdirSync(path).sort()) {
    if (name === 'node_modules') continue
    collect(join(path, name), out)
  }
  return out
}

const files = (roots.length > 0 ? roots : ['test'])
  .flatMap((p) => collect(join(root, p), []))
  .map((f) => relative(root, f))
if (files.length === 0) {
  console.error('no test files found')
  process.exit(1)
}

const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=600000', ...flags, ...files],
  { cwd: root, stdio: 'inherit', env: { ...process.env, TALKEN_TEST: '1' } },
)
process.exit(result.status ?? 1)
