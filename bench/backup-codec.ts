// bench/backup-codec: the backup codec (zstd -1 -T2 as a child, then AES-256-GCM frames) against
// Debian's zstd run by hand on the same bytes, in the same run, encode and decode. The data is
// table-dump-like text with numbers (test/backup/sample-data.ts), held in memory, so that
// neither side waits on a disk. Rates are MB/s of uncompressed data (10^6 bytes).
//
//   node --import tsx bench/backup-codec.ts [--size-mib 256] [--rounds 3] [--out bench/results/backup-codec.md]
//
// Rows:
// - zstd by hand, file → /dev/null: `zstd -1 -T2 -q -c data > /dev/null` with the data in a
//   tmpfs file (`zstd -d -q -c data.zst > /dev/null` to decode): the bar to reach;
// - zstd by hand, fed by Node: the same child, its input written and its output read by this
//   process through pipes, as the codec does, but no framing and no AES;
// - the codec (sealed, zstd): encodeBackup / decodeBackup from and to memory;
// - the codec without compression (sealed, none): framing and AES-256-GCM alone, streamed;
// - AES-256-GCM alone: the frames sealed or opened in a loop, no streams;
// - decode into a process: what a restore does (the decoded bytes go to tar or mbstream), with
//   `cat > /dev/null` as that process: `zstd -d -q -c data.zst | cat > /dev/null` by hand, and
//   decodeBackupInto, whose zstd writes into the process's stdin itself.
import { spawn } from 'node:child_process';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { appendFile, mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { decodeBackup, decodeBackupInto, encodeBackup } from '../src/backup/backup-codec.js';
import { newProjectKey } from '../src/backup/backup-keys.js';
import { sampleChunks } from '../test/backup/sample-data.js';
import { cpuTimer, type Sample } from './cpu-timing.js';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '256' },
    rounds: { type: 'string', default: '3' },
    out: { type: 'string', default: 'bench/results/backup-codec.md' },
  },
});
const size = Number(values['size-mib']) * 1024 * 1024;
const rounds = Number(values.rounds);
const zstd = '/usr/bin/zstd';

process.stdout.write(`generating ${size / 1024 / 1024} MiB of sample data...\n`);
const data = [...sampleChunks(size, 42)];
const dataSha = createHash('sha256');
for (const chunk of data) dataSha.update(chunk);
const expectedSha = dataSha.digest('hex');
const key = newProjectKey();

const shm = await mkdtemp(join('/dev/shm', 'coffer-bench-'));
const dataFile = join(shm, 'data');
const zstFile = join(shm, 'data.zst');
await writeFile(dataFile, data);

const { timed } = cpuTimer();

async function byHandFromFile(args: string[], input: string): Promise<number> {
  const devNull = await open('/dev/null', 'w');
  try {
    const child = spawn(zstd, [...args, input], { stdio: ['ignore', devNull.fd, 'inherit'] });
    const [code] = (await once(child, 'close')) as [number];
    if (code !== 0) throw new Error(`zstd exited with ${code}`);
    return 0;
  } finally {
    await devNull.close();
  }
}

/** zstd fed from memory by this process; what it writes is counted (and kept when `keep`) */
async function byHandFedByNode(args: string[], input: readonly Buffer[], keep?: Buffer[]): Promise<number> {
  const child = spawn(zstd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = 0;
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.length;
    keep?.push(chunk);
  });
  const closed = once(child, 'close');
  for (const chunk of input) {
    if (!child.stdin.write(chunk)) await once(child.stdin, 'drain');
  }
  child.stdin.end();
  const [code] = (await closed) as [number];
  if (code !== 0) throw new Error(`zstd exited with ${code}`);
  return out;
}

async function drain(stream: Readable, keep?: Buffer[], hash?: ReturnType<typeof createHash>): Promise<number> {
  let out = 0;
  for await (const chunk of stream) {
    out += (chunk as Buffer).length;
    keep?.push(chunk as Buffer);
    hash?.update(chunk as Buffer);
  }
  return out;
}

