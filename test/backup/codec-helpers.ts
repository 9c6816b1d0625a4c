import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { isCofferError, type ErrorCode } from '../../src/common/index.js';
import { decodeBackup, encodeBackup, type DecodeOptions, type EncodeOptions } from '../../src/backup/backup-codec.js';

// Helpers of the codec's tests: whole-buffer encode and decode, an independent reading of the
// documented layout (to cut, drop and swap frames), and the zstd children of this process.

/** The whole of `stream`; when it fails, the failure comes once the stream closed. */
export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream) chunks.push(chunk as Buffer);
  } catch (err) {
    await closed(stream);
    throw err;
  }
  return Buffer.concat(chunks);
}

export function encode(data: Buffer, options: EncodeOptions): Promise<Buffer> {
  return collect(encodeBackup(Readable.from([data]), options));
}

export function decode(bytes: Buffer, options: DecodeOptions): Promise<Buffer> {
  return collect(decodeBackup(Readable.from(bytes.length === 0 ? [] : [bytes]), options));
}

/** What a decode released before it failed, and how it failed. */
export async function decodeFailure(bytes: Buffer, options: DecodeOptions): Promise<{ released: Buffer; error: Error }> {
  const chunks: Buffer[] = [];
  const decoded = decodeBackup(Readable.from(bytes.length === 0 ? [] : [bytes]), options);
  try {
    for await (const chunk of decoded) chunks.push(chunk as Buffer);
  } catch (err) {
    await closed(decoded);
    return { released: Buffer.concat(chunks), error: err as Error };
  }
  assert.fail(`decoding succeeded with ${Buffer.concat(chunks).length} bytes`);
}

export function assertCode(err: unknown, code: ErrorCode, message?: RegExp): void {
  assert.ok(isCofferError(err), `expected CofferError ${code}, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  if (message !== undefined) assert.match(err.message, message);
}

export interface Layout {
  header: Buffer;
  /** each frame whole: flags, length, body and tag */
  frames: Buffer[];
  sealed: boolean;
}

/** Reads an object by the layout documented in backup-format.ts, independently of the decoder. */
export function layoutOf(bytes: Buffer): Layout {
  assert.equal(bytes.toString('ascii', 0, 8), 'COFFERBK');
  const sealed = bytes[10] === 1;
  const keyIdLength = bytes[15]!;
  const headerLength = 16 + keyIdLength + (sealed ? 32 : 0);
  const frames: Buffer[] = [];
  let at = headerLength;
  while (at < bytes.length) {
    const length = bytes.readUInt32BE(at + 1);
    const end = at + 5 + length + (sealed ? 16 : 0);
    frames.push(bytes.subarray(at, end));
    at = end;
  }
  assert.equal(at, bytes.length, 'the frames fill the object exactly');
  return { header: bytes.subarray(0, headerLength), frames, sealed };
}

/**
 * Resolves once `stream` emitted 'close' (at once if it has), whatever error it had: the codec's
 * promise is that no zstd is left by then. An error may reach a reader earlier than that (an
 * iterator started on an already destroyed stream throws at once).
 */
export function closed(stream: Readable): Promise<void> {
  if (stream.closed) return Promise.resolve();
  return new Promise((resolve) => stream.once('close', () => resolve()));
}

export function isFinal(frame: Buffer): boolean {
  return frame[0] === 1;
}

/** pids of live zstd processes whose parent is this test process */
export function zstdChildren(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      let stat: string;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      } catch {
        return false; // gone meanwhile
      }
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return comm === 'zstd' && Number(ppid) === process.pid && state !== 'Z';
    })
    .map(Number);
}

/**
 * A source of random bytes made as it is read, `size` bytes in 64 KiB chunks (endless when
 * `size` is Infinity), hashing what it produced and counting how far it ran.
 */
export class RandomSource extends Readable {
  produced = 0;
  readonly #hash = createHash('sha256');

  constructor(readonly size: number) {
    super({ highWaterMark: 64 * 1024 });
  }

  override _read(): void {
    const n = Math.min(64 * 1024, this.size - this.produced);
    if (n <= 0) {
      this.push(null);
      return;
    }
    const chunk = randomBytes(n);
    this.#hash.update(chunk);
    this.produced += n;
    this.push(chunk);
  }

  sha256(): string {
    return this.#hash.copy().digest('hex');
  }
}
