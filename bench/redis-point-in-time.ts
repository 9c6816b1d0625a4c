// bench/redis-point-in-time: what Redis point in time costs for an instance with `--mb` MB of
// data at its full backup and `--log-mb` MB written after it: the backup (an AOF rewrite's RDB
// base), shipping the AOF written after it (the archive's reading and scanning, as the shipper
// drives it, without compression or encryption: those are the codec's, measured apart), and a
// restore to a moment halfway through the writes after the backup (the new instance's whole
// prepare: base and AOF written, cut, loaded).
//
//   node --import tsx bench/redis-point-in-time.ts [--mb 100] [--log-mb 100]
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { ensureEngineUser, LocalProcessRunner } from '../src/agent/index.js';
import type { PrepareInput } from '../src/bus/index.js';
import { silentLogger } from '../src/common/logger.js';
import { engineRegistry, type EngineDriver, type PrepareStep } from '../src/guest/index.js';
import type { ArchivedLogFile } from '../src/guest/engines/engine.js';
import { withAdminClient } from '../src/guest/engines/redis/admin.js';
import { rewriteAof } from '../src/guest/engines/redis/backup.js';
import { connectRedis } from '../test/support/redis-client.js';
import { readFile } from 'node:fs/promises';

const { values } = parseArgs({ options: { mb: { type: 'string', default: '100' }, 'log-mb': { type: 'string', default: '100' } } });
const megabytes = Number(values.mb);
const logMegabytes = Number(values['log-mb']);
const logger = silentLogger();
const runner = new LocalProcessRunner(process.getuid?.() === 0 ? await ensureEngineUser('coffer-db', logger) : undefined);
const factory = engineRegistry.redis;
const [binary] = (await factory.discover([], runner)).binaries;
if (binary === undefined) throw new Error('no redis binaries');
const net = `127.${150 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 250)}`;
const password = 'bench-Pass-1';
const input: PrepareInput = { memoryMb: 2048, databases: [], users: [{ name: 'tenant', password, databases: [] }], adminPassword: 'unused', access: null, overrides: {} };
const root = await mkdtemp(join(tmpdir(), 'coffer-rpitr-'));
await chmod(root, 0o711);
const drivers: EngineDriver[] = [];

async function instance(name: string, address: string): Promise<{ driver: EngineDriver; dir: string }> {
  const dir = join(root, name);
  await mkdir(dir, { mode: 0o711 });
  const driver = factory.create({ placement: { instanceId: name, dir, address, port: 6379 }, binary, runner, logger, defaultClientCidrs: ['127.0.0.0/8'], archiveLog: true });
  drivers.push(driver);
  return { driver, dir };
}

/** `mb` MB of random base64 values in keys `<prefix>:<n>`, 256 KB each, pipelined */
async function fill(address: string, prefix: string, mb: number): Promise<number> {
  const client = await connectRedis(address, 6379, ['tenant', password]);
  const keys = mb * 4;
  try {
    for (let i = 0; i < keys; i += 16) {
      const batch = client.pipeline();
      for (let j = i; j < Math.min(keys, i + 16); j++) batch.set(`${prefix}:${j}`, randomBytes(192 * 1024).toString('base64'));
      await batch.exec();
    }
  } finally {
    client.disconnect();
  }
  return keys;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const rate = (bytes: number, ms: number) => `${(bytes / 1024 ** 2 / (ms / 1000)).toFixed(0)} MB/s`;

try {
  const source = await instance('source', `${net}.1`);
  await source.driver.prepare(input);
  const before = await fill(`${net}.1`, 'before', megabytes);

  let began = performance.now();
  const run = await source.driver.backup!.start({ signal: new AbortController().signal });
  const basePath = join(root, 'base.rdb');
  await pipeline(run.stream, createWriteStream(basePath));
  const facts = await run.finished;
  const backupMs = performance.now() - began;
  const baseBytes = (await stat(basePath)).size;

  const firstHalf = await fill(`${net}.1`, 'after-a', logMegabytes / 2);
  await sleep(1100);
  const moment = new Date();
  await sleep(1100);
  await fill(`${net}.1`, 'after-b', logMegabytes / 2);
  // the current file goes once closed (or after a minute): a rewrite closes it
  const endpoint = { socketPath: join(source.dir, 'data', 'redis.sock'), password: await readFile(join(source.dir, 'os_admin.password'), 'utf8') };
  await withAdminClient(endpoint, (client) => rewriteAof(client, new AbortController().signal, Date.now() + 600_000));

  const archive = source.driver.backup!.walArchive!;
  const shipped: ArchivedLogFile[] = [];
  let shippedBytes = 0;
  await mkdir(join(root, 'archive'));
  began = performance.now();
  for (;;) {
    const names = await archive.pending();
    if (names.length === 0) break;
    for (const name of names) {
      const chunkFacts = await archive.inspect(name);
      await pipeline(archive.read(name, new AbortController().signal), createWriteStream(join(root, 'archive', name)));
      await archive.remove(name);
      shipped.push({ name, facts: chunkFacts });
      shippedBytes += Number(chunkFacts.bytes);
    }
  }
  const shipMs = performance.now() - began;
  const needed = shipped.filter((f) => f.name >= facts['wal-start']!);

  const steps: [PrepareStep, number][] = [];
  const copy = await instance('copy', `${net}.2`);
  began = performance.now();
  await copy.driver.prepare(
    input,
    (step) => steps.push([step, performance.now()]),
    [{ kind: 'full', facts, open: async () => createReadStream(basePath) }],
    { target: moment, list: async () => needed, open: async (name) => createReadStream(join(root, 'archive', name)) },
  );
  const restoreMs = performance.now() - began;
  const client = await connectRedis(`${net}.2`, 6379, ['tenant', password]);
  const keys = Number(await client.dbsize());
  client.disconnect();
  if (keys !== before + firstHalf) throw new Error(`restored ${keys} keys, expected ${before + firstHalf}`);

  const stepText = steps.map(([step, at], i) => `${step} ${seconds((steps[i + 1]?.[1] ?? began + restoreMs) - at)}`).join(', ');
  const report = [
    `Redis ${binary.version}, ${megabytes} MB at the backup, ${logMegabytes} MB written after it; restore to the middle of those writes.`,
    `- backup (AOF rewrite + RDB base read): ${seconds(backupMs)}, base ${(baseBytes / 1024 ** 2).toFixed(1)} MB (${rate(baseBytes, backupMs)})`,
    `- AOF shipped: ${(shippedBytes / 1024 ** 2).toFixed(1)} MB in ${shipped.length} chunk(s), ${seconds(shipMs)} (${rate(shippedBytes, shipMs)}), read twice (scan, then store)`,
    `- restore (whole prepare): ${seconds(restoreMs)}: ${stepText}; ${keys} keys as expected`,
  ].join('\n');
  console.log(report);
  await writeFile(join(root, 'report.txt'), report);
} finally {
  for (const driver of drivers) await driver.stop().catch(() => undefined);
  await rm(root, { recursive: true, force: true });
}
