import type { Readable } from 'node:stream';

// The backup storage port: where backup objects live. Three adapters implement it (a local
// directory, Swift, S3) and one conformance suite (test/backup/storage.suite.ts) holds each to
// the same behaviour. Objects are opaque bytes here: what is in them (compressed, encrypted
// engine output) is the codec's business (backup-codec.ts), and which object belongs to which
// backup is the state DB's.
//
// Errors are CofferErrors:
// - `NotFound`: the container or object does not exist (get, head answers undefined instead);
// - `Unauthorized`: the storage refused the adapter's credentials;
// - `BackupStorageUnavailable`: the storage could not be reached or failed (5xx, reset, timeout);
// - `ChecksumMismatch`: the bytes read back are not the bytes stored (`get` with `expectedSha256`).
// Each message says what to check next (the endpoint, the credentials, the container).

/** What the storage holds under one name. */
export interface StoredObject {
  name: string;
  /** bytes stored */
  size: number;
  /** SHA-256 of the bytes stored, lowercase hex: computed while storing, recorded with the object */
  sha256: string;
  /** small string metadata given to `put` (keys `[a-z0-9-]+`), returned by `head` and `list` */
  metadata: Record<string, string>;
}

export interface PutOptions {
  metadata?: Record<string, string>;
  /** aborting stops the upload; nothing remains under the name */
  signal?: AbortSignal;
  /** told the bytes stored so far, now and then (for progress); must not throw */
  onProgress?: (bytes: number) => void;
}

export interface GetOptions {
  /**
   * The stream errors with `ChecksumMismatch` (before it ends) when the bytes read differ from
   * this SHA-256; a consumer that reached the end without an error read exactly what was stored.
   */
  expectedSha256?: string;
  signal?: AbortSignal;
}

export interface BackupStorage {
  /** 'local' | 'swift' | 's3', for logs and the backup view's locationRef */
  readonly kind: string;
  /**
   * Makes sure `container` exists (creating it when missing) and that the credentials may
   * write to it: the check a backup request makes before it is accepted.
   */
  ensureContainer(container: string): Promise<void>;
  /**
   * Stores `body` whole under `container`/`name` and resolves with what was stored. The object
   * appears under its name only once every byte is stored: a put that fails, is aborted or whose
   * body errors rejects and leaves nothing under `name` (partial segments or parts are removed).
   * A put over an existing name replaces it.
   */
  put(container: string, name: string, body: Readable, options?: PutOptions): Promise<StoredObject>;
  /** Reads an object; `NotFound` when it does not exist. */
  get(container: string, name: string, options?: GetOptions): Promise<Readable>;
  /** The object's record, or undefined when it does not exist; `NotFound` when the container does not. */
  head(container: string, name: string): Promise<StoredObject | undefined>;
  /** The complete objects whose names start with `prefix`, by name; never a partial upload. */
  list(container: string, prefix?: string): Promise<StoredObject[]>;
  /**
   * Removes an object (with its segments or parts) and whatever unfinished puts of that name
   * hold (the segments, parts or temporary file of a writer that died mid-put: a put still
   * running under the name then fails); a missing one is not an error.
   */
  delete(container: string, name: string): Promise<void>;
  /**
   * A URL-like reference to the object for users (Trove's locationRef); never carries credentials.
   * Swift with tempauth learns its account's URL when it first authenticates: ask after
   * `ensureContainer` or `put` (it throws Internal before).
   */
  locationOf(container: string, name: string): string;
  /** Releases connections. */
  close(): Promise<void>;
}
