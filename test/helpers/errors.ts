import assert from 'node:assert/strict'
import { TalkenError, type TalkenErrorCode } from '../../src/errors.ts'

/** Asserts that `fn` throws a TalkenError with one of `codes`, and returns it. */
export function throwsCode(fn: () => unknown, ...codes: TalkenErrorCode[]): TalkenError {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof TalkenError, `expected a TalkenError, got ${String(err)}`)
    assert.ok(
      codes.includes(err.code),
      `expected code ${codes.join(' or ')}, got ${err.code}: ${err.message}`,
    )
    return err
  }
  assert.fail(`expected a TalkenError (${codes.join(' or ')}), but nothing was thrown`)
}

/** Async variant of {@link throwsCode}. */
export async function rejectsCode(
  fn: () => Promise<unknown>,
  ...codes: TalkenErrorCode[]
): Promise<TalkenError> {
  try {
    await fn()
  } catch (err) {
    assert.ok(err instanceof TalkenError, `expected a TalkenError, got ${String(err)}`)
    assert.ok(
      codes.includes(err.code),
      `expected code ${codes.join(' or ')}, got ${err.code}: ${err.message}`,
    )
    return err
  }
  assert.fail(`expected a TalkenError (${codes.join(' or ')}), but nothing was thrown`)
}
