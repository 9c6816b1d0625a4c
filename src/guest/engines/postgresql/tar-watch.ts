import { CofferError } from '../../../common/index.js';

// Reads a tar stream's headers as it passes, without holding it: keeps the contents of a few
// named entries (or their ends) and notices the end-of-archive marker. pg_basebackup writes
// plain ustar (its names are at most 99 bytes, src/port/tar.c) with sizes past 8 GiB in
// base-256; pax and GNU long-name entries, which other writers add, are skipped as entries of
// their own.

const blockSize = 512;

export interface WatchedEntry {
  /** the entry's name, without a leading `./` */
  name: string;
  /** how many bytes of it are kept: the first (`head`) or the last (`tail`) */
  limit: number;
  keep: 'head' | 'tail';
}

function text(header: Buffer, start: number, length: number): string {
  const field = header.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? length : end).toString('utf8');
}

function number(header: Buffer, start: number, length: number): number {
  const field = header.subarray(start, start + length);
  // base-256 (GNU, and PostgreSQL's print_tar_number): the high bit of the first byte set
  if ((field[0]! & 0x80) !== 0) {
    let value = field[0]! & 0x7f;
    for (const byte of field.subarray(1)) value = value * 256 + byte;
    return value;
  }
  const digits = text(header, start, length).trim();
  if (!/^[0-7]*$/.test(digits)) throw new CofferError('EngineError', 'The backup stream is not a tar archive: a header holds no octal number.');
  return digits === '' ? 0 : parseInt(digits, 8);
}

/** the header checksum: the sum of its bytes with the checksum field itself taken as spaces */
function checksumMatches(header: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < blockSize; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  return sum === number(header, 148, 8);
}

export class TarWatch {
  private readonly wanted: Map<string, WatchedEntry>;
  private readonly kept = new Map<string, Buffer>();
  private header = Buffer.alloc(0);
  /** the entry whose data is passing, when it is watched */
  private current: WatchedEntry | undefined;
  /** data bytes of the current entry still to pass, then the padding to the next block */
  private dataLeft = 0;
  private paddingLeft = 0;
  private ended = false;

  constructor(wanted: readonly WatchedEntry[]) {
    this.wanted = new Map(wanted.map((entry) => [entry.name, entry]));
  }

  /** the end-of-archive marker (a block of zeros) has passed */
  get complete(): boolean {
    return this.ended;
  }

  /** what was kept of `name`; undefined when no such entry passed */
  entry(name: string): Buffer | undefined {
    return this.kept.get(name);
  }

  see(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && !this.ended) {
      if (this.dataLeft > 0) {
        const take = Math.min(this.dataLeft, chunk.length - offset);
        if (this.current !== undefined) this.keep(this.current, chunk.subarray(offset, offset + take));
        this.dataLeft -= take;
        offset += take;
        if (this.dataLeft === 0) this.current = undefined;
      } else if (this.paddingLeft > 0) {
        const take = Math.min(this.paddingLeft, chunk.length - offset);
        this.paddingLeft -= take;
        offset += take;
      } else {
        const take = Math.min(blockSize - this.header.length, chunk.length - offset);
        this.header = Buffer.concat([this.header, chunk.subarray(offset, offset + take)]);
        offset += take;
        if (this.header.length === blockSize) this.readHeader();
      }
    }
    // whatever follows the end marker (more zeros, up to the writer's record size) is not looked at
  }

  private readHeader(): void {
    const header = this.header;
    this.header = Buffer.alloc(0);
    if (header.every((byte) => byte === 0)) {
      this.ended = true;
      return;
    }
    if (!checksumMatches(header)) throw new CofferError('EngineError', 'The backup stream is not a tar archive: a header checksum does not match.');
    const ustar = text(header, 257, 6) === 'ustar';
    const prefix = ustar ? text(header, 345, 155) : '';
    const name = (prefix === '' ? '' : `${prefix}/`) + text(header, 0, 100);
    const size = number(header, 124, 12);
    this.dataLeft = size;
    this.paddingLeft = (blockSize - (size % blockSize)) % blockSize;
    const watched = this.wanted.get(name.replace(/^\.\//, ''));
    this.current = size > 0 ? watched : undefined;
    if (watched !== undefined) this.kept.set(watched.name, Buffer.alloc(0));
  }

  private keep(entry: WatchedEntry, bytes: Buffer): void {
    const before = this.kept.get(entry.name) ?? Buffer.alloc(0);
    if (entry.keep === 'head' && before.length >= entry.limit) return;
    const all = Buffer.concat([before, bytes]);
    const kept = all.length <= entry.limit ? all : entry.keep === 'head' ? all.subarray(0, entry.limit) : all.subarray(all.length - entry.limit);
    // a copy: a kept slice would hold on to the whole chunk it came from
    this.kept.set(entry.name, Buffer.from(kept));
  }
}
