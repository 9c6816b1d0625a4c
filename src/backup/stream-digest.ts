import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { CofferError } from '../common/index.js';

// A pass-through stage that counts and hashes what flows through it: the size and SHA-256 of a
// backup object as it is stored or read, without a second pass over the bytes.

export class StreamDigest extends Transform {
  #size = 0;
  #sha256: string | undefined;
  readonly #hash = createHash('sha256');

  /** bytes passed so far */
  get size(): number {
    return this.#size;
  }

  /** lowercase hex SHA-256 of everything passed; known once the stream ended */
  get sha256(): string {
    if (this.#sha256 === undefined) throw new CofferError('Internal', 'The digest of a stream is known only once the stream ended.');
    return this.#sha256;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#size += chunk.length;
    this.#hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#sha256 = this.#hash.digest('hex');
    callback();
  }
}
