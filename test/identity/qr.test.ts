import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { toContactLink } from '../../src/identity/contact-link.ts'
import { createIdentity, makeContactCard } from '../../src/identity/identity.ts'
import { qrToSvg, qrToTerminal, writeQrFile } from '../../src/identity/qr.ts'
import { rejectsCode } from '../helpers/errors.ts'
import { decodeQrPng } from '../helpers/qr.ts'

const me = createIdentity({ now: 1_750_000_000_000 })
const link = toContactLink(
  makeContactCard(me, { name: 'Ada', addresses: ['/ip4/10.0.0.1/tcp/4001'], now: 1 }),
)

describe('QR codes', () => {
  it('a PNG decodes, with an independent decoder, to exactly the link', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'talken-qr-'))
    try {
      const path = join(dir, 'me.png')
      await writeQrFile(link, path)
      assert.equal(decodeQrPng(path), link)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('renders for the terminal and as SVG', async () => {
    const text = await qrToTerminal(link)
    assert.ok(text.split('\n').length > 20)
    assert.match(await qrToSvg(link), /^<svg/)
  })

  it('refuses an unknown file type and text too long for a QR code', async () => {
    await rejectsCode(() => writeQrFile(link, '/tmp/x.gif'), 'invalid_argument')
    await rejectsCode(() => qrToTerminal('x'.repeat(3000)), 'too_large')
  })
})
