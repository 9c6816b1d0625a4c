import { CofferError } from '../common/index.js';

// The names every adapter accepts, so that an object stored in one kind of storage can be named
// the same way in another. A name is one or more `/`-separated parts (backups are named
// `<backup-id>.zst.enc`, WAL segments `<instance-id>/wal/<segment>`); no part is empty or starts
// with a dot, which rules out `.` and `..` (no escape from a local root) and keeps dot-names free
// for the adapters' own records and temporary files, which listings then skip.

// Room is left for what adapters add: Swift segment suffixes (S3 and Swift allow 1024 bytes),
// the local adapter's `.<part>.meta.json` records (ext4 allows 255 bytes a file name).
const maxNameBytes = 900;
const maxPartBytes = 200;
const controlCharacters = /[\u0000-\u001f\u007f]/;
const metadataKey = /^[a-z0-9-]{1,64}$/;
/** Swift refuses metadata values longer than 256 bytes, S3 more than 2 KiB of metadata in all */
const maxMetadataValueBytes = 256;
const maxMetadataBytes = 2048;

/** Metadata keys the adapters keep for themselves. */
export const reservedMetadataKeys: ReadonlySet<string> = new Set(['sha256']);

export function checkObjectName(name: string): void {
  const refuse = (why: string) => {
    throw new CofferError('BadRequest', `Backup object name ${JSON.stringify(name)} is not allowed: ${why}.`);
  };
  if (name === '') refuse('it is empty');
  if (Buffer.byteLength(name) > maxNameBytes) refuse(`it is longer than ${maxNameBytes} bytes`);
  if (controlCharacters.test(name)) refuse('it contains a control character');
  for (const part of name.split('/')) {
    if (part === '') refuse('it has an empty part (a leading, trailing or doubled /)');
    if (part.startsWith('.')) refuse('a part starts with a dot');
    if (Buffer.byteLength(part) > maxPartBytes) refuse(`a part is longer than ${maxPartBytes} bytes`);
  }
}

/** A list prefix may end anywhere in a name but follows the same rules up to there. */
export function checkObjectPrefix(prefix: string): void {
  if (prefix === '') return;
  if (controlCharacters.test(prefix) || prefix.split('/').some((part, i, all) => part.startsWith('.') || (part === '' && i < all.length - 1))) {
    throw new CofferError('BadRequest', `Backup object prefix ${JSON.stringify(prefix)} cannot match any object name.`);
  }
}

export function checkMetadata(metadata: Record<string, string>): void {
  let total = 0;
  for (const [key, value] of Object.entries(metadata)) {
    if (!metadataKey.test(key) || reservedMetadataKeys.has(key)) {
      throw new CofferError('BadRequest', `Backup object metadata key ${JSON.stringify(key)} is not allowed: use [a-z0-9-], not ${[...reservedMetadataKeys].join(', ')}.`);
    }
    const bytes = Buffer.byteLength(encodeMetadataValue(value));
    if (bytes > maxMetadataValueBytes) {
      throw new CofferError('BadRequest', `Backup object metadata ${key} is longer than ${maxMetadataValueBytes} bytes once encoded.`);
    }
    total += key.length + bytes;
  }
  if (total > maxMetadataBytes) {
    throw new CofferError('BadRequest', `Backup object metadata is larger than ${maxMetadataBytes} bytes once encoded.`);
  }
}

// HTTP header values carry ASCII only: Swift and S3 metadata values are percent-encoded.
export function encodeMetadataValue(value: string): string {
  return encodeURIComponent(value);
}

export function decodeMetadataValue(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value; // set by another client, not encoded
  }
}

/** Refuses a container name that does not match an adapter's `pattern` (described by `rule`). */
export function checkContainerName(container: string, pattern: RegExp, rule: string): void {
  if (!pattern.test(container)) {
    throw new CofferError('BadRequest', `Backup container name ${JSON.stringify(container)} is not allowed: ${rule}.`);
  }
}
