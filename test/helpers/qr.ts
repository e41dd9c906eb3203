import { readFileSync } from 'node:fs'
import jsQRModule from 'jsqr'
import { PNG } from 'pngjs'

// jsqr is CommonJS with a `default` property: under Node's ESM interop the function sits one level down.
type Decode = (data: Uint8ClampedArray, width: number, height: number) => { data: string } | null
const jsQR = (jsQRModule as unknown as { default: Decode }).default

/** Decodes a PNG file's QR code with jsQR, an implementation independent of the encoder. */
export function decodeQrPng(path: string): string | undefined {
  const png = PNG.sync.read(readFileSync(path))
  return jsQR(new Uint8ClampedArray(png.data), png.width, png.height)?.data
}
