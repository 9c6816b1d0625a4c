import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { CofferError } from '../common/index.js';

/**
 * Passes bytes through and, when they end, fails with `mismatch(actual)` instead of ending if
 * their SHA-256 is not `expected`: a reader that saw the end read exactly the bytes expected.
 */
export function sha256Verifier(expected: string, mismatch: (actual: string) => CofferError): Transform {
  const hash = createHash('sha256');
  const want = expected.toLowerCase();
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
    flush(callback) {
      const actual = hash.digest('hex');
      callback(actual === want ? null : mismatch(actual));
    },
  });
}
