/**
 * Real nodes for tests: each with its own data directory (identity + SQLite) in a temporary
 * folder, listening on loopback only, with mDNS off (tests never multicast outside namespaces
 * they created).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { addContact } from '../../src/node/contacts.ts'
import { initHome, openHome } from '../../src/node/data-dir.ts'
import { createNode, type NodeOptions, type TalkenNode } from '../../src/node/node.ts'

/** A fresh data directory with an identity named `name`; returns the path and the contact link. */
export function makeHome(name: string): { home: string; link: string; remove(): void } {
  const home = mkdtempSync(join(tmpdir(), `talken-${name.toLowerCase()}-`))
  const created = initHome({ home, name })
  const link = created.link
  created.close()
  return { home, link, remove: () => rmSync(home, { recursive: true, force: true }) }
}

/** Makes each of `homes` a contact of every other. */
export function introduce(...homes: Array<{ home: string; link: string }>): void {
  for (const a of homes) {
    const opened = openHome({ home: a.home })
    try {
      for (const b of homes) {
        if (b !== a) addContact(opened.store, opened.profile.accountKey, b.link, { now: Date.now() })
      }
    } finally {
      opened.close()
    }
  }
}

/** Starts a node on loopback, mDNS off. */
export async function startNode(home: string, options: Partial<NodeOptions> = {}): Promise<TalkenNode> {
  const node = await createNode({ home, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, ...options })
  await node.start()
  return node
}

/** Resolves when `check` holds, polling every 20 ms; rejects after `ms`. */
export async function until(check: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/**
 * Two nodes on loopback, Ada's bootstrapped to Bob's, their homes removed after the test;
 * contacts of each other unless `introduce` is false.
 */
export async function startPair(
  t: { after(fn: () => unknown): void },
  options: { introduce?: boolean } = {},
): Promise<{ ada: TalkenNode; bob: TalkenNode; homes: { ada: string; bob: string } }> {
  const a = makeHome('Ada')
  const b = makeHome('Bob')
  t.after(() => {
    a.remove()
    b.remove()
  })
  if (options.introduce !== false) introduce(a, b)
  const bob = await startNode(b.home)
  const ada = await startNode(a.home, { bootstrap: bob.addresses() })
  return { ada, bob, homes: { ada: a.home, bob: b.home } }
}
