/** Whether a module is the script Node was started with (`node file.ts`), not an import of it. */
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** True when `moduleUrl` (a module's `import.meta.url`) is the script given to Node. */
export function isMainModule(moduleUrl: string): boolean {
  const script = process.argv[1]
  if (script === undefined) return false
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(moduleUrl))
  } catch {
    return false
  }
}
