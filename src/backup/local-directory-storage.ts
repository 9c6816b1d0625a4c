import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, sep } from 'node:path';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { CofferError } from '../common/index.js';
import { checkContainerName, checkMetadata, checkObjectName, checkObjectPrefix } from './object-names.js';
import type { BackupStorage, GetOptions, PutOptions, StoredObject } from './storage.js';
import { checksumMismatch, containerMissing, describeCause, objectMissing } from './storage-errors.js';
import { verifiedStream } from './verified-stream.js';

// Backup objects as files under a root directory that must already exist (a volume that is not
// mounted must not be written to in its place): `<root>/<container>/<name>`, a name's `/` making
// subdirectories. Beside each object, `.<file>.meta.json` records its size, SHA-256 and metadata,
// so that head and list do not read the object. A put writes both to temporary dot-files in the
// object's directory, syncs them, renames the record and then the object into place: nothing
// shows under the name until that last rename. A record whose size is not the file's (a put that
// stopped between the renames) makes the object invisible. Directories are 0700 and files 0600:
// the root-run control plane reads them, the engines' OS users do not.

const recordSuffix = '.meta.json';
const progressEveryBytes = 8 * 1024 * 1024;
const readChunkBytes = 1024 * 1024;

interface ObjectRecord {
  size: number;
  sha256: string;
  metadata: { [key: string]: string };
}

export class LocalDirectoryStorage implements BackupStorage {
  readonly kind = 'local';
  readonly root: string;

  constructor(root: string) {
    if (!isAbsolute(root)) throw new CofferError('BadRequest', `The backup directory ${root} must be an absolute path.`);
    this.root = root.replace(/\/+$/, '') || '/';
  }

