import { randomBytes } from 'node:crypto';

// Objects as the engines' backups hold them, for the import tests: an RDB as Redis writes one,
// and a base backup as pg_basebackup -Ft writes one (a ustar archive with backup_label and
// PG_VERSION), small enough to build in memory.

/** an RDB as Redis 7.0 writes one: header, aux fields, (no keys), EOF and a checksum */
export function rdb(redisVersion = '7.0.15'): Buffer {
  const str = (s: string) => Buffer.concat([Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)]);
  const aux = (k: string, v: string) => Buffer.concat([Buffer.from([0xfa]), str(k), str(v)]);
  return Buffer.concat([Buffer.from('REDIS0010'), aux('redis-ver', redisVersion), aux('redis-bits', '64'), Buffer.from([0xff]), randomBytes(8)]);
}

/** a ustar archive of `files`, as pg_basebackup -Ft writes one */
function tar(files: Record<string, string | Buffer>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, content] of Object.entries(files)) {
    const data = Buffer.from(content);
    const header = Buffer.alloc(512);
    header.write(name, 0);
    header.write('0000600\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
    header.write('00000000000\0', 136);
    header.write('        ', 148);
    header.write('0', 156);
    header.write('ustar\0', 257);
    header.write('00', 263);
    let sum = 0;
    for (const b of header) sum += b;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export const baseBackup = (major = '15') =>
  tar({
    backup_label: 'START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nSTART TIMELINE: 1\n',
    'base/1/1259': randomBytes(5000),
    PG_VERSION: `${major}\n`,
    backup_manifest: '{}',
  });

