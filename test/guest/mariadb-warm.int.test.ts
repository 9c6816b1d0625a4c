// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { access, chmod, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RowDataPacket } from 'mysql2/promise';
import type { LocalProcessRunner } from '../../src/agent/index.js';
import { WarmPool } from '../../src/agent/warm-pool.js';
import { silentLogger } from '../../src/common/logger.js';
import { engineRegistry, type EngineBinary, type EngineDriver, type WarmSource } from '../../src/guest/index.js';
import { withAdminConnection } from '../../src/guest/engines/mysql-family/connection.js';
import { nativePasswordHash } from '../../src/guest/engines/mysql-family/password-hash.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';
import { localRunner, ownerOf, randomAddress, suffix } from './engine-fixture.js';
import { cleanUpMysqlFamily, connectTenant } from './mysql-family-fixture.js';

// MariaDB instances prepared from data directories installed ahead of time (the agent's warm
// pool): each works like one its own install made, keeps an identity of its own (its install's
// Aria UUID, its server id, a binary log that begins at its creation), and nothing of the
// pool's password survives the prepare. The real pool refills behind a take.

type Row = RowDataPacket & Record<string, unknown>;

const warm = engineRegistry.mariadb.warm!;
const secretName = 'os_admin.pool-password';

/** A directory of the host's, as the agent makes its own: traversable by the engine's user only. */
async function hostDir(path: string): Promise<string> {
  await mkdir(path);
  await chmod(path, 0o711);
  return path;
}

