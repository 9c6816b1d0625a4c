// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { access, chmod, mkdir, readdir, readFile, rename, stat } from 'node:fs/promises';
import { Client } from 'pg';
import type { LocalProcessRunner } from '../../src/agent/index.js';
import { silentLogger } from '../../src/common/logger.js';
import { engineRegistry, type EngineBinary, type EngineDriver, type WarmSource } from '../../src/guest/index.js';
import { withAdminClient } from '../../src/guest/engines/postgresql/admin.js';
import { tempDataDir } from '../support/temp-dir.js';
import { cleanUp, localRunner, ownerOf, randomAddress, suffix } from './engine-fixture.js';

// Instances prepared from clusters initialised ahead of time (the agent's warm pool): each
// works exactly like one prepared by initdb, keeps identifiers of its own, and nothing of the
// pool's password survives the prepare.

const warm = engineRegistry.postgresql.warm!;

/** A directory of the host's, as the agent makes its own: traversable by the engine's user only. */
async function hostDir(path: string): Promise<string> {
  await mkdir(path);
  await chmod(path, 0o711);
  return path;
}

/** Every file under `dir`, as bytes. */
async function allFiles(dir: string): Promise<{ path: string; content: Buffer }[]> {
  const found: { path: string; content: Buffer }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    // the server may remove a temporary file between the listing and the read
    const content = await readFile(path).catch(() => undefined);
    if (content !== undefined) found.push({ path, content });
  }
  return found;
}

