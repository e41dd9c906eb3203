/**
 * QR codes for contact links, through the `qrcode` library: in the terminal (Unicode half
 * blocks, two modules per character cell) and as PNG or SVG files.
 *
 * Links are encoded in byte mode at error-correction level M (15% of the symbol can be lost).
 * A typical link (one device, no addresses) needs a version 12–16 symbol; the largest QR code
 * (version 40-M) holds 2,331 bytes, which bounds what a link may carry to be scannable.
 */
import { extname } from 'node:path'
import QRCode from 'qrcode'
import { TalkenError } from '../errors.ts'
import { writePrivateFile } from './key-file.ts'

/** Most bytes a QR code at level M can hold (version 40, byte mode). */
export const MAX_QR_BYTES = 2331

function checkFits(text: string): void {
  if (Buffer.byteLength(text) > MAX_QR_BYTES) {
    throw new TalkenError(
      'too_large',
      `this text is ${Buffer.byteLength(text)} bytes; a QR code holds ${MAX_QR_BYTES}`,
    )
  }
}

/** Renders `text` as a QR code for a terminal (dark modules on a light background). */
export async function qrToTerminal(text: string): Promise<string> {
  checkFits(text)
  return QRCode.toString(text, { type: 'utf8', errorCorrectionLevel: 'M', margin: 2 })
}

/** Renders `text` as an SVG document. */
export async function qrToSvg(text: string): Promise<string> {
  checkFits(text)
  return QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 4 })
}

/** Renders `text` as a PNG image. `scale` is pixels per module. */
export async function qrToPng(text: string, scale = 6): Promise<Uint8Array> {
  checkFits(text)
  return new Uint8Array(
    await QRCode.toBuffer(text, { type: 'png', errorCorrectionLevel: 'M', margin: 4, scale }),
  )
}

/**
 * Writes a QR code of `text` to `path`, as PNG or SVG by the file's extension.
 * Throws `invalid_argument` for another extension.
 */
export async function writeQrFile(text: string, path: string): Promise<void> {
  const ext = extname(path).toLowerCase()
  if (ext === '.png') writePrivateFile(path, await qrToPng(text), 0o644)
  else if (ext === '.svg') writePrivateFile(path, Buffer.from(await qrToSvg(text), 'utf8'), 0o644)
  else
    throw new TalkenError(
      'invalid_argument',
      `cannot write a QR code as ${ext || 'a file without extension'}: use .png or .svg`,
    )
}
