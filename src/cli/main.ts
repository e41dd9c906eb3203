#!/usr/bin/env node
/** Entry point of the `talken` command. */
import '../platform/node-shims.ts'
import { runCli } from './program.ts'

process.exitCode = await runCli(process.argv)
