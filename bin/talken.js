#!/usr/bin/env node
// The `talken` command: runs the compiled CLI (built by `npm install` through the `prepare` script).
import { existsSync } from 'node:fs'

const entry = new URL('../dist/cli/main.js', import.meta.url)
if (!existsSync(entry)) {
  console.error('talken: not built yet; run `npm install` (or `npm run build`) in the talken folder first')
  process.exit(1)
}
await import(entry.href)
