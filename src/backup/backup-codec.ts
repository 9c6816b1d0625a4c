import { randomBytes } from 'node:crypto';
import { Socket } from 'node:net';
import { type Duplex, PassThrough, Readable, type Writable, addAbortSignal, pipeline } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { CofferError } from '../common/index.js';
import { type BackupCompression, checkKeyId, defaultFrameSize, maxFrameSize, objectKey, saltBytes, writeBackupHeader } from './backup-format.js';
import { backupKeyBytes, backupKeyId } from './backup-keys.js';
import { FrameOpener } from './frame-opener.js';
import { FrameSealer } from './frame-sealer.js';
import { ZstdStream, zstdCompressArgs, zstdDecompressArgs, zstdProgram } from './zstd-stream.js';

// How engine output becomes a stored backup object and back: compressed by zstd (by default),
// then cut into frames each sealed with AES-256-GCM under a key derived from the project's data
// key; backup-format.ts has the layout and why a reordered, truncated, extended or altered
// object fails to decode (BackupDecryptionFailed) instead of restoring something shorter.
//
// Both directions are streams end to end: memory holds a few frames, whatever the backup's
// size, and a slow reader slows the source down. The stream returned emits 'close' only after
// every stage behind it closed, zstd included (killed and reaped when the stream is destroyed,
// fails or is aborted; its error may reach a reader a moment before), and destroying it
// destroys `source` too (an engine tool's stream kills the tool).

export type { BackupCompression } from './backup-format.js';

export interface EncodeOptions {
  compression: BackupCompression;
  /** the project's 32-byte data key; absent: stored unencrypted (only for tests of the codec) */
  key?: Buffer;
  /**
   * an identifier of the key, written in the header so that a restore names the key it needs;
   * default: backupKeyId(key)
   */
  keyId?: string;
  signal?: AbortSignal;
  /** plaintext bytes per frame (default 1 MiB; tests use small frames to get many) */
  frameSize?: number;
  /** the zstd program (tests point it elsewhere) */
  zstdPath?: string;
}

export interface DecodeOptions {
  /** the key the object was sealed with; a wrong one fails with BackupDecryptionFailed */
  key?: Buffer;
  signal?: AbortSignal;
  /** the zstd program (tests point it elsewhere) */
  zstdPath?: string;
}

/** Turns engine output into the bytes of a backup object. */
export function encodeBackup(source: Readable, options: EncodeOptions): Readable {
  return startBackupEncoding(options).from(source);
}

/**
 * An encoding started before its input is known, so that the engine's tool can be started
 * writing into zstd itself: the uncompressed output, three times the stored bytes, then never
 * passes through this process, which on a busy host of two cores spends as much CPU carrying
 * it from one pipe to the next as zstd spends compressing it. Exactly one of `fedDirectly`,
 * `from` and `cancel` is called.
 */
export interface BackupEncoding {
  /**
   * zstd's stdin (undefined without compression): a process started with it as its stdout
   * (StreamOptions.stdout) writes the engine output into zstd itself; then call `fedDirectly`.
   */
  readonly input: Writable | undefined;
  /**
   * The process given `input` was started: the object's bytes, which end once that process
   * closed its output (exited) and zstd exited 0. That process's exit status is the caller's
   * to check: a tool that dies midway leaves zstd a shorter input, which it encodes whole.
   */
  fedDirectly(): Readable;
  /** The engine output is `source` (as encodeBackup). */
  from(source: Readable): Readable;
  /** No input comes: zstd is stopped. */
  cancel(): void;
}

export function startBackupEncoding(options: EncodeOptions): BackupEncoding {
  const frameSize = options.frameSize ?? defaultFrameSize;
  if (!Number.isInteger(frameSize) || frameSize < 1 || frameSize > maxFrameSize) {
    throw new CofferError('Internal', `A backup frame holds 1 to ${maxFrameSize} bytes, not ${frameSize}.`);
  }
  const key = options.key;
  if (key !== undefined) checkKey(key);
  const keyId = key === undefined ? '' : (options.keyId ?? backupKeyId(key));
  if (key !== undefined) checkKeyId(keyId);
  const salt = key === undefined ? Buffer.alloc(0) : randomBytes(saltBytes);
  const header = writeBackupHeader({ compression: options.compression, sealed: key !== undefined, frameSize, keyId, salt });
  const zstd = options.compression === 'zstd' ? new ZstdStream(options.zstdPath ?? zstdProgram, zstdCompressArgs) : undefined;
  const stages: Duplex[] = [];
  if (zstd !== undefined) stages.push(zstd);
  stages.push(new FrameSealer(header, frameSize, key === undefined ? undefined : objectKey(key, salt)));
  return {
    input: zstd?.stdin,
    fedDirectly: () => {
      if (zstd === undefined) throw new CofferError('Internal', 'An uncompressed backup has no input for a process to write into.');
      zstd.inputHandedOver();
      // the stages' writable side takes no bytes now, only the end
      return connect(Readable.from([]), stages, options.signal);
    },
    from: (source) => connect(source, stages, options.signal),
    cancel: () => {
      for (const stage of stages) stage.destroy();
    },
  };
}

