// bench/backup-restore: how long an engine's full backup and a restore into a new instance take,
// for an instance holding about `--mb` MB of incompressible data written by a tenant.
//
//   node --import tsx bench/backup-restore.ts [--engine postgresql|redis] [--mb 200] [--runs 3]
//
// The backup is read to a file as storage would read it (no compression, no encryption: those
// are the codec's, measured apart); the restore is the new instance's whole prepare, its steps
// timed by their progress reports. Times are medians of `--runs`.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { ensureEngineUser, LocalProcessRunner } from '../src/agent/index.js';
import type { PrepareInput } from '../src/bus/index.js';
import { silentLogger } from '../src/common/logger.js';
import { engineRegistry, type EngineDriver, type PrepareStep } from '../src/guest/index.js';
import { connectRedis } from '../test/support/redis-client.js';

const { values } = parseArgs({
  options: { engine: { type: 'string', default: 'postgresql' }, mb: { type: 'string', default: '200' }, runs: { type: 'string', default: '3' } },
});
const engine = values.engine === 'redis' ? 'redis' : 'postgresql';
const megabytes = Number(values.mb);
const runs = Number(values.runs);
const factory = engineRegistry[engine];
const logger = silentLogger();
const runner = new LocalProcessRunner(process.getuid?.() === 0 ? await ensureEngineUser('coffer-db', logger) : undefined);
const [binary] = (await factory.discover([], runner)).binaries;
if (binary === undefined) throw new Error(`no ${engine} binaries`);
const net = `127.${150 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 250)}`;
const password = 'bench-Pass-1';
const input = (adminPassword: string): PrepareInput => ({
  memoryMb: 1024,
  databases: engine === 'postgresql' ? [{ name: 'app' }] : [],
  users: [{ name: 'tenant', password, databases: engine === 'postgresql' ? [{ name: 'app' }] : [] }],
  adminPassword,
  access: null,
  overrides: {},
});
const root = await mkdtemp(join(tmpdir(), 'coffer-bkb-'));
await chmod(root, 0o711);
const drivers: EngineDriver[] = [];

async function instance(name: string, address: string): Promise<EngineDriver> {
  const dir = join(root, name);
  await mkdir(dir, { mode: 0o711 });
  const driver = factory.create({ placement: { instanceId: name, dir, address, port: factory.standardPort }, binary, runner, logger, defaultClientCidrs: ['127.0.0.0/8'] });
  drivers.push(driver);
  return driver;
}

/** `megabytes` of random rows (base64: incompressible for the engine, 4/3 of the bytes on disk) */
async function fill(address: string): Promise<void> {
  const rows = megabytes * 4;
  if (engine === 'postgresql') {
    const client = new Client({ host: address, port: 5432, user: 'tenant', password, database: 'app' });
    await client.connect();
    await client.query('CREATE TABLE bulk (id int PRIMARY KEY, value text)');
    // stored uncompressed and out of line: the table is as large as the text
    await client.query('ALTER TABLE bulk ALTER COLUMN value SET STORAGE EXTERNAL');
    for (let id = 0; id < rows; id++) await client.query('INSERT INTO bulk VALUES ($1, $2)', [id, randomBytes(196_608).toString('base64')]);
    await client.end();
  } else {
    const client = await connectRedis(address, 6379, ['tenant', password]);
    for (let id = 0; id < rows; id++) await client.set(`bulk:${id}`, randomBytes(196_608).toString('base64'));
    client.disconnect();
  }
}

const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]!;
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
try {
  const source = await instance('source', `${net}.1`);
  await source.prepare(input('bench-Admin-1'));
  await fill(`${net}.1`);
  const backupMs: number[] = [];
  const restoreMs: number[] = [];
  const stepMs = new Map<string, number[]>();
  let bytes = 0;
  for (let run = 0; run < runs; run++) {
    const file = join(root, `backup-${run}`);
    let began = performance.now();
    const backup = await source.backup!.start({ signal: new AbortController().signal });
    await pipeline(backup.stream, createWriteStream(file));
    const facts = await backup.finished;
    backupMs.push(performance.now() - began);
    bytes = (await stat(file)).size;

    const restored = await instance(`restored-${run}`, `${net}.${run + 2}`);
    let last: [string, number] = ['open', performance.now()];
    began = last[1];
    const step = (name: PrepareStep | 'ready') => {
      const now = performance.now();
      stepMs.set(last[0], [...(stepMs.get(last[0]) ?? []), now - last[1]]);
      last = [name, now];
    };
    await restored.prepare(input('bench-Admin-2'), step, [{ kind: 'full', facts, open: async () => createReadStream(file) }]);
    step('ready');
    restoreMs.push(performance.now() - began);
    await restored.stop();
    await rm(join(root, `restored-${run}`), { recursive: true, force: true });
    await rm(file);
  }
  const mb = bytes / 1024 / 1024;
  console.log(`${engine} ${binary.version}, ~${megabytes} MB of data written, backup stream ${mb.toFixed(1)} MB, median of ${runs}:`);
  console.log(`  full backup ${seconds(median(backupMs))} (${(mb / (median(backupMs) / 1000)).toFixed(0)} MB/s)`);
  console.log(`  restore (the new instance's whole prepare) ${seconds(median(restoreMs))}`);
  for (const [name, list] of stepMs) if (name !== 'open') console.log(`    ${name}: ${seconds(median(list))}`);
} finally {
  for (const driver of drivers) await driver.stop().catch(() => undefined);
  await rm(root, { recursive: true, force: true });
}
