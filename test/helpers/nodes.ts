/**
 * Real nodes for tests: each with its own data directory (identity + SQLite) in a temporary
 * folder, listening on loopback only, with mDNS off (tests never multicast outside namespaces
 * they created).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { openSessionStore } from '../../src/e2e/session-store.ts'
import { decodeContactCard } from '../../src/identity/contact-card.ts'
import { toContactLink } from '../../src/identity/contact-link.ts'
import { addContact } from '../../src/node/contacts.ts'
import { initHome, loadIdentity, openHome } from '../../src/node/data-dir.ts'
import { createNode, type NodeOptions, type TalkenNode } from '../../src/node/node.ts'
import { refreshOwnCard } from '../../src/node/own-card.ts'
import type { Store } from '../../src/store/store.ts'

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

/**
 * A node for `home` on loopback whose store is wrapped by `wrap` (a disk that fills up:
 * full-disk.ts), started, with the errors it emits (steps that did not commit) collected. Stopped
 * and closed when the test ends.
 */
export async function startNodeWithDisk(
  t: { after(fn: () => unknown): void },
  home: string,
  wrap: (store: Store) => Store,
): Promise<{ node: TalkenNode; failures: Error[] }> {
  const opened = openHome({ home })
  const node = await createNode({
    store: wrap(opened.store),
    identity: loadIdentity({ home }),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: false,
  })
  t.after(async () => {
    await node.stop()
    opened.close()
  })
  const failures: Error[] = []
  node.on('error', (e) => failures.push(e)) // a step that did not fit: the tests look at what follows
  await node.start()
  return { node, failures }
}

/**
 * Ada and Bob, linked on loopback, Bob's store wrapped by `wrap` (a disk that fills up:
 * full-disk.ts) and Ada's hop-ack timeout short (a refusal lasts three of them), with the errors
 * Bob emits; their first message delivered unless `firstMessage` is false. Everything is stopped
 * and removed when the test ends.
 */
export async function pairWithBobsDisk(
  t: TestContext,
  wrap: (store: Store) => Store,
  options: { firstMessage?: boolean } = {},
): Promise<{ ada: TalkenNode; bob: TalkenNode; failures: Error[] }> {
  const homes = { ada: makeHome('Ada'), bob: makeHome('Bob') }
  t.after(() => {
    for (const h of Object.values(homes)) h.remove()
  })
  introduce(homes.ada, homes.bob)
  const { node: bob, failures } = await startNodeWithDisk(t, homes.bob.home, wrap)
  const ada = await startNode(homes.ada.home, { bootstrap: bob.addresses(), mesh: { hopAckTimeoutMs: 500 } })
  t.after(() => ada.stop())
  if (options.firstMessage !== false) {
    await until(() => ada.peers().some((p) => p.mesh) && bob.peers().some((p) => p.mesh), 10_000, 'the link')
    await ada.send('Bob', 'first').delivered(AbortSignal.timeout(10_000))
  }
  return { ada, bob, failures }
}

/** Re-signs the card of `home` with a bundle of a single one-time prekey; returns its link. */
export function linkWithOneOneTimePrekey(home: string): string {
  const opened = openHome({ home })
  try {
    const identity = loadIdentity({ home })
    const e2e = openSessionStore({ store: opened.store, device: identity.device, now: Date.now })
    e2e.prekeys.replenishOneTimePrekeys(1)
    const fresh = refreshOwnCard(opened.store, identity, e2e.cardExtension())
    if (fresh === undefined) throw new Error('the card was not re-signed')
    return toContactLink(decodeContactCard(fresh.card))
  } finally {
    opened.close()
  }
}

/**
 * Ada, Bob and Cid running, linked through Bob, where Ada and Cid both hold Bob's link with its
 * single one-time prekey and Ada has written first (delivered): Bob cannot open Cid's first
 * message, and asks Cid to send it again (test/net/resend.test.ts). Stopped and removed after `t`.
 */
export async function startResendTrio(
  t: TestContext,
): Promise<{ ada: TalkenNode; bob: TalkenNode; cid: TalkenNode }> {
  const homes = { ada: makeHome('Ada'), bob: makeHome('Bob'), cid: makeHome('Cid') }
  const nodes: TalkenNode[] = []
  t.after(async () => {
    await Promise.all(nodes.map((n) => n.stop()))
    for (const h of Object.values(homes)) h.remove()
  })
  introduce(
    { home: homes.ada.home, link: homes.ada.link },
    { home: homes.bob.home, link: linkWithOneOneTimePrekey(homes.bob.home) },
    { home: homes.cid.home, link: homes.cid.link },
  )
  const bob = await startNode(homes.bob.home)
  nodes.push(bob)
  const ada = await startNode(homes.ada.home, { bootstrap: bob.addresses() })
  nodes.push(ada)
  const cid = await startNode(homes.cid.home, { bootstrap: bob.addresses() })
  nodes.push(cid)
  await until(() => bob.peers().filter((p) => p.mesh).length === 2, 10_000, 'both links')
  await ada.send('Bob', 'hello from Ada').delivered(AbortSignal.timeout(10_000))
  return { ada, bob, cid }
}