/** Turns the bytes of a backup object back into the engine output it was made from. */
export function decodeBackup(source: Readable, options: DecodeOptions): Readable {
  if (options.key !== undefined) checkKey(options.key);
  const zstd = new ZstdStream(options.zstdPath ?? zstdProgram);
  // the header says whether the content is compressed; it is read before any content is pushed
  const opener = new FrameOpener(options.key, (header) => {
    if (header.compression === 'zstd') zstd.start(zstdDecompressArgs);
    else zstd.passThrough();
  });
  return connect(source, [opener, zstd], options.signal);
}

/**
 * decodeBackup into `sink`, the stdin of the process that restores the engine output (tar,
 * mbstream): resolves once the whole object decoded and the sink took all of it, rejects as the
 * decoded stream would fail. When the sink is a descriptor (a child process's pipe), zstd
 * writes into it directly: the decompressed bytes, about three times the object's, never pass
 * through this process (which on a busy host spends less CPU on them than it would reading
 * them from zstd and writing them on). Only frames that verified reach zstd either way.
 *
 * When the sink's process stops reading, the rejection is not a CofferError (as a write to its
 * closed pipe would not be either): that process's own exit status says why.
 */
export async function decodeBackupInto(source: Readable, sink: Writable, options: DecodeOptions): Promise<void> {
  let decoded: Readable;
  if (sink instanceof Socket) {
    if (options.key !== undefined) checkKey(options.key);
    const zstd = new ZstdStream(options.zstdPath ?? zstdProgram, undefined, sink);
    const opener = new FrameOpener(options.key, (header) => {
      if (header.compression === 'zstd') zstd.start(zstdDecompressArgs);
      else zstd.passThrough();
    });
    decoded = connect(source, [opener, zstd], options.signal);
  } else {
    decoded = decodeBackup(source, options);
  }
  try {
    // zstd's end (it exited 0 after all its input) ends the sink: only then does the process see EOF
    await pipelineAsync(decoded, sink);
  } finally {
    // settled only once zstd is gone, as decodeBackup's stream closes only then
    if (!decoded.closed) await new Promise((resolve) => decoded.once('close', resolve));
  }
}

function checkKey(key: Buffer): void {
  if (key.length !== backupKeyBytes) {
    throw new CofferError('Internal', `A backup data key has ${backupKeyBytes} bytes, not ${key.length}.`);
  }
}

/**
 * The end of a chain of stages: it closes only once every stage closed, so that whoever waits
 * for it knows no child process is left, and destroying it tears the whole chain down.
 */
class ChainEnd extends PassThrough {
  readonly #upstream: readonly Readable[];
  readonly #stages: readonly Duplex[];

  constructor(source: Readable, stages: readonly Duplex[]) {
    super({ highWaterMark: 1024 * 1024 });
    this.#upstream = [source, ...stages];
    this.#stages = stages;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    for (const stream of this.#upstream) {
      if (!stream.destroyed) stream.destroy(error ?? undefined);
    }
    // the source is the caller's: it is destroyed, but only our own stages are waited for
    const waits = this.#stages.filter((stage) => !stage.closed).map((stage) => new Promise<void>((resolve) => stage.once('close', () => resolve())));
    Promise.all(waits).then(
      () => callback(error),
      () => callback(error),
    );
  }
}

function connect(source: Readable, stages: readonly Duplex[], signal: AbortSignal | undefined): Readable {
  const end = new ChainEnd(source, stages);
  // errors travel down to `end` (pipeline destroys every stream with the first error); the
  // consumer hears them there
  pipeline([source, ...stages, end], () => undefined);
  if (signal !== undefined) addAbortSignal(signal, end);
  return end;
}
