/**
 * A neighbour cannot pass for a contact by claiming the contact's destination tag in its Hello:
 * Ada names a peer as Grace only when its Hello carries Grace's device's signature over the tag
 * and the link's own peer ID; a claim cannot take the tag (or the route to Grace) from Grace's
 * own link, and a claim that came first gives both up when Grace's link proves it.
 */
import '../../src/platform/node-shims.ts'
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { encodeFrame as encodeLinkFrame } from '../../src/links/framing.ts'
import { MESH_PROTOCOL } from '../../src/links/libp2p-links.ts'
import { encodeFrame } from '../../src/mesh/frames.ts'
import { tagKey } from '../../src/mesh/routing-table.ts'
import { loadIdentity } from '../../src/node/data-dir.ts'
import { destinationTag } from '../../src/node/destination-tag.ts'
import { helloProof } from '../../src/node/hello-proof.ts'
import type { TalkenNode } from '../../src/node/node.ts'
import { introduce, makeHome, startNode, until } from '../helpers/nodes.ts'

/** A plain libp2p node that opens a mesh stream to `to` and says Hello as `tag`, with `proof`. */
async function impostor(
  t: TestContext,
  to: TalkenNode,
  tag: Uint8Array,
  proof?: (peerId: string) => Uint8Array,
) {
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() },
  })
  t.after(() => node.stop())
  // It takes Ada's mesh stream (and reads nothing), so that Ada holds a mesh link to it.
  await node.handle(MESH_PROTOCOL, (stream) => stream.addEventListener('message', () => {}))
  const stream = await node.dialProtocol(multiaddr(to.addresses()[0]!), MESH_PROTOCOL)
  const id = node.peerId.toString()
  const hello = encodeFrame({
    kind: 0,
    node: tag,
    seqno: 1,
    encounters: 1,
    ...(proof === undefined ? {} : { proof: proof(id) }),
  })
  await until(() => to.peers().some((p) => p.peerId === id && p.mesh), 10_000, 'the impostor linked')
  stream.send(encodeLinkFrame(hello))
  return id
}

describe('Hello proofs', () => {
  it('a neighbour claiming a contact’s tag is not named as the contact, and cannot take the contact’s link', async (t) => {
    const homes = [makeHome('Ada'), makeHome('Grace')]
    t.after(() => {
      for (const h of homes) h.remove()
    })
    introduce(...homes)
    const ada = await startNode(homes[0]!.home)
    t.after(() => ada.stop())
    const graceTag = destinationTag(loadIdentity({ home: homes[1]!.home }).account.publicKey)
    const graceKey = tagKey(graceTag)
    const nameOf = (peerId: string) => ada.peers().find((p) => p.peerId === peerId)?.contact
    const routeToGrace = () => ada.routes().find((r) => r.destination === graceKey)

    // Grace away: one neighbour only claims her tag, another copies a proof Grace made for her own
    // peer ID. Neither is named Grace; the claims still give routes, as any neighbour's routes do.
    const claimer = await impostor(t, ada, graceTag)
    await until(() => routeToGrace()?.nextHop === claimer, 10_000, 'the claim heard')
    assert.equal(nameOf(claimer), undefined)

    // Grace comes: her Hello proves the tag. She is named, and the claim's route is gone.
    const grace = await startNode(homes[1]!.home, { bootstrap: ada.addresses() })
    t.after(() => grace.stop())
    const graceId = grace.links!.peerId
    await until(() => nameOf(graceId) === 'Grace', 10_000, 'Grace named')
    await until(() => routeToGrace()?.nextHop === graceId, 10_000, 'the route through Grace')
    assert.equal(nameOf(claimer), undefined)

    // With Grace here, a claim (or a copied proof) takes neither her name nor her route.
    const copied = await impostor(t, ada, graceTag, () =>
      helloProof(grace.identity.device, graceTag, graceId),
    )
    const late = await impostor(t, ada, graceTag)
    await new Promise((resolve) => setTimeout(resolve, 500))
    assert.equal(nameOf(copied), undefined)
    assert.equal(nameOf(late), undefined)
    assert.equal(nameOf(graceId), 'Grace')
    assert.equal(routeToGrace()?.nextHop, graceId)
    assert.equal(routeToGrace()?.metric, 1)

    // And a message to Grace still reaches her.
    await ada.send('Grace', 'still you').delivered(AbortSignal.timeout(10_000))
  })
})