/** The UUID Aria's control file got from the install that made the data directory (bytes 4-19 of aria_log_control). */
async function ariaUuid(dataDir: string): Promise<string> {
  return (await readFile(join(dataDir, 'aria_log_control'))).subarray(4, 20).toString('hex');
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

describe('mariadb engine with warm data directories', () => {
  let root: string;
  let runner: LocalProcessRunner;
  let binary: EngineBinary;
  const drivers: EngineDriver[] = [];
  /** the pool entries not taken yet */
  const pool: string[] = [];
  const poolPasswords: string[] = [];
  const poolInodes = new Set<number>();
  const poolUuids = new Set<string>();
  const source: WarmSource = {
    take: async (dest) => {
      const entry = pool.shift();
      if (entry === undefined) return false;
      await rename(entry, dest);
      return true;
    },
  };

  before(async () => {
    root = await tempDataDir('coffer-myw-');
    runner = await localRunner();
    const discovery = await engineRegistry.mariadb.discover([], runner);
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    binary = discovery.binaries[0];
    const poolDir = await hostDir(join(root, 'pool'));
    for (const n of [1, 2]) {
      const entry = await hostDir(join(poolDir, `e${n}`));
      await warm.make(entry, binary, runner, new AbortController().signal);
      pool.push(entry);
      poolPasswords.push(await readFile(join(entry, secretName), 'utf8'));
      poolInodes.add((await stat(join(entry, 'data'))).ino);
      poolUuids.add(await ariaUuid(join(entry, 'data')));
      assert.deepEqual((await readdir(entry)).sort(), ['data', secretName], 'no install file is left beside the data');
      assert.deepEqual(await ownerOf(join(entry, secretName)), { uid: process.getuid!(), mode: '600' });
      // nothing an instance keeps of its own: no binary log nor its index, no server_uuid file
      const names = await readdir(join(entry, 'data'));
      assert.deepEqual(names.filter((name) => /binlog|\.index$|^auto\.cnf$|\.sock$|\.pid$/.test(name)), [], names.join(' '));
    }
    assert.equal(new Set(poolPasswords).size, 2, 'each pool entry has a password of its own');
    assert.equal(poolUuids.size, 2, 'each pool entry comes from an install of its own');
  });

  after(async () => {
    for (const driver of drivers) await driver.stop().catch(() => undefined);
    await cleanUpMysqlFamily(root);
  });

  async function newInstance(name: string, warmSource: WarmSource | undefined) {
    const dir = await hostDir(join(root, name));
    const address = randomAddress();
    const driver = engineRegistry.mariadb.create({
      placement: { instanceId: name, dir, address, port: 3306 },
      binary,
      runner,
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
      ...(warmSource === undefined ? {} : { warm: warmSource }),
    });
    drivers.push(driver);
    return { dir, address, driver };
  }

  const input = (adminPassword: string) => ({
    memoryMb: 512,
    databases: [{ name: 'appdb' }],
    users: [{ name: 'app', password: 'app-Secret-1', databases: [{ name: 'appdb' }] }],
    adminPassword,
    access: null,
    overrides: {},
  });

  const adminQuery = (dir: string, password: string, sql: string) =>
    withAdminConnection({ socketPath: join(dir, 'data', 'mysqld.sock'), password }, async (connection) => (await connection.query<Row[]>(sql))[0]);

  async function tenantWrites(address: string): Promise<void> {
    const app = await connectTenant({ address, port: 3306, user: 'app', password: 'app-Secret-1', database: 'appdb' });
    try {
      await app.query('CREATE TABLE t (v VARCHAR(10) PRIMARY KEY)');
      await app.query("INSERT INTO t VALUES ('x')");
      assert.deepEqual((await app.query<Row[]>('SELECT v FROM t'))[0].map((row) => row.v), ['x']);
    } finally {
      await app.end();
    }
  }

  it('prepares two instances from the pool at once, each with an identity of its own, working as one its own install made', async (t) => {
    const admins = [`adm-${suffix()}-A1`, `adm-${suffix()}-B2`];
    const instances = await Promise.all(['a', 'b'].map((name) => newInstance(name, source)));
    const began = performance.now();
    const timings = await Promise.all(instances.map(({ driver }, i) => driver.prepare(input(admins[i]!))));
    t.diagnostic(`two prepares from the pool: ${(performance.now() - began).toFixed(0)} ms (init ${timings.map((x) => x.initMs.toFixed(0))}, start ${timings.map((x) => x.startMs.toFixed(0))})`);
    assert.equal(pool.length, 0, 'both entries were taken');

    const identities = new Map<string, Set<string>>([['aria', new Set()], ['serverId', new Set()], ['gtid', new Set()], ['adminHash', new Set()]]);
    for (const [i, { dir, address, driver }] of instances.entries()) {
      assert.equal(await driver.health(), 'healthy');
      const data = join(dir, 'data');
      assert.ok(poolInodes.has((await stat(data)).ino), 'the data directory is a pool entry, moved');
      await assert.rejects(access(join(dir, '.warm-data')), 'nothing of the pool entry is left beside it');

      await tenantWrites(address);
      await assert.rejects(connectTenant({ address, port: 3306, user: 'app', password: 'wrong' }), /Access denied/);
      await assert.rejects(connectTenant({ address, port: 3306, user: 'os_admin', password: admins[i]! }), /Access denied/);

      // over the socket the instance's admin password opens it, the pool's no longer does
      const [row] = await adminQuery(
        dir,
        admins[i]!,
        "SELECT @@server_id AS serverId, @@gtid_binlog_pos AS gtid, @@gtid_slave_pos AS slavePos, " +
          "(SELECT authentication_string FROM mysql.user WHERE User = 'os_admin') AS adminHash",
      );
      assert.equal(row!.adminHash, nativePasswordHash(admins[i]!));
      assert.equal(row!.slavePos, '', 'no replication position from the pool');
      // the tenant's two statements and the guest's setup, all under this instance's server id
      assert.match(String(row!.gtid), new RegExp(`^0-${row!.serverId}-\\d+$`));
      identities.get('serverId')!.add(String(row!.serverId));
      identities.get('gtid')!.add(String(row!.gtid));
      identities.get('adminHash')!.add(String(row!.adminHash));
      identities.get('aria')!.add(await ariaUuid(data));
      for (const password of poolPasswords) await assert.rejects(adminQuery(dir, password, 'SELECT 1'), /Access denied/);
      assert.equal(await readFile(join(dir, 'os_admin.password'), 'utf8'), admins[i]);

      // the binary log begins at the instance's creation (a replica may replay all of it) and
      // holds nothing of the pool's account
      const logs = await adminQuery(dir, admins[i]!, 'SHOW BINARY LOGS');
      const events = await adminQuery(dir, admins[i]!, `SHOW BINLOG EVENTS IN '${String(logs[0]!.Log_name)}'`);
      assert.equal(String(events.find((event) => event.Event_type === 'Gtid_list')?.Info), '[]');
      const adminEvents = events.filter((event) => /['`]os_admin['`]@/.test(String(event.Info)));
      assert.deepEqual(adminEvents.map((event) => String(event.Info)), [], 'the password rotation is not in the binary log');
      await access(join(dir, '.binlog-from-start'));
      await access(join(dir, '.initialised'));

      // the layout is the one a prepare by install makes
      const host = process.getuid!();
      const engine = runner.identity?.uid ?? host;
      const owner = (name: string) => ownerOf(join(dir, name));
      assert.deepEqual(await owner('.'), { uid: host, mode: '711' });
      assert.deepEqual(await owner('os_admin.password'), { uid: host, mode: '600' });
      for (const name of ['data', 'tmp', 'files']) assert.deepEqual(await owner(name), { uid: engine, mode: '700' }, name);

      // no file of the instance holds a pool password, not even the server's own
      for (const { path, content } of await allFiles(dir)) {
        for (const password of poolPasswords) assert.ok(!content.includes(password), `${path} holds a pool password`);
      }
    }
    for (const [what, values] of identities) assert.equal(values.size, 2, `each instance has its own ${what}`);
    for (const uuid of identities.get('aria')!) assert.ok(poolUuids.has(uuid), "the instance keeps its install's Aria UUID");
  });

  it('keeps a prepared instance as it is when prepare is delivered again', async () => {
    const [driver] = drivers;
    const pid = await driver!.processId();
    await driver!.prepare(input('ignored: the first admin password stays'));
    assert.equal(await driver!.processId(), pid);
  });

  it('installs when the pool is empty or hands out an incomplete entry', async () => {
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
      await assert.rejects(access(join(dir, '.warm-data')));
      await tenantWrites(address);
      await adminQuery(dir, admin, 'SELECT 1');
    }
    assert.equal(handedOut, true);
  });

  it('starts over with another entry when a prepare from the pool failed before its password was rotated', async () => {
    const entries: string[] = [];
    for (const n of [1, 2]) {
      const entry = await hostDir(join(root, 'pool', `retry-${n}`));
      await warm.make(entry, binary, runner, new AbortController().signal);
      entries.push(entry);
    }
    // the first entry's file no longer holds its account's password: its first start refuses the guest
    await writeFile(join(entries[0]!, secretName), 'not-the-pool-password');
    let taken = 0;
    const retrySource: WarmSource = {
      take: async (dest) => {
        const entry = entries.shift();
        if (entry === undefined) return false;
        taken += 1;
        await rename(entry, dest);
        return true;
      },
    };
    const { dir, address, driver } = await newInstance('retried', retrySource);
    const admin = `adm-${suffix()}`;
    await assert.rejects(driver.prepare(input(admin)), /refuses the guest's administrative login/);
    await assert.rejects(access(join(dir, '.initialised')), 'not initialised: the next prepare starts over');
    await driver.prepare(input(admin));
    assert.equal(taken, 2, 'the second prepare took the other entry');
    await tenantWrites(address);
    await adminQuery(dir, admin, 'SELECT 1');
  });

  it("refills the agent's pool behind a take, with an install of its own each time", async () => {
    const kind = `mariadb-${binary.versionName}`;
    const poolDir = join(root, 'agent-pool');
    const warmPool = new WarmPool({
      dir: poolDir,
      size: 1,
      kinds: [{ name: kind, binary, warm }],
      runner,
      ...(runner.identity === undefined ? {} : { group: runner.identity.gid }),
      logger: silentLogger(),
    });
    warmPool.start();
    try {
      const kindDir = join(poolDir, kind);
      const entryUuid = async () => ariaUuid(join(kindDir, (await readdir(kindDir)).find((name) => /^[0-9a-f]{16}$/.test(name))!, 'data'));
      const fillMs = 60_000;
      await until('a warm data directory', async () => (await warmPool.count(kind)) === 1, fillMs);
      const first = await entryUuid();
      const { dir, address, driver } = await newInstance('from-agent-pool', warmPool.source(kind));
      await driver.prepare(input(`adm-${suffix()}`));
      assert.equal(await ariaUuid(join(dir, 'data')), first, 'the instance got the entry the pool had');
      await tenantWrites(address);
      await until('the pool refilled', async () => (await warmPool.count(kind)) === 1, fillMs);
      assert.notEqual(await entryUuid(), first, 'the new entry is an install of its own');
    } finally {
      await warmPool.stop();
    }
  });
});
