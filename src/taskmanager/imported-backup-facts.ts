import { CofferError } from '../common/index.js';
import type { DatastoreVersionRow } from '../db/index.js';

// What a restore needs to know of an imported backup, read from the object's own content as the
// import streams it through once (import-backup-flow.ts). A backup Coffer takes has these facts
// recorded by its guest, which watched the engine's output; an imported object has only itself.
// The guests' restores check the same facts (the PostgreSQL major of PG_VERSION, the Redis
// version an RDB records), so an import that records them lets a restore refuse what it cannot
// read as it refuses any other backup, and an object that is not the engine's backup at all
// fails the import instead of a restore later.
//
// Only PostgreSQL and Redis (common/engine-capabilities.ts importableBackupEngines): a MariaDB or
// MySQL restore needs its tool's LSNs, which live beside the object, not in it.

export type ImportedFacts = Record<string, string>;

/** Sees the backup's plaintext as it streams, then says what it is or why it is no backup of `version`. */
export interface ImportInspector {
  see(chunk: Buffer): void;
  facts(): ImportedFacts;
}

export function importInspector(version: DatastoreVersionRow): ImportInspector {
  if (version.manager === 'postgresql') return new BaseBackupTar(version);
  if (version.manager === 'redis') return new RdbFile(version);
  throw new CofferError('NotImplemented', `Importing backups is not supported for datastore ${version.manager} yet.`);
}

const notThe = (what: string, why: string) => new CofferError('BadRequest', `The object is not ${what} (${why}): it cannot be imported as one.`);

/**
 * pg_basebackup's tar (`-Ft`): 512-byte headers, each followed by its entry's data padded to
 * 512 bytes, ended by a zero block. Only `PG_VERSION` and `backup_label` are kept; the rest is
 * skipped as it passes.
 */
class BaseBackupTar implements ImportInspector {
  private pending = Buffer.alloc(0);
  /** data bytes of the current entry still to pass, then its padding */
  private dataLeft = 0;
  private padLeft = 0;
  private capture: { name: string; parts: Buffer[]; bytes: number } | undefined;
  private readonly kept = new Map<string, string>();
  private ended = false;
  private entries = 0;

  constructor(private readonly version: DatastoreVersionRow) {}

  see(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.ended) {
      if (this.dataLeft > 0) {
        const take = Math.min(this.dataLeft, chunk.length - at);
        if (this.capture !== undefined && this.capture.bytes < 64 * 1024) {
          this.capture.parts.push(Buffer.from(chunk.subarray(at, at + take)));
          this.capture.bytes += take;
        }
        this.dataLeft -= take;
        at += take;
        if (this.dataLeft === 0 && this.capture !== undefined) {
          this.kept.set(this.capture.name, Buffer.concat(this.capture.parts).toString('utf8'));
          this.capture = undefined;
        }
        continue;
      }
      if (this.padLeft > 0) {
        const take = Math.min(this.padLeft, chunk.length - at);
        this.padLeft -= take;
        at += take;
        continue;
      }
      const need = 512 - this.pending.length;
      const piece = chunk.subarray(at, at + need);
      this.pending = Buffer.concat([this.pending, piece]);
      at += piece.length;
      if (this.pending.length === 512) {
        this.header(this.pending);
        this.pending = Buffer.alloc(0);
      }
    }
  }

  private header(block: Buffer): void {
    if (block.every((b) => b === 0)) {
      this.ended = true;
      return;
    }
    if (block.toString('latin1', 257, 262) !== 'ustar') throw notThe('a PostgreSQL base backup', 'it is not a tar archive');
    const field = (from: number, length: number) => block.toString('utf8', from, from + length).replace(/\0.*$/s, '');
    const prefix = field(345, 155);
    const name = (prefix === '' ? field(0, 100) : `${prefix}/${field(0, 100)}`).replace(/^\.\//, '');
    const size = entrySize(block.subarray(124, 136));
    const type = field(156, 1);
    this.entries += 1;
    this.dataLeft = size;
    this.padLeft = (512 - (size % 512)) % 512;
    const wanted = (type === '0' || type === '') && (name === 'PG_VERSION' || name === 'backup_label');
    this.capture = wanted && size > 0 ? { name, parts: [], bytes: 0 } : undefined;
    if (wanted && size === 0) this.kept.set(name, '');
  }

  facts(): ImportedFacts {
    if (this.entries === 0 && !this.ended) throw notThe('a PostgreSQL base backup', this.pending.length > 0 ? 'it is not a tar archive' : 'it is empty');
    if (!this.ended || this.dataLeft > 0) throw notThe('a PostgreSQL base backup', 'its tar archive ends early');
    const label = this.kept.get('backup_label');
    if (label === undefined) throw notThe('a PostgreSQL base backup', 'it has no backup_label');
    const major = this.kept.get('PG_VERSION')?.trim();
    if (major === undefined || !/^\d+$/.test(major)) throw notThe('a PostgreSQL base backup', 'it has no PG_VERSION');
    if (major !== this.version.name) {
      throw new CofferError(
        'BadRequest',
        `The object is a backup of PostgreSQL ${major}, not of datastore version ${this.version.name}: import it with the id of a PostgreSQL ${major} version.`,
      );
    }
    const facts: ImportedFacts = { format: 'tar', version: major };
    const timeline = /^START TIMELINE: (\d+)$/m.exec(label)?.[1];
    const start = /^START WAL LOCATION: ([0-9A-F]+\/[0-9A-F]+)/m.exec(label)?.[1];
    if (timeline !== undefined) facts.timeline = timeline;
    if (start !== undefined) facts['start-lsn'] = start;
    return facts;
  }
}

