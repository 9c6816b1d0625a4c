// bench/backup-pipeline: the guest's whole backup and restore path, minus the database: a tool
// process writes a backup stream to its stdout (dd of a file in tmpfs, `--tool-block` bytes per
// write, as pg_basebackup writes its 32 KiB copy messages), the guest reads it (`plain`, as every
// engine did before its tool wrote into zstd itself; PostgreSQL's also passed a tar watch, since
// removed) or not at all (`direct`, the tool started writing into zstd's stdin, as both
// PostgreSQL and the MySQL family do now), encodes it (zstd -1 -T2,
// AES-256-GCM frames) and stores it in a local directory storage (SHA-256, fsync); the restore
// reads it back with its checksum checked and decodes it into a process (`cat > /dev/null`, in
// place of tar or mbstream). Measures the CPU this Node process spends per GB of the tool's
// stream, which is what a 2-core host loses to the guest: unlike wall time, it does not swing
// with the other load on a shared machine.
//
//   node --import tsx bench/backup-pipeline.ts [--size-mib 256] [--rounds 3] [--tool-block 32768]
//       [--mode plain,direct] [--heap-mib 0] [--profile-dir DIR] [--out FILE]
//
// --heap-mib holds that many MiB (roughly; V8 counts more) of small live objects through the run,
// as a long-lived guest's own state is: V8's full collections, which every few tens of MB of
// buffers the pipeline allocates set off, cost in proportion to the live heap, so Node's CPU per
// GB here depends on it (bench/results/backup-end-to-end.md, 2026-12-06 "where Node's CPU goes").
//
// The raw rows are the same tool by hand: `dd | zstd -1 -T2 -q -c > file`, then
// `zstd -d -q -c file | cat > /dev/null`.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { startStreamingProcess } from '../src/agent/streaming-process.js';
import { decodeBackupInto, encodeBackup, startBackupEncoding } from '../src/backup/backup-codec.js';
import { newProjectKey } from '../src/backup/backup-keys.js';
import { LocalDirectoryStorage } from '../src/backup/local-directory-storage.js';
import { sampleChunks } from '../test/backup/sample-data.js';
import { cpuTimer, type Sample } from './cpu-timing.js';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '256' },
    rounds: { type: 'string', default: '3' },
    'tool-block': { type: 'string', default: '32768' },
    mode: { type: 'string', default: 'plain,direct' },
    'profile-dir': { type: 'string' },
    out: { type: 'string' },
    /** MiB of live JS objects held through the run, as a guest's own heap is: V8's collections cost with the heap */
    'heap-mib': { type: 'string', default: '0' },
  },
});
// ~100 bytes per object: small records in an array, as a long-lived process's state is
const ballast = Array.from({ length: Number(values['heap-mib']) * 10_000 }, (_, i) => ({ i, name: `object ${i}`, tags: [i, i + 1] }));
const size = Number(values['size-mib']) * 1024 * 1024;
const rounds = Number(values.rounds);
const toolBlock = Number(values['tool-block']);
type Mode = 'plain' | 'direct';
const modes = values.mode!.split(',') as Mode[];
const zstd = '/usr/bin/zstd';
const env = { PATH: '/usr/bin:/bin', LANG: 'C' };

const shm = await mkdtemp(join('/dev/shm', 'coffer-pipeline-'));
const key = newProjectKey();
const storage = new LocalDirectoryStorage(shm);
await storage.ensureContainer('backups');

async function makePlain(): Promise<string> {
  const file = join(shm, 'data.raw');
  await writeFile(file, [...sampleChunks(size, 43)]);
  return file;
}

async function run(file: string, args: string[]): Promise<void> {
  const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'inherit'], env });
  const [code] = (await once(child, 'close')) as [number];
  if (code !== 0) throw new Error(`${file} exited with ${code}`);
}

function startTool(input: string, stdout?: Writable) {
  return startStreamingProcess('/bin/dd', [`if=${input}`, `bs=${toolBlock}`, 'status=none'], { timeoutMs: 600_000, ...(stdout === undefined ? {} : { stdout }) }, { env });
}

async function coderBackup(mode: Mode, input: string, name: string): Promise<string> {
  if (mode === 'direct') {
    const encoding = startBackupEncoding({ compression: 'zstd', key });
    const tool = startTool(input, encoding.input);
    tool.stdin.end();
    const body = encoding.fedDirectly();
    tool.stdout.resume();
    const stored = await storage.put('backups', name, body);
    await tool.exited;
    return stored.sha256;
  }
  const tool = startTool(input);
  tool.stdin.end();
  const { stdout: stream, exited: finished } = tool;
  const body = encodeBackup(stream, { compression: 'zstd', key });
  const stored = await storage.put('backups', name, body);
  await finished;
  return stored.sha256;
}

