import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { link, open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { inspect } from 'node:util';
import { CofferError } from '../common/index.js';

// Backup keys come in two layers. Each project has its own data key, which seals its backups
// (backup-codec.ts); the state DB keeps it wrapped (AES-256-GCM) under one master key that only
// the control plane holds, in a file only Coffer's user can read. Whoever reads the state DB
// alone gets no backup; whoever reads a bucket alone gets nothing either. A wrapped key names
// the project it belongs to in its authenticated data, so it cannot be copied onto another
// project's row to open that project's backups with a key that is not its own.

export const backupKeyBytes = 32;

/** How an operator makes a master key; repeated in the messages that ask for one. */
export const masterKeyHowTo =
  'head -c 32 /dev/urandom | base64 > /etc/coffer/backup-master.key; chmod 600 /etc/coffer/backup-master.key';

/**
 * A fingerprint naming a key in backup headers, wrapped keys and messages without revealing it:
 * an HMAC under the key itself, so that it says nothing about the key but which one it is.
 */
export function backupKeyId(key: Buffer): string {
  return createHmac('sha256', key).update('coffer backup key id').digest('hex').slice(0, 16);
}

// the master key's bytes, reachable from this module only
const masterBytes = new WeakMap<MasterKey, Buffer>();

function bytesOf(master: MasterKey): Buffer {
  const bytes = masterBytes.get(master);
  if (bytes === undefined) throw new CofferError('Internal', 'Not a backup master key.');
  return bytes;
}

/** The control plane's master key. It prints, inspects and serialises as its id, never its bytes. */
export class MasterKey {
  readonly id: string;

  private constructor(bytes: Buffer) {
    const copy = Buffer.from(bytes);
    masterBytes.set(this, copy);
    this.id = backupKeyId(copy);
  }

  static generate(): MasterKey {
    return new MasterKey(randomBytes(backupKeyBytes));
  }

  /**
   * A key as a key file holds it: 32 raw bytes, or 64 hex digits, or base64 of 32 bytes (text
   * may end with a newline). `source` names it in errors; the content is never repeated.
   */
  static fromFileContent(content: Buffer, source = 'The backup master key'): MasterKey {
    // 32 bytes of text are a short key typed by hand, not raw bytes: 32 random bytes are all
    // printable with a chance of about 1 in 10^14
    if (content.length === backupKeyBytes && !/^[\x20-\x7e\s]*$/.test(content.toString('latin1'))) return new MasterKey(content);
    const text = content.toString('utf8').trim();
    if (/^[0-9a-fA-F]{64}$/.test(text)) return new MasterKey(Buffer.from(text, 'hex'));
    if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) {
      const bytes = Buffer.from(text, 'base64');
      if (bytes.length === backupKeyBytes) return new MasterKey(bytes);
    }
    throw new CofferError(
      'BadRequest',
      `${source} does not hold a 32-byte key (as 32 raw bytes, 64 hex digits or base64 of 32 bytes). Make one with: ${masterKeyHowTo}`,
    );
  }

  toJSON(): string {
    return `[backup master key ${this.id}]`;
  }

  toString(): string {
    return `[backup master key ${this.id}]`;
  }

  [inspect.custom](): string {
    return `[backup master key ${this.id}]`;
  }
}

/**
 * Reads the master key file, refusing one that the group or others may read: a tenant's engine
 * user (or anyone else on the host) who reads it can open every project's backups.
 */
export async function readMasterKeyFile(path: string): Promise<MasterKey> {
  let mode: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new CofferError('BadRequest', `The backup master key file ${path} is not a regular file.`);
    mode = info.mode & 0o777;
  } catch (err) {
    if (err instanceof CofferError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new CofferError(
      'BadRequest',
      `Cannot read the backup master key file ${path} (${code ?? String(err)}). Every control-plane role needs the same key; make one with: ${masterKeyHowTo}`,
      { cause: err },
    );
  }
  if ((mode & 0o077) !== 0) {
    throw new CofferError(
      'BadRequest',
      `The backup master key file ${path} can be read by other users (mode ${mode.toString(8).padStart(4, '0')}); whoever reads it can decrypt every project's backups. Run: chmod 600 ${path}`,
    );
  }
  return MasterKey.fromFileContent(await readFile(path), `The backup master key file ${path}`);
}

/**
 * The master key of `coffer serve`: read from `path`, or made there when absent. Losing this
 * file loses every backup, so a new key is written whole and synced before it appears under its
 * name (a crash never leaves an empty or half key file), and a concurrent start that made its
 * own key first wins: both end up with the one on disk.
 */