describe('postgresql engine with warm clusters', () => {
  let root: string;
  let runner: LocalProcessRunner;
  let binary: EngineBinary;
  const drivers: EngineDriver[] = [];
  /** the pool entries not taken yet */
  const pool: string[] = [];
  const poolPasswords: string[] = [];
  const poolInodes = new Set<number>();
  const source: WarmSource = {
    take: async (dest) => {
      const entry = pool.shift();
      if (entry === undefined) return false;
      await rename(entry, dest);
      return true;
    },
  };

  before(async () => {
    root = await tempDataDir('coffer-pgw-');
    runner = await localRunner();
    const discovery = await engineRegistry.postgresql.discover([], runner);
    assert.ok(discovery.binaries.length > 0, `no PostgreSQL binaries: ${JSON.stringify(discovery.reports)}`);
    binary = discovery.binaries[0]!;
    const poolDir = await hostDir(join(root, 'pool'));
    for (const n of [1, 2]) {
      const entry = await hostDir(join(poolDir, `e${n}`));
      await warm.make(entry, binary, runner, new AbortController().signal);
      pool.push(entry);
      poolPasswords.push(await readFile(join(entry, 'os_admin.pool-password'), 'utf8'));
      poolInodes.add((await stat(join(entry, 'data'))).ino);
      await assert.rejects(access(join(entry, '.initdb-pwfile')), 'the initdb password file is gone');
    }
    assert.equal(new Set(poolPasswords).size, 2, 'each pool entry has a password of its own');
  });

  after(async () => {
    for (const driver of drivers) await driver.stop().catch(() => undefined);
    await cleanUp(root);
  });

  async function newInstance(name: string, warmSource: WarmSource | undefined) {
    const dir = await hostDir(join(root, name));
    const address = randomAddress();
    const driver = engineRegistry.postgresql.create({
      placement: { instanceId: name, dir, address, port: 5432 },
      binary,
      runner,
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
      warm: warmSource,
    });
    drivers.push(driver);
    return { dir, address, driver };
  }

  const input = (adminPassword: string) => ({
    memoryMb: 256,
    databases: [{ name: 'appdb' }],
    users: [{ name: 'app', password: 'app-Secret-1', databases: [{ name: 'appdb' }] }],
    adminPassword,
    access: null,
    overrides: {},
  });

  const connect = async (address: string, user: string, password: string | undefined, database = 'appdb') => {
    const client = new Client({ host: address, port: 5432, user, password, database, connectionTimeoutMillis: 5000 });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  };

  const adminQuery = (dir: string, password: string, sql: string) =>
    withAdminClient({ socketDir: join(dir, 'data'), port: 5432, password }, 'postgres', async (client) => (await client.query(sql)).rows);

  it('prepares two instances from the pool at once, each its own cluster, working as one made by initdb', async (t) => {
    const admins = [`adm-${suffix()}-A1`, `adm-${suffix()}-B2`];
    const instances = await Promise.all(['a', 'b'].map((name) => newInstance(name, source)));
    const began = performance.now();
    const timings = await Promise.all(instances.map(({ driver }, i) => driver.prepare(input(admins[i]!))));
    t.diagnostic(`two prepares from the pool: ${(performance.now() - began).toFixed(0)} ms (init ${timings.map((x) => x.initMs.toFixed(0))})`);
    assert.equal(pool.length, 0, 'both entries were taken');

    const identifiers = new Set<string>();
    for (const [i, { dir, address, driver }] of instances.entries()) {
      assert.equal(await driver.health(), 'healthy');
      assert.ok(poolInodes.has((await stat(join(dir, 'data'))).ino), 'the data directory is a pool entry, moved');
      await assert.rejects(access(join(dir, '.warm-cluster')), 'nothing of the pool entry is left beside it');

      const app = await connect(address, 'app', 'app-Secret-1');
      await app.query('CREATE TABLE t (v text)');
      await app.query("INSERT INTO t VALUES ('x')");
      await app.end();
      await assert.rejects(connect(address, 'app', 'wrong'), /password authentication failed/);
      await assert.rejects(connect(address, 'os_admin', admins[i], 'postgres'), /pg_hba\.conf rejects/);

      // over the socket the instance's admin password opens it, the pool's no longer does
      const [row] = await adminQuery(dir, admins[i]!, 'SELECT system_identifier::text AS id FROM pg_control_system()');
      identifiers.add(row.id);
      for (const password of poolPasswords) {
        await assert.rejects(adminQuery(dir, password, 'SELECT 1'), /password authentication failed/);
      }
      assert.equal(await readFile(join(dir, 'os_admin.password'), 'utf8'), admins[i]);

      // the layout is the one a prepare by initdb makes
      const host = process.getuid!();
      const engine = runner.identity?.uid ?? host;
      const owner = (name: string) => ownerOf(join(dir, name));
      assert.deepEqual(await owner('.'), { uid: host, mode: '711' });
      assert.deepEqual(await owner('os_admin.password'), { uid: host, mode: '600' });
      assert.deepEqual(await owner('data'), { uid: engine, mode: '700' });
      await access(join(dir, '.initdb.done'));

      // no file of the instance holds a pool password, not even the server's own
      for (const { path, content } of await allFiles(dir)) {
        for (const password of poolPasswords) assert.ok(!content.includes(password), `${path} holds a pool password`);
      }
    }
    assert.equal(identifiers.size, 2, 'each instance has its own system identifier');
  });

  it('keeps a prepared instance as it is when prepare is delivered again', async () => {
    const [driver] = drivers;
    const pid = await driver!.processId();
    await driver!.prepare(input('ignored: the first admin password stays'));
    assert.equal(await driver!.processId(), pid);
  });

  it('runs initdb when the pool is empty or hands out an incomplete entry', async () => {
    const broken = await hostDir(join(root, 'pool', `half-${suffix()}`));
    let handedOut = false;
    const incomplete: WarmSource = {
      take: async (dest) => {
        handedOut = true;
        await rename(broken, dest);
        return true;
      },
    };
    for (const [name, warmSource] of [
      ['empty', source],
      ['incomplete', incomplete],
    ] as const) {
      const { dir, address, driver } = await newInstance(name, warmSource);
      const admin = `adm-${suffix()}`;
      await driver.prepare(input(admin));
      assert.ok(!poolInodes.has((await stat(join(dir, 'data'))).ino));
      await assert.rejects(access(join(dir, '.warm-cluster')));
      const app = await connect(address, 'app', 'app-Secret-1');
      await app.end();
      await adminQuery(dir, admin, 'SELECT 1');
    }
    assert.equal(handedOut, true);
  });
});
