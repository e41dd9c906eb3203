/**
 * What a failed `talken init` made, removed again.
 *
 * The store is opened (and `talken.db` created) before the name and the passphrase are judged,
 * so a refused name or an empty passphrase file left a database with no identity in a new data
 * directory: the next command there said "run `talken init` again" about a directory the user
 * never got to make. Only what did not exist before the init is removed; the key file never is
 * (keys written before a failed commit get their profile back from the next init).
 */
import { existsSync, rmdirSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { DATABASE_FILE } from '../node/data-dir.ts'

/** The database and the files SQLite keeps beside it. */
const DATABASE_FILES = ['', '-wal', '-shm', '-journal'].map((suffix) => `${DATABASE_FILE}${suffix}`)

/**
 * Notes what of `home` exists now; `undo()` removes the database files made since, and the
 * directories made since (`home`, and its parents that init created) that are empty.
 */
export function initLeftovers(home: string): { undo(): void } {
  const made: string[] = []
  for (let dir = home; !existsSync(dir) && dirname(dir) !== dir; dir = dirname(dir)) made.push(dir)
  const existed = new Set(DATABASE_FILES.filter((f) => existsSync(join(home, f))))
  return {
    undo() {
      for (const f of DATABASE_FILES) {
        if (!existed.has(f)) rmSync(join(home, f), { force: true })
      }
      for (const dir of made) {
        try {
          rmdirSync(dir)
        } catch {
          return // not empty (the key file of an init that failed after writing it): kept
        }
      }
    },
  }
}