export async function readOrCreateMasterKeyFile(path: string): Promise<MasterKey> {
  try {
    return await readMasterKeyFile(path);
  } catch (err) {
    const missing = err instanceof CofferError && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
    if (!missing) throw err;
  }
  const key = MasterKey.generate();
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.new`;
  try {
    const file = await open(temporary, 'wx', 0o600);
    try {
      await file.writeFile(`${bytesOf(key).toString('hex')}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      // link, unlike rename, never replaces a key another process put there meanwhile
      await link(temporary, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      return await readMasterKeyFile(path);
    }
    await syncDirectory(dirname(path));
    return key;
  } catch (err) {
    if (err instanceof CofferError) throw err;
    throw new CofferError(
      'BadRequest',
      `Cannot create the backup master key file ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)}): check that its directory exists and is writable by Coffer's user.`,
      { cause: err },
    );
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** A fresh data key for a project's backups. */
export function newProjectKey(): Buffer {
  return randomBytes(backupKeyBytes);
}

// v1.<master key id>.<base64url of nonce (12) | sealed key (32) | tag (16)>: 97 characters of
// ASCII for a text column. The master key's id is there to tell "the master key changed" apart
// from "this string was altered" when unwrapping fails.
const wrapVersion = 'v1';
const nonceBytes = 12;
const tagBytes = 16;

function wrapAad(masterId: string, context: string): Buffer {
  return Buffer.from(`coffer data key ${wrapVersion}\0${masterId}\0${context}`, 'utf8');
}

function checkContext(context: string): void {
  if (context === '') throw new CofferError('Internal', 'A data key must be wrapped for a project: the context is empty.');
}

/** Seals `key` under the master key for the project `context` (its id): a string to store. */
export function wrapKey(master: MasterKey, key: Buffer, context: string): string {
  checkContext(context);
  if (key.length !== backupKeyBytes) {
    throw new CofferError('Internal', `A backup data key has ${backupKeyBytes} bytes, not ${key.length}.`);
  }
  const nonce = randomBytes(nonceBytes);
  const cipher = createCipheriv('aes-256-gcm', bytesOf(master), nonce, { authTagLength: tagBytes });
  cipher.setAAD(wrapAad(master.id, context));
  const sealed = Buffer.concat([cipher.update(key), cipher.final()]);
  const body = Buffer.concat([nonce, sealed, cipher.getAuthTag()]);
  return `${wrapVersion}.${master.id}.${body.toString('base64url')}`;
}

/**
 * Opens a string made by {@link wrapKey} for the same project. Fails with
 * BackupDecryptionFailed when it was wrapped under another master key, for another project, or
 * altered.
 */
export function unwrapKey(master: MasterKey, wrapped: string, context: string): Buffer {
  checkContext(context);
  const parts = wrapped.split('.');
  const [version, masterId, encoded] = parts;
  if (parts.length !== 3 || version !== wrapVersion || masterId === undefined || encoded === undefined) {
    throw new CofferError(
      'BackupDecryptionFailed',
      `The backup data key stored for project ${context} is not a wrapped key this Coffer can read (it should start with "${wrapVersion}."): it was altered, or written by a newer Coffer.`,
    );
  }
  if (masterId !== master.id) {
    throw new CofferError(
      'BackupDecryptionFailed',
      `The backup data key of project ${context} was wrapped under master key ${masterId}, but this Coffer's master key is ${master.id}: was the backup master key file replaced? Restore the original key file to read this project's backups.`,
    );
  }
  const body = Buffer.from(encoded, 'base64url');
  if (body.length !== nonceBytes + backupKeyBytes + tagBytes || body.toString('base64url') !== encoded) {
    throw new CofferError('BackupDecryptionFailed', `The backup data key stored for project ${context} is damaged: it was altered.`);
  }
  const decipher = createDecipheriv('aes-256-gcm', bytesOf(master), body.subarray(0, nonceBytes), { authTagLength: tagBytes });
  decipher.setAAD(wrapAad(masterId, context));
  decipher.setAuthTag(body.subarray(nonceBytes + backupKeyBytes));
  try {
    return Buffer.concat([decipher.update(body.subarray(nonceBytes, nonceBytes + backupKeyBytes)), decipher.final()]);
  } catch (err) {
    throw new CofferError(
      'BackupDecryptionFailed',
      `The backup data key stored for project ${context} cannot be unwrapped with master key ${master.id}: it was altered, or it belongs to another project.`,
      { cause: err },
    );
  }
}
