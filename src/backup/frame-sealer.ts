import { createCipheriv } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { frameHead, frameNonce, tagBytes } from './backup-format.js';

// Cuts (compressed) plaintext into frames and seals each (backup-format.ts). A full frame is held
// back until a byte after it arrives: only the end of the input tells which frame is the last,
// and the last must carry the final mark.

export class FrameSealer extends Transform {
  readonly #header: Buffer;
  readonly #frameSize: number;
  readonly #objectKey: Buffer | undefined;
  readonly #pending: Buffer;
  #filled = 0;
  #index = 0;
  #headerSent = false;

  /** `objectKey` undefined: frames are written in the clear (tests of the codec only) */
  constructor(header: Buffer, frameSize: number, objectKey: Buffer | undefined) {
    // one frame in the readable buffer is enough to keep the next stage busy
    super({ readableHighWaterMark: frameSize, writableHighWaterMark: 64 * 1024 });
    this.#header = header;
    this.#frameSize = frameSize;
    this.#objectKey = objectKey;
    this.#pending = Buffer.allocUnsafe(frameSize);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#sendHeader();
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#filled === this.#frameSize) this.#seal(false);
      const n = Math.min(this.#frameSize - this.#filled, chunk.length - offset);
      chunk.copy(this.#pending, this.#filled, offset, offset + n);
      this.#filled += n;
      offset += n;
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.#sendHeader();
    this.#seal(true);
    callback();
  }

  #sendHeader(): void {
    if (this.#headerSent) return;
    this.#headerSent = true;
    this.push(this.#header);
  }

  #seal(final: boolean): void {
    const head = frameHead(final, this.#filled);
    const body = this.#pending.subarray(0, this.#filled);
    if (this.#objectKey === undefined) {
      this.push(Buffer.concat([head, body]));
    } else {
      const cipher = createCipheriv('aes-256-gcm', this.#objectKey, frameNonce(this.#index), { authTagLength: tagBytes });
      cipher.setAAD(Buffer.concat([this.#header, head]));
      const sealed = cipher.update(body);
      cipher.final(); // GCM is a stream mode: nothing is held back
      this.push(head);
      if (sealed.length > 0) this.push(sealed);
      this.push(cipher.getAuthTag());
    }
    this.#filled = 0;
    this.#index += 1;
  }
}
