/**
 * Boundary checks shared by every Store implementation, so that both stores reject the same inputs
 * with the same `invalid_argument` error instead of one failing later inside SQLite (STRICT tables)
 * and the other silently keeping a malformed record.
 */
import { TalkenError } from '../errors.ts'
import {
  type Contact,
  type CustodyEntry,
  type CustodyQuota,
  DELIVERY_STATES,
  type DeliveryState,
  type MessageRecord,
  type OutboxEntry,
  type StoredIdentity,
} from './store.ts'

function invalid(what: string, why: string): never {
  throw new TalkenError('invalid_argument', `${what} ${why}`)
}

/** A lone surrogate: SQLite stores it as U+FFFD, so two such strings could become one key. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** Throws `invalid_argument` unless `value` is a non-empty string. */
export function checkText(value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) invalid(what, 'must be a non-empty string')
  if (LONE_SURROGATE.test(value)) invalid(what, 'must be well-formed Unicode (a lone surrogate)')
}

/** Throws `invalid_argument` unless `value` is a string (possibly empty). */
export function checkString(value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string') invalid(what, 'must be a string')
  if (LONE_SURROGATE.test(value)) invalid(what, 'must be well-formed Unicode (a lone surrogate)')
}

/** Throws `invalid_argument` unless `value` is a safe integer (timestamps are Unix milliseconds). */
export function checkInt(value: unknown, what: string): asserts value is number {
  if (!Number.isSafeInteger(value)) invalid(what, 'must be a safe integer')
}

/** Throws `invalid_argument` unless `value` is a non-negative safe integer. */
export function checkCount(value: unknown, what: string): asserts value is number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) invalid(what, 'must be a non-negative integer')
}

/** Throws `invalid_argument` unless `value` is a Uint8Array. */
export function checkBytes(value: unknown, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) invalid(what, 'must be a Uint8Array')
}

/** Throws `invalid_argument` unless `limit` is absent or a non-negative integer. */
export function checkLimit(limit: unknown): void {
  if (limit !== undefined) checkCount(limit, 'limit')
}

/** Throws `invalid_argument` unless `value` is a number that is not NaN (a paging bound). */
export function checkBound(value: unknown, what: string): void {
  if (typeof value !== 'number' || Number.isNaN(value)) invalid(what, 'must be a number')
}

/** Throws `invalid_argument` unless `state` is one of {@link DELIVERY_STATES}. */
export function checkState(state: unknown): asserts state is DeliveryState {
  if (!DELIVERY_STATES.includes(state as DeliveryState))
    invalid('state', `is not a delivery state: ${String(state)}`)
}

/** Throws `invalid_argument` unless `reason` is absent or a string. */
export function checkReason(reason: unknown): void {
  if (reason !== undefined) checkString(reason, 'stateReason')
}

/** Checks a whole identity. */
export function checkIdentity(identity: StoredIdentity): void {
  checkBytes(identity.accountKey, 'accountKey')
  checkString(identity.name, 'name')
  checkBytes(identity.card, 'card')
  checkInt(identity.createdAt, 'createdAt')
}

/** Checks a whole contact. */
export function checkContact(contact: Contact): void {
  checkText(contact.id, 'contact id')
  checkBytes(contact.accountKey, 'accountKey')
  checkString(contact.name, 'name')
  checkBytes(contact.card, 'card')
  if (typeof contact.verified !== 'boolean') invalid('verified', 'must be a boolean')
  checkInt(contact.addedAt, 'addedAt')
}

/** Checks a whole message record. */
export function checkMessage(message: MessageRecord): void {
  checkText(message.id, 'message id')
  checkText(message.conversation, 'conversation')
  if (message.direction !== 'in' && message.direction !== 'out') invalid('direction', "must be 'in' or 'out'")
  checkBytes(message.body, 'body')
  checkInt(message.createdAt, 'createdAt')
  checkState(message.state)
  checkReason(message.stateReason)
  checkInt(message.updatedAt, 'updatedAt')
}

/** Checks a whole outbox entry. */
export function checkOutbox(entry: OutboxEntry): void {
  checkText(entry.messageId, 'messageId')
  checkBytes(entry.envelope, 'envelope')
  checkCount(entry.attempts, 'attempts')
  checkInt(entry.nextAttemptAt, 'nextAttemptAt')
  checkInt(entry.expiresAt, 'expiresAt')
}

/** Checks a whole custody entry. */
export function checkCustody(entry: CustodyEntry): void {
  checkText(entry.messageId, 'messageId')
  checkText(entry.origin, 'origin')
  checkBytes(entry.destination, 'destination')
  checkBytes(entry.envelope, 'envelope')
  checkCount(entry.copies, 'copies')
  checkInt(entry.expiresAt, 'expiresAt')
  checkInt(entry.receivedAt, 'receivedAt')
}

/** Checks a quota and returns a frozen copy of it. */
export function checkQuota(quota: CustodyQuota): CustodyQuota {
  checkCount(quota.perOriginBytes, 'custodyQuota.perOriginBytes')
  checkCount(quota.totalBytes, 'custodyQuota.totalBytes')
  return Object.freeze({ perOriginBytes: quota.perOriginBytes, totalBytes: quota.totalBytes })
}

/**
 * Whether taking custody of `size` bytes for `origin` fits, given current usage and the entry it
 * replaces (whose bytes leave the quota first). Pure, so both stores decide identically.
 */
export function custodyFits(
  quota: CustodyQuota,
  size: number,
  usage: { origin: number; total: number },
  replaced: { origin: string; size: number } | undefined,
  origin: string,
): 'ok' | 'origin' | 'total' {
  const freedOrigin = replaced !== undefined && replaced.origin === origin ? replaced.size : 0
  const freedTotal = replaced?.size ?? 0
  if (usage.origin - freedOrigin + size > quota.perOriginBytes) return 'origin'
  if (usage.total - freedTotal + size > quota.totalBytes) return 'total'
  return 'ok'
}

/** The `quota_exceeded` error for a custody insert that does not fit. */
export function quotaError(which: 'origin' | 'total', origin: string, size: number): TalkenError {
  const scope = which === 'origin' ? `the per-origin quota of ${origin}` : 'the total custody quota'
  return new TalkenError('quota_exceeded', `custody of ${size} bytes would exceed ${scope}`, {
    details: { origin, size, quota: which },
  })
}