  async ensureContainer(container: string): Promise<void> {
    const dir = await this.containerDir(container, false);
    await this.fs(() => mkdir(dir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    }), dir);
    // an existing container made with a looser mode is tightened too
    await this.fs(() => chmod(dir, 0o700), dir);
  }

  async put(container: string, name: string, body: Readable, options: PutOptions = {}): Promise<StoredObject> {
    checkObjectName(name);
    const metadata = { ...options.metadata };
    checkMetadata(metadata);
    const containerDir = await this.containerDir(container, true);
    const path = join(containerDir, name);
    const dir = dirname(path);
    const stamp = randomBytes(6).toString('hex');
    const temp = join(dir, `.${basename(path)}.${stamp}.tmp`);
    const tempRecord = join(dir, `.${basename(path)}.${stamp}.meta.tmp`);
    try {
      // a concurrent delete may prune a directory just made: made again once
      const file = await this.fs(
        () => this.makeDirs(containerDir, dir).then(() => open(temp, 'wx', 0o600)),
        dir,
      ).catch(async (err: unknown) => {
        if (!(err instanceof CofferError && err.code === 'NotFound')) throw err;
        await this.makeDirs(containerDir, dir);
        return this.fs(() => open(temp, 'wx', 0o600), dir);
      });
      const { size, sha256 } = await this.write(file, body, temp, options);
      const record: ObjectRecord = { size, sha256, metadata };
      await this.fs(async () => {
        const handle = await open(tempRecord, 'wx', 0o600);
        try {
          await handle.writeFile(JSON.stringify(record));
          await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(tempRecord, recordPath(path));
        await rename(temp, path);
        await syncDir(dir);
      }, dir);
      return { name, size, sha256, metadata };
    } catch (err) {
      await Promise.all([rm(temp, { force: true }), rm(tempRecord, { force: true })]).catch(() => undefined);
      throw err;
    }
  }

  async get(container: string, name: string, options: GetOptions = {}): Promise<Readable> {
    checkObjectName(name);
    const path = join(await this.containerDir(container, true), name);
    if ((await this.recordOf(path, name)) === undefined) throw objectMissing(container, name, this.root);
    // 1 MiB reads: a sixteenth of the default's reads and stream hops for a backup's gigabytes
    const source = createReadStream(path, { highWaterMark: readChunkBytes, ...(options.signal === undefined ? {} : { signal: options.signal }) });
    return verifiedStream(
      source,
      (err) => (options.signal?.aborted ? (options.signal.reason as Error) : this.fsError(err, path)),
      options.expectedSha256,
      (actual) => checksumMismatch(container, name, options.expectedSha256!, actual),
    );
  }

  async head(container: string, name: string): Promise<StoredObject | undefined> {
    checkObjectName(name);
    return this.recordOf(join(await this.containerDir(container, true), name), name);
  }

  async list(container: string, prefix = ''): Promise<StoredObject[]> {
    checkObjectPrefix(prefix);
    const containerDir = await this.containerDir(container, true);
    const start = join(containerDir, prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '');
    const found: StoredObject[] = [];
    const walk = async (dir: string): Promise<void> => {
      const entries = await this.fs(() => readdir(dir, { withFileTypes: true }), dir).catch((err: unknown) => {
        if (err instanceof CofferError && err.code === 'NotFound') return [];
        throw err;
      });
      for (const entry of entries) {
        if (entry.name.startsWith('.')) continue; // records and temporary files
        const path = join(dir, entry.name);
        const name = relative(containerDir, path).split(sep).join('/');
        if (entry.isDirectory()) {
          if (name.startsWith(prefix) || prefix.startsWith(`${name}/`)) await walk(path);
        } else if (entry.isFile() && name.startsWith(prefix)) {
          const record = await this.recordOf(path, name);
          if (record !== undefined) found.push(record);
        }
      }
    };
    await walk(start);
    return found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async delete(container: string, name: string): Promise<void> {
    checkObjectName(name);
    const containerDir = await this.containerDir(container, false);
    const path = join(containerDir, name);
    await this.fs(async () => {
      await rm(path, { force: true });
      await rm(recordPath(path), { force: true });
      // what puts of the name left when their process died between writing and renaming
      const entries = await readdir(dirname(path)).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? [] : Promise.reject(err)));
      const unfinished = entries.filter((entry) => isTemporaryOf(entry, basename(path)));
      await Promise.all(unfinished.map((entry) => rm(join(dirname(path), entry), { force: true })));
    }, path);
    // directories that only held this object go too (a WAL name's `<instance>/wal/`)
    for (let dir = dirname(path); dir !== containerDir && dir.startsWith(containerDir); dir = dirname(dir)) {
      const removed = await rmdir(dir).then(() => true, () => false);
      if (!removed) break;
    }
  }

  locationOf(container: string, name: string): string {
    return pathToFileURL(join(this.root, container, name)).href;
  }

  async close(): Promise<void> {
    // nothing is held open between calls
  }

  private async write(file: FileHandle, body: Readable, temp: string, options: PutOptions): Promise<{ size: number; sha256: string }> {
    const hash = createHash('sha256');
    let size = 0;
    let reported = 0;
    const count = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        size += chunk.length;
        if (size - reported >= progressEveryBytes) {
          reported = size;
          options.onProgress?.(size);
        }
        callback(null, chunk);
      },
    });
    // written and synced through the handle itself: a stream made from a FileHandle keeps it
    // from closing unless the stream closes it, and then no sync could come in between
    let failed: unknown;
    const out = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        file.write(chunk).then(
          () => callback(),
          (err: unknown) => callback((failed = err) as Error),
        );
      },
      final(callback) {
        file.sync().then(
          () => callback(),
          (err: unknown) => callback((failed = err) as Error),
        );
      },
    });
    try {
      await pipeline(body, count, out, options.signal === undefined ? {} : { signal: options.signal });
    } catch (err) {
      // the body's own failure (or the abort) is the caller's; a write failure is the storage's
      throw failed !== undefined ? this.fsError(failed, temp) : err;
    } finally {
      await file.close();
    }
    if (size !== reported) options.onProgress?.(size);
    return { size, sha256: hash.digest('hex') };
  }

  private async recordOf(path: string, name: string): Promise<StoredObject | undefined> {
    const absent = (err: unknown): undefined => {
      const code = (err as NodeJS.ErrnoException).code;
      // ENOTDIR: a part of the name is an object, so nothing is stored under the name
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw this.fsError(err, path);
    };
    const [file, text] = await Promise.all([stat(path).catch(absent), readFile(recordPath(path), 'utf8').catch(absent)]);
    if (file === undefined || text === undefined || !file.isFile()) return undefined;
    let record: ObjectRecord;
    try {
      record = JSON.parse(text) as ObjectRecord;
    } catch {
      return undefined; // not a record this adapter wrote
    }
    if (record.size !== file.size) return undefined;
    return { name, size: record.size, sha256: record.sha256, metadata: record.metadata };
  }

  /** `<root>/<container>`; when `mustExist`, NotFound if it does not exist. */
  private async containerDir(container: string, mustExist: boolean): Promise<string> {
    checkContainerName(container, /^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$/, 'letters, digits, _ . -, up to 200, starting with a letter or digit');
    const rootStat = await stat(this.root).catch((err: unknown) => {
      throw new CofferError(
        'BackupStorageUnavailable',
        `The backup directory ${this.root} cannot be used (${describeCause(err)}): create it, or mount the volume it lives on.`,
        { cause: err },
      );
    });
    if (!rootStat.isDirectory()) {
      throw new CofferError('BackupStorageUnavailable', `The backup directory ${this.root} is not a directory: configure a directory.`);
    }
    const dir = join(this.root, container);
    if (mustExist) {
      const exists = await stat(dir).then((s) => s.isDirectory(), () => false);
      if (!exists) throw containerMissing(container, this.root);
    }
    return dir;
  }

  private async makeDirs(containerDir: string, dir: string): Promise<void> {
    if (dir !== containerDir) await mkdir(dir, { recursive: true, mode: 0o700 });
  }

  /** Runs a file operation, its failures turned into storage errors about `path`. */
  private async fs<T>(operation: () => Promise<T>, path: string): Promise<T> {
    try {
      return await operation();
    } catch (err) {
      throw this.fsError(err, path);
    }
  }

  private fsError(err: unknown, path: string): Error {
    if (err instanceof CofferError) return err;
    const code = (err as NodeJS.ErrnoException).code;
    switch (code) {
      case 'ENOENT':
        return new CofferError('NotFound', `${path} does not exist.`, { cause: err });
      case 'EACCES':
      case 'EPERM':
        return new CofferError('Unauthorized', `Coffer may not write to ${path}: check the backup directory's owner and mode.`, { cause: err });
      case 'ENOTDIR':
      case 'EISDIR':
      case 'EEXIST': // making a folder where an object is
        return new CofferError('BadRequest', `${path} conflicts with another backup object (a name is both an object and a folder of objects).`, { cause: err });
      case 'ENOSPC':
      case 'EDQUOT':
        return new CofferError('BackupStorageUnavailable', `No space is left for ${path}: free space in the backup directory ${this.root}.`, { cause: err });
      default:
        return new CofferError('BackupStorageUnavailable', `The backup directory ${this.root} failed (${describeCause(err)}) on ${path}: check the disk.`, { cause: err });
    }
  }
}

function recordPath(path: string): string {
  return join(dirname(path), `.${basename(path)}${recordSuffix}`);
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Whether `entry` is a temporary file of a put of the object whose file name is `base` (see put). */
function isTemporaryOf(entry: string, base: string): boolean {
  return entry.startsWith(`.${base}.`) && /^[0-9a-f]{12}(\.meta)?\.tmp$/.test(entry.slice(base.length + 2));
}