/** `cat > /dev/null` fed by `feed` (given its stdin) */
async function intoProcess(feed: (stdin: Writable) => Promise<unknown>): Promise<number> {
  const child = spawn('/bin/sh', ['-c', 'cat > /dev/null'], { stdio: ['pipe', 'ignore', 'inherit'] });
  const closed = once(child, 'close');
  await feed(child.stdin);
  const [code] = (await closed) as [number];
  if (code !== 0) throw new Error(`cat exited with ${code}`);
  return 0;
}

async function byHandIntoProcess(input: string): Promise<number> {
  const child = spawn('/bin/sh', ['-c', `${zstd} -d -q -c "$1" | cat > /dev/null`, 'sh', input], { stdio: ['ignore', 'ignore', 'inherit'] });
  const [code] = (await once(child, 'close')) as [number];
  if (code !== 0) throw new Error(`the pipeline exited with ${code}`);
  return 0;
}

const gcmKey = randomBytes(32);
const gcmAad = randomBytes(60);
let gcmSealed: Array<{ body: Buffer; tag: Buffer; nonce: Buffer }> = [];

function gcmSeal(frames: readonly Buffer[]): Promise<number> {
  gcmSealed = frames.map((frame) => {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', gcmKey, nonce);
    cipher.setAAD(gcmAad);
    const body = cipher.update(frame);
    cipher.final();
    return { body, tag: cipher.getAuthTag(), nonce };
  });
  return Promise.resolve(0);
}

function gcmOpen(): Promise<number> {
  let n = 0;
  for (const s of gcmSealed) {
    const decipher = createDecipheriv('aes-256-gcm', gcmKey, s.nonce);
    decipher.setAAD(gcmAad);
    decipher.setAuthTag(s.tag);
    n += decipher.update(s.body).length;
    decipher.final();
  }
  return Promise.resolve(n);
}

const rows = {
  handFileEnc: [] as Sample[],
  handFileDec: [] as Sample[],
  handNodeEnc: [] as Sample[],
  handNodeDec: [] as Sample[],
  codecEnc: [] as Sample[],
  codecDec: [] as Sample[],
  plainEnc: [] as Sample[],
  plainDec: [] as Sample[],
  gcmSeal: [] as Sample[],
  gcmOpen: [] as Sample[],
  handInto: [] as Sample[],
  codecInto: [] as Sample[],
};
let compressed = 0;
let encodedSize = 0;
const loadBefore = loadavg();

