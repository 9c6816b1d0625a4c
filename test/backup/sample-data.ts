import { Readable } from 'node:stream';

// Data that compresses like a database's does, not like zeros: rows of a table dump with ids,
// words, timestamps, amounts and sysbench-style groups of random digits, from a seeded generator
// so that every run (and the benchmark) sees the same bytes.

const words = (
  'alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec ' +
  'romeo sierra tango uniform victor whiskey xray yankee zulu pending shipped delivered cancelled refunded ' +
  'warehouse customer invoice payment account balance order product category supplier region'
).split(' ');

/** mulberry32: small, fast, good enough to look random to a compressor */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** eleven random digits, as sysbench's `c` column groups them */
function digits(random: () => number): string {
  return String(Math.floor(random() * 1e6)).padStart(6, '0') + String(Math.floor(random() * 1e5)).padStart(5, '0');
}

/** `size` bytes of table-dump-like text in chunks of `chunkSize` */
export function* sampleChunks(size: number, seed = 1, chunkSize = 1024 * 1024): Generator<Buffer> {
  const random = generator(seed);
  let id = 1;
  let left = size;
  let carry = Buffer.alloc(0);
  while (left > 0) {
    const lines: string[] = [];
    let length = carry.length;
    while (length < chunkSize) {
      const w = () => words[Math.floor(random() * words.length)]!;
      const when = new Date(1_700_000_000_000 + Math.floor(random() * 31_536_000_000)).toISOString();
      const line =
        `INSERT INTO orders VALUES (${id++},${Math.floor(random() * 100_000)},'${w()} ${w()} ${w()}','${when}',` +
        `${(random() * 10_000).toFixed(2)},'${digits(random)}-${digits(random)}-${digits(random)}','${w()}');\n`;
      lines.push(line);
      length += line.length;
    }
    const all = Buffer.concat([carry, Buffer.from(lines.join(''), 'ascii')]);
    const n = Math.min(chunkSize, left);
    yield all.subarray(0, n);
    carry = all.subarray(n);
    left -= n;
  }
}

export function sampleStream(size: number, seed = 1): Readable {
  return Readable.from(sampleChunks(size, seed));
}
