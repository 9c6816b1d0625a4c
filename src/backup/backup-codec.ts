import type { Readable } from 'node:stream';

// INTERFACE ONLY (implementation to come): how engine output becomes a stored backup object and
// back. A stored object is a small header (format version, compression, key id, nonce base)
// followed by the compressed (zstd by default) engine output cut into frames, each sealed with
// AES-256-GCM under the project's data key: a frame's nonce is derived from its index, and the
// last frame is marked final, so a reordered, truncated, extended or altered object fails to
// decode (BackupDecryptionFailed) instead of restoring something shorter.

export type BackupCompression = 'zstd' | 'none';

export interface EncodeOptions {
  compression: BackupCompression;
  /** the project's 32-byte data key; absent: stored unencrypted (only for tests of the codec) */
  key?: Buffer;
  /** an identifier of the key, written in the header so that a restore names the key it needs */
  keyId?: string;
  signal?: AbortSignal;
}

export interface DecodeOptions {
  /** the key the object was sealed with; a wrong one fails with BackupDecryptionFailed */
  key?: Buffer;
  signal?: AbortSignal;
}
