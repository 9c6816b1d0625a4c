import assert from 'node:assert/strict';
import { isCofferError, type ErrorCode } from '../../src/common/index.js';

/** Asserts that `promise` rejects with a CofferError of `code`, as it arrives from a call or over the bus. */
export async function rejectsWithCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isCofferError(err), `expected CofferError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}