/** A tar size field: octal digits, or GNU's base-256 for entries of 8 GiB and more. */
function entrySize(field: Buffer): number {
  if ((field[0]! & 0x80) !== 0) {
    let size = 0;
    for (let i = 1; i < field.length; i += 1) size = size * 256 + field[i]!;
    return size;
  }
  const text = field.toString('latin1').replace(/[\0 ]+$/, '').trim();
  if (!/^[0-7]*$/.test(text)) throw notThe('a PostgreSQL base backup', 'a tar header is damaged');
  return text === '' ? 0 : parseInt(text, 8);
}

/**
 * An RDB file: `REDIS` and a 4-digit format version, auxiliary fields (`redis-ver` among them,
 * which Redis has written since 3.2), the data, then the EOF opcode and an 8-byte checksum.
 */
class RdbFile implements ImportInspector {
  private head = Buffer.alloc(0);
  private tail = Buffer.alloc(0);
  private static readonly headBytes = 4096;

  constructor(private readonly version: DatastoreVersionRow) {}

  see(chunk: Buffer): void {
    if (this.head.length < RdbFile.headBytes) this.head = Buffer.concat([this.head, chunk.subarray(0, RdbFile.headBytes - this.head.length)]);
    this.tail = Buffer.from(Buffer.concat([this.tail, chunk.subarray(-9)]).subarray(-9));
  }

  facts(): ImportedFacts {
    const magic = /^REDIS(\d{4})$/.exec(this.head.toString('latin1', 0, 9));
    if (magic === null) throw notThe('a Redis RDB snapshot', 'it does not start with an RDB header');
    if (this.tail.length < 9 || this.tail[0] !== 0xff) throw notThe('a Redis RDB snapshot', 'it ends before its end marker');
    const redisVersion = auxFields(this.head.subarray(9)).get('redis-ver');
    if (redisVersion === undefined) throw notThe('a Redis RDB snapshot Coffer can restore', 'it does not record the Redis version that wrote it');
    const from = majorMinor(redisVersion);
    const to = majorMinor(this.version.version) ?? majorMinor(this.version.name);
    // as the guest's restore checks: Redis reads the RDB of its own version and older ones
    if (from === undefined || to === undefined || from[0] > to[0] || (from[0] === to[0] && from[1] > to[1])) {
      throw new CofferError(
        'BadRequest',
        `The object is a snapshot of Redis ${redisVersion}, which datastore version ${this.version.name} (Redis ${this.version.version}) cannot read: import it with the id of a Redis version as new or newer.`,
      );
    }
    return { format: 'rdb', 'rdb-version': String(Number(magic[1])), 'redis-version': redisVersion };
  }
}

function majorMinor(version: string): [number, number] | undefined {
  const match = /^(\d+)(?:\.(\d+))?/.exec(version);
  return match === null ? undefined : [Number(match[1]), Number(match[2] ?? 0)];
}

/** The AUX fields (opcode 0xFA) at the start of an RDB's body, as far as `bytes` holds them. */
function auxFields(bytes: Buffer): Map<string, string> {
  const fields = new Map<string, string>();
  let at = 0;
  const string = (): string | undefined => {
    const first = bytes[at];
    if (first === undefined) return undefined;
    at += 1;
    const kind = first >> 6;
    if (kind === 0) return take(first & 0x3f);
    if (kind === 1) {
      const second = bytes[at++];
      return second === undefined ? undefined : take(((first & 0x3f) << 8) | second);
    }
    if (kind === 2) {
      if (first !== 0x80 || at + 4 > bytes.length) return undefined;
      const length = bytes.readUInt32BE(at);
      at += 4;
      return take(length);
    }
    // integers written as strings
    const encoding = first & 0x3f;
    const width = encoding === 0 ? 1 : encoding === 1 ? 2 : encoding === 2 ? 4 : 0;
    if (width === 0 || at + width > bytes.length) return undefined;
    const value = width === 1 ? bytes.readInt8(at) : width === 2 ? bytes.readInt16LE(at) : bytes.readInt32LE(at);
    at += width;
    return String(value);
  };
  const take = (length: number): string | undefined => {
    if (at + length > bytes.length) return undefined;
    const text = bytes.toString('utf8', at, at + length);
    at += length;
    return text;
  };
  while (bytes[at] === 0xfa) {
    at += 1;
    const key = string();
    const value = string();
    if (key === undefined || value === undefined) break;
    fields.set(key, value);
  }
  return fields;
}