try {
  for (let round = 1; round <= rounds; round++) {
    process.stdout.write(`round ${round}/${rounds}\n`);
    const raw: Buffer[] = [];
    rows.handNodeEnc.push(await timed(() => byHandFedByNode(['-1', '-T2', '-q', '-c'], data, raw)));
    compressed = raw.reduce((n, c) => n + c.length, 0);
    await writeFile(zstFile, raw);
    rows.handFileEnc.push(await timed(() => byHandFromFile(['-1', '-T2', '-q', '-c'], dataFile)));

    const encoded: Buffer[] = [];
    rows.codecEnc.push(await timed(() => drain(encodeBackup(Readable.from(data), { compression: 'zstd', key }), encoded)));
    encodedSize = encoded.reduce((n, c) => n + c.length, 0);

    rows.handFileDec.push(await timed(() => byHandFromFile(['-d', '-q', '-c'], zstFile)));
    rows.handNodeDec.push(await timed(() => byHandFedByNode(['-d', '-q', '-c'], raw)));
    const check = round === rounds ? createHash('sha256') : undefined;
    rows.codecDec.push(await timed(() => drain(decodeBackup(Readable.from(encoded), { key }), undefined, check)));
    if (check !== undefined && check.digest('hex') !== expectedSha) throw new Error('the decoded data differs from the input');
    rows.handInto.push(await timed(() => byHandIntoProcess(zstFile)));
    rows.codecInto.push(await timed(() => intoProcess((stdin) => decodeBackupInto(Readable.from(encoded), stdin, { key }))));

    const plain: Buffer[] = [];
    rows.plainEnc.push(await timed(() => drain(encodeBackup(Readable.from(data), { compression: 'none', key }), plain)));
    rows.plainDec.push(await timed(() => drain(decodeBackup(Readable.from(plain), { key }))));
    rows.gcmSeal.push(await timed(() => gcmSeal(data)));
    rows.gcmOpen.push(await timed(() => gcmOpen()));
  }
} finally {
  await rm(shm, { recursive: true, force: true });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rate = (samples: Sample[]) => size / 1e6 / (median(samples.map((s) => s.ms)) / 1000);
const all = (samples: Sample[]) => samples.map((s) => (size / 1e6 / (s.ms / 1000)).toFixed(0)).join(', ');
/** CPU seconds per GB of uncompressed data: Node's, zstd's */
const cpuPerGb = (samples: Sample[], pick: (s: Sample) => number) => median(samples.map(pick)) / 1000 / (size / 1e9);
const row = (what: string, samples: Sample[], bar: Sample[] | undefined) =>
  `| ${what} | ${rate(samples).toFixed(0)} | ${bar === undefined ? '' : (rate(samples) / rate(bar)).toFixed(2)} | ${cpuPerGb(samples, (s) => s.nodeCpuMs).toFixed(2)} | ${cpuPerGb(samples, (s) => s.childCpuMs).toFixed(2)} | ${all(samples)} |`;

const report = [
  `## ${new Date().toISOString()}: ${size / 1024 / 1024} MiB, ${rounds} rounds`,
  '',
  `Machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')} before, ${loadavg().map((l) => l.toFixed(2)).join(' ')} after.`,
  `Data: table-dump-like rows; zstd -1 makes ${(compressed / 1e6).toFixed(1)} MB of ${(size / 1e6).toFixed(1)} MB (ratio ${(size / compressed).toFixed(2)}); the sealed object is ${(encodedSize / 1e6).toFixed(1)} MB.`,
  '',
  '| what | MB/s (median) | ratio to zstd by hand (file) | CPU s/GB, Node | CPU s/GB, zstd | all rounds (MB/s) |',
  '| --- | --- | --- | --- | --- | --- |',
  row('encode: zstd -1 -T2 by hand, file → /dev/null', rows.handFileEnc, rows.handFileEnc),
  row('encode: zstd -1 -T2 by hand, fed by Node', rows.handNodeEnc, rows.handFileEnc),
  row('**encode: codec (zstd, sealed)**', rows.codecEnc, rows.handFileEnc),
  row('encode: codec without compression (sealed)', rows.plainEnc, undefined),
  row('decode: zstd -d by hand, file → /dev/null', rows.handFileDec, rows.handFileDec),
  row('decode: zstd -d by hand, fed by Node', rows.handNodeDec, rows.handFileDec),
  row('**decode: codec (zstd, sealed)**', rows.codecDec, rows.handFileDec),
  row('decode: codec without compression (sealed)', rows.plainDec, undefined),
  row('decode into a process: zstd -d by hand \\| cat > /dev/null', rows.handInto, rows.handInto),
  row('**decode into a process: decodeBackupInto (zstd -d writes to it)**', rows.codecInto, rows.handInto),
  row('AES-256-GCM alone, 1 MiB frames, seal', rows.gcmSeal, undefined),
  row('AES-256-GCM alone, 1 MiB frames, open', rows.gcmOpen, undefined),
  '',
  `Codec ÷ zstd fed by Node: encode **${(rate(rows.codecEnc) / rate(rows.handNodeEnc)).toFixed(2)}**, decode **${(rate(rows.codecDec) / rate(rows.handNodeDec)).toFixed(2)}**; decodeBackupInto ÷ zstd -d by hand into the same process: **${(rate(rows.codecInto) / rate(rows.handInto)).toFixed(2)}**.`,
  '',
].join('\n');
process.stdout.write(`${report}\n`);
await mkdir(dirname(values.out!), { recursive: true });
await appendFile(values.out!, `${report}\n`);
