// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { LocalProcessRunner } from '../../src/agent/index.js';
import { LocalDirectoryStorage, MasterKey, newProjectKey, wrapKey } from '../../src/backup/index.js';
import type { PrepareInput, RestoreLinkSpec } from '../../src/bus/index.js';
import { engineRegistry, type EngineBinary } from '../../src/guest/index.js';
import { withAdminClient, type AdminEndpoint } from '../../src/guest/engines/redis/admin.js';
import { rewriteAof } from '../../src/guest/engines/redis/backup.js';
import { killServerProcesses } from '../../src/guest/engines/redis/server-process.js';
import { connectRedis } from '../support/redis-client.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';
import { fullBackup, startBusGuest, type BusGuest } from './bus-guest.js';
import { localRunner, randomAddress } from './engine-fixture.js';

// Point-in-time recovery on a real Redis through its guest: a full backup is the RDB base of an
// AOF rewrite, the incremental AOF after it is archived (sealed, with the time of each chunk's
// last `#TS` second), the guest reports how far the archive reaches, and a new instance restored
// to a moment between two writes holds exactly the writes before it. `#TS` times have one
// second's precision: the writes are a little over two seconds apart.

const projectId = 'project-pitr';
const container = 'backups';
const prefix = 'source/wal';

async function hostDir(path: string): Promise<string> {
  await mkdir(path);
  await chmod(path, 0o711);
  return path;
}

