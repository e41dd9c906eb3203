/**
 * A word where a command was expected: `talken contact`, `talken rooms list`.
 *
 * `talken` and `talken rooms` do something alone (welcome, list the rooms), and commander takes a
 * word after a command with an action of its own for an argument of that action: it said "too
 * many arguments". This says "unknown command", names the commands that look like the word, and
 * gives `help` its usual meaning.
 */
import type { Command } from 'commander'

/**
 * Makes a word after `command` an unknown command (exit status 2), unless it is `help` (which
 * shows the help of `command`, or of the subcommand named after it). `hint` is added to the
 * error, such as what `command` does alone. Call it once the subcommands are added: they would
 * otherwise inherit the excess arguments allowed here.
 */
export function refuseUnknownCommands(command: Command, hint?: string): void {
  command.allowExcessArguments(true)
  command.hook('preAction', (_hooked, action) => {
    if (action !== command) return
    const [word] = command.args
    if (word === undefined) return
    if (word === 'help') {
      const topic = command.args[1]
      const sub = command.commands.find((c) => c.name() === topic || c.aliases().includes(topic ?? ''))
      ;(sub ?? command).help()
    }
    const similar = command.commands
      .map((c) => c.name())
      .filter((name) => looksLike(word, name))
      .map((name) => `\`${[...path(command), name].join(' ')}\``)
    const where = command.parent === null ? '' : ` for \`${path(command).join(' ')}\``
    const notes = [
      ...(similar.length > 0 ? [`did you mean ${similar.join(' or ')}?`] : []),
      ...(hint ? [hint] : []),
    ]
    command.error(
      `error: unknown command '${word}'${where}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`,
      {
        code: 'commander.unknownCommand',
        exitCode: 2,
      },
    )
  })
}

/** The command's words from the program down: `['talken', 'rooms']`. */
function path(command: Command): string[] {
  const words: string[] = []
  for (let c: Command | null = command; c !== null; c = c.parent) words.unshift(c.name())
  return words
}

/** Whether a mistyped `word` may have meant `name`: one is the start of the other, or a few letters differ. */
function looksLike(word: string, name: string): boolean {
  const w = word.toLowerCase()
  if (w.length >= 3 && (name.startsWith(w) || w.startsWith(name))) return true
  return editDistance(w, name) <= Math.max(1, Math.floor(name.length * 0.3))
}

/** Levenshtein distance: insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)
      current.push(Math.min(substitution, (previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1))
    }
    previous = current
  }
  return previous[b.length] ?? 0
}