async function coderRestore(name: string, sha256: string): Promise<void> {
  const sink = spawn('/bin/sh', ['-c', 'cat > /dev/null'], { stdio: ['pipe', 'ignore', 'inherit'], env });
  const closed = once(sink, 'close');
  const stored = await storage.get('backups', name, { expectedSha256: sha256 });
  await decodeBackupInto(stored, sink.stdin, { key });
  const [code] = (await closed) as [number];
  if (code !== 0) throw new Error(`cat exited with ${code}`);
}

const rawFile = join(shm, 'raw.zst');
const rawBackup = (input: string) => run('/bin/sh', ['-c', `dd if="$1" bs=${toolBlock} status=none | ${zstd} -1 -T2 -q -c > "$2"`, 'sh', input, rawFile]);
const rawRestore = () => run('/bin/sh', ['-c', `${zstd} -d -q -c "$1" | cat > /dev/null`, 'sh', rawFile]);

const { timed, close: closeProfiler } = cpuTimer(values['profile-dir']);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const loadBefore = loadavg();
const lines: string[] = [];
try {
  for (const mode of modes) {
    const input = await makePlain();

    const streamBytes = Number((await import('node:fs')).statSync(input).size);
    const rows = { rawBackup: [] as Sample[], backup: [] as Sample[], rawRestore: [] as Sample[], restore: [] as Sample[] };
    for (let round = 1; round <= rounds; round++) {
      process.stdout.write(`${mode}: round ${round}/${rounds}\n`);
      rows.rawBackup.push(await timed(() => rawBackup(input)));
      let sha = '';
      rows.backup.push(await timed(async () => (sha = await coderBackup(mode, input, `${mode}-${round}`)), round === 1 ? `${mode}-backup` : undefined));
      rows.rawRestore.push(await timed(rawRestore));
      rows.restore.push(await timed(() => coderRestore(`${mode}-${round}`, sha), round === 1 ? `${mode}-restore` : undefined));
      await storage.delete('backups', `${mode}-${round}`);
    }
    await rm(input);
    const gb = streamBytes / 1e9;
    const rate = (samples: Sample[]) => streamBytes / 1e6 / (median(samples.map((s) => s.ms)) / 1000);
    const row = (what: string, samples: Sample[]) =>
      `| ${what} | ${median(samples.map((s) => s.nodeCpuMs / 1000 / gb)).toFixed(2)} | ${median(samples.map((s) => s.childCpuMs / 1000 / gb)).toFixed(2)} | ${rate(samples).toFixed(0)} | ${samples.map((s) => (s.nodeCpuMs / 1000 / gb).toFixed(2)).join(', ')} |`;
    lines.push(
      `${{ plain: 'through this process (every engine before its tool wrote into zstd itself)', direct: 'the tool writing into zstd itself (PostgreSQL and the MySQL family)' }[mode]}, ${(streamBytes / 1e6).toFixed(0)} MB written ${toolBlock} bytes at a time:`,
      '',
      '| what | CPU s/GB, Node (median) | CPU s/GB, children | MB/s (median, loaded machine) | Node CPU s/GB, all rounds |',
      '| --- | --- | --- | --- | --- |',
      row('backup, raw (dd \\| zstd > file)', rows.rawBackup),
      row('**backup, Coffer (tool → codec → storage put)**', rows.backup),
      row('restore, raw (zstd -d \\| cat)', rows.rawRestore),
      row('**restore, Coffer (storage get → decodeBackupInto cat)**', rows.restore),
      '',
    );
  }
} finally {
  closeProfiler();
  await rm(shm, { recursive: true, force: true });
}
const report = [
  `### ${new Date().toISOString()}: ${size / 1024 / 1024} MiB, ${rounds} rounds`,
  '',
  `Machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')} before, ${loadavg().map((l) => l.toFixed(2)).join(' ')} after; ${ballast.length} ballast objects held (\`--heap-mib ${values['heap-mib']}\`), JS heap in use at the end ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB.`,
  '',
  ...lines,
].join('\n');
process.stdout.write(`${report}\n`);
if (values.out !== undefined) {
  await mkdir(dirname(values.out), { recursive: true });
  await appendFile(values.out, `${report}\n`);
}
