import type { MessageRecord } from '../../src/store/store.ts'

/** Outgoing message `n` to the conversation `alice`, queued, with a body of `bodySize` bytes of `n`. */
export const messageRecord = (n: number, bodySize = 3): MessageRecord => ({
  id: n.toString(16).padStart(32, '0'),
  conversation: 'alice',
  direction: 'out',
  body: new Uint8Array(bodySize).fill(n & 255),
  createdAt: n,
  state: 'queued',
  updatedAt: n,
})
