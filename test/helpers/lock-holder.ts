/**
 * A process that takes a data directory's lock and keeps it until killed (at most 60 s):
 * `node --import tsx test/helpers/lock-holder.ts HOME ROLE`. Prints `held` once it holds it.
 */
import { acquireLock } from '../../src/daemon/lock.ts'

const [home, role] = process.argv.slice(2)
if (home === undefined || (role !== 'daemon' && role !== 'cli')) {
  console.error('usage: lock-holder.ts HOME daemon|cli')
  process.exit(2)
}
acquireLock(home, role)
console.log('held')
setTimeout(() => {}, 60_000)
