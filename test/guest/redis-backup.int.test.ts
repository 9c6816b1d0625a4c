import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { PrepareInput } from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/index.js';
import { engineRegistry, type EngineBinary, type EngineDriver } from '../../src/guest/index.js';
import type { BackupFacts, RestoreLink } from '../../src/guest/engines/engine.js';
import { withAdminClient, type AdminEndpoint } from '../../src/guest/engines/redis/admin.js';
import { killServerProcesses } from '../../src/guest/engines/redis/server-process.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { connectRedis } from '../support/redis-client.js';
import { tempDataDir } from '../support/temp-dir.js';
import { localRunner, randomAddress } from './engine-fixture.js';

// What Redis's backups and restores must get right beyond the shared backup suite
// (engine-backup.suite.ts): the facts of an RDB, the versions a restore accepts, a snapshot no
// older than the request even while another save runs, and a restore with the AOF off.

describe('redis backup and restore', () => {
  let root: string;
  let binary: EngineBinary;
  const drivers: EngineDriver[] = [];
  const input: PrepareInput = {
    memoryMb: 256,
    databases: [],
    users: [{ name: 'tenant', password: 'tenant-Pass-1', databases: [] }],
    adminPassword: 'unused-by-redis',
    access: null,
    overrides: {},
  };
  let source: { driver: EngineDriver; address: string; dir: string };

  async function instance(name: string): Promise<{ driver: EngineDriver; address: string; dir: string }> {
    const dir = join(root, name);
    await mkdir(dir);
    await chmod(dir, 0o711);
    const address = randomAddress();
    const driver = engineRegistry.redis.create({
      placement: { instanceId: name, dir, address, port: 6379 },
      binary,
      runner: await localRunner(),
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    });
    drivers.push(driver);
    return { driver, address, dir };
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

  async function takeBackup(driver: EngineDriver): Promise<{ rdb: Buffer; facts: BackupFacts }> {
    const run = await driver.backup!.start({ signal: new AbortController().signal });
    const chunks: Buffer[] = [];
    for await (const chunk of run.stream) chunks.push(chunk as Buffer);
    return { rdb: Buffer.concat(chunks), facts: await run.finished };
  }

  const full = (rdb: Buffer, facts: BackupFacts): RestoreLink[] => [{ kind: 'full', facts, open: async () => Readable.from([rdb]) }];

  before(async () => {
    root = await tempDataDir('coffer-rdbk-');
    const discovery = await engineRegistry.redis.discover([], await localRunner());
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    binary = discovery.binaries[0];
    source = await instance('source');
    await source.driver.prepare(input);
    await tenant(source.address, async (client) => {
      for (let i = 0; i < 20; i++) await client.set(`key:${i}`, `value ${i}`);
    });
  });

  after(async () => {
    for (const driver of drivers) await driver.stop().catch(() => undefined);
    for (const entry of await readdir(root).catch(() => [])) await killServerProcesses(join(root, entry, 'data')).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });

  it('records an RDB, its format version and the Redis that wrote it', async () => {
    const { rdb, facts } = await takeBackup(source.driver);
    assert.equal(source.driver.backup!.incremental, false);
    assert.equal(rdb.subarray(0, 5).toString(), 'REDIS');
    assert.deepEqual(facts, { format: 'rdb', 'redis-version': binary.version, 'rdb-version': String(Number(rdb.subarray(5, 9).toString())) });
  });

  // what keeps Redis from forking for our BGSAVE: a save under way, or an AOF rewrite (a
  // replica's after its first sync), each slowed down by a debugging setting
  for (const [other, command] of [['another save', 'BGSAVE'], ['an AOF rewrite (as on a replica after its first sync)', 'BGREWRITEAOF']] as const) {
    it(`snapshots no earlier than asked, even while ${other} is running`, async () => {
      const endpoint = await admin(source.dir);
      await withAdminClient(endpoint, async (client) => {
        await client.call('CONFIG', ['SET', 'rdb-key-save-delay', '20000']);
        await client.call(command);
      });
      await tenant(source.address, (client) => client.set('late', `written after ${command} began`));
      let backup: { rdb: Buffer; facts: BackupFacts };
      try {
        backup = await takeBackup(source.driver);
      } finally {
        await withAdminClient(endpoint, (client) => client.call('CONFIG', ['SET', 'rdb-key-save-delay', '0']));
      }
      const restored = await instance(`after-${command.toLowerCase()}`);
      await restored.driver.prepare(input, undefined, full(backup.rdb, backup.facts));
      assert.equal(await tenant(restored.address, (client) => client.get('late')), `written after ${command} began`);
      await restored.driver.stop();
    });
  }

  it('restores with the AOF off too, and keeps the data across a restart', async () => {
    const { rdb, facts } = await takeBackup(source.driver);
    const restored = await instance('no-aof');
    const noAof = { ...input, overrides: { appendonly: false } };
    await restored.driver.prepare(noAof, undefined, full(rdb, facts));
    assert.equal(await tenant(restored.address, (client) => client.get('key:7')), 'value 7');
    await restored.driver.stop();
    await restored.driver.start();
    assert.equal(await tenant(restored.address, (client) => client.get('key:19')), 'value 19');
    await restored.driver.stop();
  });

  it('refuses a backup of a newer Redis, or no RDB, before anything is written', async () => {
    const { rdb, facts } = await takeBackup(source.driver);
    const other = await instance('refused');
    await rejectsWithCode(other.driver.prepare(input, undefined, full(rdb, { ...facts, 'redis-version': '99.1.0' })), 'BadRequest');
    await rejectsWithCode(other.driver.prepare(input, undefined, full(rdb, { ...facts, format: 'tar' })), 'BadRequest');
    await rejectsWithCode(other.driver.prepare(input, undefined, [{ kind: 'incremental', facts, open: async () => Readable.from([rdb]) }]), 'BadRequest');
    assert.deepEqual(await readdir(other.dir), []);
    // an older Redis's RDB is fine
    await other.driver.prepare(input, undefined, full(rdb, { ...facts, 'redis-version': '6.2.14' }));
    assert.equal(await tenant(other.address, (client) => client.get('key:0')), 'value 0');
    await other.driver.stop();
  });

  it('a corrupt RDB fails the restore with Redis’s reason and leaves nothing running or prepared', async () => {
    const { rdb, facts } = await takeBackup(source.driver);
    const corrupt = Buffer.from(rdb);
    corrupt.fill(0x5a, 20, rdb.length - 10);
    const bad = await instance('corrupt');
    await rejectsWithCode(bad.driver.prepare(input, undefined, full(corrupt, facts)), 'EngineError');
    assert.equal(await bad.driver.processId(), undefined);
    assert.ok(!(await readdir(bad.dir)).includes('data'), 'no data directory left');
    // a later prepare makes a new, empty instance
    await bad.driver.prepare(input);
    assert.equal(await tenant(bad.address, (client) => client.get('key:0')), null);
    await bad.driver.stop();
  });
});