describe('redis point-in-time recovery', () => {
  let root: string;
  let runner: LocalProcessRunner;
  let binary: EngineBinary;
  let storage: LocalDirectoryStorage;
  const masterKey = MasterKey.generate();
  const wrappedKey = wrapKey(masterKey, newProjectKey(), projectId);
  const guests: (BusGuest & { address: string; dir: string })[] = [];
  let source: BusGuest & { address: string; dir: string };
  let base: RestoreLinkSpec;
  /** each write's key and when it was sent and answered, in order */
  const writes: { key: string; sent: number; answered: number }[] = [];

  const input = (restore?: PrepareInput['restore']): PrepareInput => ({
    memoryMb: 256,
    databases: [],
    users: [{ name: 'tenant', password: 'tenant-Pass-1', databases: [] }],
    adminPassword: 'unused-by-redis',
    access: null,
    overrides: {},
    ...(restore === undefined ? {} : { restore }),
  });

  async function guest(name: string): Promise<BusGuest & { address: string; dir: string }> {
    const dir = await hostDir(join(root, name));
    const address = randomAddress();
    const bus = await startBusGuest({
      instance: { instanceId: name, dir, address, port: 6379, volumeSizeGb: 1 },
      engine: { manager: 'redis', binary },
      runner,
      desiredState: 'running',
      backups: { storage, masterKey },
      walShipIntervalMs: 200,
    });
    const found = Object.assign(bus, { address, dir });
    guests.push(found);
    return found;
  }

  async function prepared(bus: BusGuest, prepareInput: PrepareInput): Promise<void> {
    await bus.rpc.prepare(prepareInput);
    const reported = (status: string) => bus.beats.some((beat) => beat.status === status);
    await until('prepare reports HEALTHY', () => reported('HEALTHY') || reported('FAILED'), 120_000);
    assert.ok(!reported('FAILED'), JSON.stringify(bus.beats.at(-1)));
  }

  const admin = async (dir: string): Promise<AdminEndpoint> => ({
    socketPath: join(dir, 'data', 'redis.sock'),
    password: await readFile(join(dir, 'os_admin.password'), 'utf8'),
  });

  async function tenant<T>(address: string, work: (client: Awaited<ReturnType<typeof connectRedis>>) => Promise<T>): Promise<T> {
    const client = await connectRedis(address, 6379, ['tenant', 'tenant-Pass-1']);
    try {
      return await work(client);
    } finally {
      client.disconnect();
    }
  }

  /** a key of its own and a counter every write bumps (not idempotent: a write replayed twice shows) */
  async function write(): Promise<void> {
    const key = `k${writes.length}`;
    await tenant(source.address, async (client) => {
      const sent = Date.now();
      await client.multi().set(key, String(sent)).incr('writes').exec();
      writes.push({ key, sent, answered: Date.now() });
    });
  }

  async function restoredTo(name: string, time: Date): Promise<{ keys: string[]; counter: string | null; aof: string }> {
    const bus = await guest(name);
    await prepared(bus, input({ projectId, chain: [base], pointInTime: { time: time.toISOString(), container, prefix, wrappedKey } }));
    const keys = (await tenant(bus.address, (client) => client.keys('k*'))).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
    const counter = await tenant(bus.address, (client) => client.get('writes'));
    const aof = await withAdminClient(await admin(bus.dir), async (client) => ((await client.call('CONFIG', ['GET', 'appendonly'])) as string[])[1]!);
    return { keys, counter, aof };
  }

  before(async () => {
    root = await tempDataDir('coffer-redis-pitr-');
    runner = await localRunner();
    const discovery = await engineRegistry.redis.discover([], runner);
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    binary = discovery.binaries[0];
    await mkdir(join(root, 'storage'));
    storage = new LocalDirectoryStorage(join(root, 'storage'));
    await storage.ensureContainer(container);

    source = await guest('source');
    await prepared(source, input());
    await write();

    base = await fullBackup(source, storage, { backupId: 'b1', container, objectName: 'b1.redis.zst.enc', wrappedKey, projectId, walPrefix: prefix });

    // writes after the backup, each in a second of its own (`#TS` times are whole seconds)
    await sleep(2100);
    for (let i = 0; i < 5; i += 1) {
      await write();
      if (i === 2) {
        // a rewrite in the middle: the log goes on in the next file, and the restore must follow it
        await withAdminClient(await admin(source.dir), (client) => rewriteAof(client, new AbortController().signal, Date.now() + 60_000));
      }
      await sleep(2100);
    }
    // closes the current file, as a rewrite does, so that it ships without waiting a minute
    const closed = Date.now();
    await withAdminClient(await admin(source.dir), (client) => rewriteAof(client, new AbortController().signal, Date.now() + 60_000));
    await until('the archive reaches the last write', () => source.walArchived.some((t) => Date.parse(t) >= writes.at(-1)!.answered), 60_000);
    console.log(`# archive reached the last write ${Date.now() - closed} ms after its file was closed`);
  });

  after(async () => {
    for (const bus of guests) {
      await bus.guest.destroy().catch(() => undefined);
      await bus.closeBus();
      await killServerProcesses(join(bus.dir, 'data')).catch(() => undefined);
    }
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it('records with the backup that the AOF is archived from it on, and where', () => {
    assert.equal(base.facts['wal-archiving'], 'on');
    assert.equal(base.facts['wal-container'], container);
    assert.equal(base.facts['wal-prefix'], prefix);
    assert.equal(base.facts.format, 'rdb');
    assert.match(base.facts['wal-start']!, /^incr-\d{10}-0{16}$/);
    assert.ok(Date.parse(base.facts['completed-at']!) <= writes[1]!.sent);
  });

  it('ships the AOF sealed in chunks that follow each other, each with its length and last second', async () => {
    const objects = (await storage.list(container, `${prefix}/`)).filter((o) => o.name >= `${prefix}/${base.facts['wal-start']!}`);
    assert.ok(objects.length >= 2, JSON.stringify(objects.map((o) => o.name)));
    let expected = base.facts['wal-start']!;
    for (const object of objects.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const name = object.name.slice(prefix.length + 1);
      assert.equal(name, expected);
      const [, seq, offset] = /^incr-(\d+)-(\d+)$/.exec(name)!;
      const bytes = Number(object.metadata.bytes);
      expected =
        object.metadata.final === 'yes'
          ? `incr-${String(Number(seq) + 1).padStart(10, '0')}-${'0'.repeat(16)}`
          : `incr-${seq}-${String(Number(offset) + bytes).padStart(16, '0')}`;
    }
    const newest = Math.max(...objects.filter((o) => o.metadata['last-commit'] !== undefined).map((o) => Date.parse(o.metadata['last-commit']!)));
    assert.equal(newest, Math.floor(writes.at(-1)!.answered / 1000) * 1000);
    // sealed: no `#TS` annotation in what is stored
    const body = await storage.get(container, objects[0]!.name);
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    assert.ok(!Buffer.concat(chunks).toString('latin1').includes('#TS:'), 'stored encrypted');
  });

  it('restores to a moment between two writes: exactly the writes before it, each once', async () => {
    // between the 3rd and 4th write after the backup
    const moment = new Date((writes[3]!.answered + writes[4]!.sent) / 2);
    const began = performance.now();
    const restored = await restoredTo('at-moment', moment);
    console.log(`# restore to a moment took ${Math.round(performance.now() - began)} ms`);
    assert.deepEqual(restored.keys, ['k0', 'k1', 'k2', 'k3']);
    assert.equal(restored.counter, '4');
    assert.equal(restored.aof, 'yes');
  });

  it('restores to the latest moment archived: every write, and the instance takes writes', async () => {
    const latest = new Date(Math.max(...source.walArchived.map((t) => Date.parse(t))));
    const restored = await restoredTo('at-latest', latest);
    assert.deepEqual(restored.keys, writes.map((w) => w.key));
    assert.equal(restored.counter, String(writes.length));
    const bus = guests.at(-1)!;
    await tenant(bus.address, (client) => client.set('after-restore', '1'));
    assert.equal(await tenant(bus.address, (client) => client.get('after-restore')), '1');
  });

  it('restores the backup itself, without a moment: the data when it was taken', async () => {
    const bus = await guest('plain');
    await prepared(bus, input({ projectId, chain: [base] }));
    assert.deepEqual(await tenant(bus.address, (client) => client.keys('k*')), ['k0']);
    assert.equal(await tenant(bus.address, (client) => client.get('writes')), '1');
    // loaded with the AOF off, then archiving as every instance of a host with a backup storage
    const live = await withAdminClient(await admin(bus.dir), async (client) => (await client.call('CONFIG', ['GET', 'a*'])) as string[]);
    const settings = new Map(live.flatMap((v, i) => (i % 2 === 0 ? [[v, live[i + 1]!] as const] : [])));
    assert.deepEqual([settings.get('appendonly'), settings.get('aof-timestamp-enabled'), settings.get('aof-disable-auto-gc')], ['yes', 'yes', 'yes']);
  });

  it('refuses a moment before the backup completed', async () => {
    const bus = await guest('too-early');
    const early = new Date(Date.parse(base.facts['completed-at']!) - 60_000);
    await bus.rpc.prepare(input({ projectId, chain: [base], pointInTime: { time: early.toISOString(), container, prefix, wrappedKey } }));
    await until('prepare fails', () => bus.beats.some((b) => b.status === 'FAILED'), 60_000);
    assert.match(bus.beats.find((b) => b.status === 'FAILED')!.message ?? '', /later moment only/);
  });
});
