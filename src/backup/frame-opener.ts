import { createDecipheriv } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { CofferError } from '../common/index.js';
import { backupKeyId } from './backup-keys.js';
import {
  type BackupHeader,
  frameHeadBytes,
  frameNonce,
  maxHeaderBytes,
  objectKey,
  parseBackupHeader,
  tagBytes,
} from './backup-format.js';
import { ByteQueue } from './byte-queue.js';

// Reads a stored backup object back into its (compressed) plaintext, frame by frame. A frame's
// bytes are released only once its tag verified: a consumer never sees a byte that was not
// sealed with the key, in that place, in that object. What it may see is the verified frames of
// an object that turns out to be cut short: the stream then errors instead of ending, so only a
// consumer that reached the end restored the whole backup.

export function incompleteBackup(): CofferError {
  return new CofferError(
    'BackupDecryptionFailed',
    'The backup object is incomplete: it ends before its last frame, so it was cut short when it was stored or read. It cannot be restored as it is.',
  );
}

export class FrameOpener extends Transform {
  readonly #key: Buffer | undefined;
  readonly #onHeader: (header: BackupHeader) => void;
  readonly #queue = new ByteQueue();
  #header: BackupHeader | undefined;
  #objectKey: Buffer | undefined;
  #index = 0;
  #finalSeen = false;

  /**
   * `key` undefined: only unsealed objects open. `onHeader` hears the header once the first
   * frame opened (so the header is authentic), before any plaintext is pushed.
   */
  constructor(key: Buffer | undefined, onHeader: (header: BackupHeader) => void) {
    super({ readableHighWaterMark: 1024 * 1024, writableHighWaterMark: 64 * 1024 });
    this.#key = key;
    this.#onHeader = onHeader;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#finalSeen) {
      callback(this.#altered('bytes follow its last frame'));
      return;
    }
    this.#queue.push(chunk);
    try {
      this.#drain();
    } catch (err) {
      callback(err as Error);
      return;
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.#finalSeen) {
      callback();
      return;
    }
    if (this.#header === undefined && this.#queue.length === 0) {
      callback(new CofferError('BackupDecryptionFailed', 'The backup object is empty: it was cut short when it was stored or read. It cannot be restored.'));
      return;
    }
    callback(incompleteBackup());
  }

  #drain(): void {
    if (this.#header === undefined) {
      const header = parseBackupHeader(this.#queue.peek(maxHeaderBytes));
      if (header === undefined) return;
      this.#queue.skip(header.bytes.length);
      this.#acceptHeader(header);
    }
    const header = this.#header!;
    const tagLength = header.sealed ? tagBytes : 0;
    while (this.#queue.length >= frameHeadBytes) {
      const head = this.#queue.peek(frameHeadBytes);
      const flags = head.readUInt8(0);
      const length = head.readUInt32BE(1);
      const final = flags === 1;
      // checked before the tag so that a forged length cannot make the decoder hold more than
      // a frame; the tag covers both anyway
      if (flags > 1 || length > header.frameSize || (!final && length !== header.frameSize)) {
        throw this.#altered('a frame header is damaged');
      }
      if (this.#queue.length < frameHeadBytes + length + tagLength) return;
      this.#queue.skip(frameHeadBytes);
      // the body as the pieces of the chunks it arrived in: opened piece by piece, never gathered
      const body = this.#queue.takeRuns(length);
      const plain = header.sealed ? this.#open(head, body, this.#queue.take(tagLength)) : body;
      // the first frame's tag vouches for the header too: only then may it decide anything
      if (this.#index === 0) this.#onHeader(header);
      this.#index += 1;
      for (const piece of plain) if (piece.length > 0) this.push(piece);
      if (final) {
        this.#finalSeen = true;
        if (this.#queue.length > 0) throw this.#altered('bytes follow its last frame');
        return;
      }
    }
  }

  #acceptHeader(header: BackupHeader): void {
    if (header.sealed && this.#key === undefined) {
      throw new CofferError(
        'BackupDecryptionFailed',
        `The backup is encrypted (with key ${header.keyId}) and no key was given to decrypt it.`,
      );
    }
    if (!header.sealed && this.#key !== undefined) {
      // a restore that expects a sealed backup must not take bytes anyone could have written
      throw new CofferError(
        'BackupDecryptionFailed',
        "The backup object is not encrypted, but this project's backups are: it was not written by this project's backups, or it was replaced.",
      );
    }
    this.#header = header;
    if (header.sealed) this.#objectKey = objectKey(this.#key!, header.salt);
  }

  /** the frame's plaintext, in pieces, returned only once its tag verified */
  #open(head: Buffer, body: readonly Buffer[], tag: Buffer): Buffer[] {
    const header = this.#header!;
    const decipher = createDecipheriv('aes-256-gcm', this.#objectKey!, frameNonce(this.#index), { authTagLength: tagBytes });
    decipher.setAAD(Buffer.concat([header.bytes, head]));
    decipher.setAuthTag(tag);
    const plain = body.map((piece) => decipher.update(piece));
    try {
      decipher.final();
    } catch {
      throw this.#altered(`frame ${this.#index} fails its check`);
    }
    return plain;
  }

  #altered(why: string): CofferError {
    const header = this.#header;
    // once a frame opened, the key is known to be right: only the bytes can be wrong
    if (header === undefined || !header.sealed || this.#index > 0) {
      return new CofferError('BackupDecryptionFailed', `The backup object was altered (${why}): it cannot be restored as it is.`);
    }
    const given = backupKeyId(this.#key!);
    const which =
      given === header.keyId
        ? `it was sealed with key ${header.keyId}, the key given`
        : `it was sealed with key ${header.keyId}; the key given is ${given}`;
    return new CofferError('BackupDecryptionFailed', `The backup cannot be decrypted with this project's key, or it was altered (${which}).`, {
      details: why,
    });
  }
}
