// A ustar archive built in memory, for tests that feed a restore or a tar reader archives
// pg_basebackup would never write (names with `..`, symlinks, sizes in base-256).

export interface TarEntry {
  name: string;
  /** a regular file with this content */
  content?: string | Buffer;
  /** a symbolic link to this target */
  symlink?: string;
  /** the size field written in base-256, as tar writers do past 8 GiB */
  base256Size?: boolean;
}

function field(header: Buffer, offset: number, length: number, value: string): void {
  header.write(value, offset, length, 'utf8');
}

function octal(value: number, length: number): string {
  return `${value.toString(8).padStart(length - 1, '0')}\0`;
}

function header(entry: TarEntry, size: number): Buffer {
  const block = Buffer.alloc(512);
  field(block, 0, 100, entry.name);
  field(block, 100, 8, octal(0o600, 8));
  field(block, 108, 8, octal(0, 8));
  field(block, 116, 8, octal(0, 8));
  if (entry.base256Size === true) {
    block[124] = 0x80;
    block.writeUIntBE(size, 136 - 6, 6);
  } else {
    field(block, 124, 12, octal(size, 12));
  }
  field(block, 136, 12, octal(0, 12));
  block.write(entry.symlink === undefined ? '0' : '2', 156, 'latin1');
  if (entry.symlink !== undefined) field(block, 157, 100, entry.symlink);
  field(block, 257, 6, 'ustar\0');
  field(block, 263, 2, '00');
  // the checksum is computed with its own field as spaces
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  field(block, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return block;
}

export function tarArchive(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const content = entry.symlink === undefined ? Buffer.from(entry.content ?? '') : Buffer.alloc(0);
    parts.push(header(entry, content.length), content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
