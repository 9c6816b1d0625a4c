import { PassThrough, type Readable } from 'node:stream';
import type { CofferError } from '../common/index.js';
import { sha256Verifier } from './sha256-verifier.js';

/**
 * What `get` hands out: the bytes of `source`, whose failures become `mapError(err)` (a storage
 * error instead of a socket's), checked against `expectedSha256` when given. Destroying the
 * result stops reading the source.
 */
export function verifiedStream(
  source: Readable,
  mapError: (err: unknown) => Error,
  expectedSha256: string | undefined,
  mismatch: (actual: string) => CofferError,
): Readable {
  const out = expectedSha256 === undefined ? new PassThrough() : sha256Verifier(expectedSha256, mismatch);
  source.on('error', (err) => out.destroy(mapError(err)));
  out.on('close', () => source.destroy());
  source.pipe(out);
  return out;
}
