// test-lane: parallel (PostgreSQL 15, 16 and 17 as coffer-test-db on random loopback addresses, each in its own directory)
import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { silentLogger } from '../../src/common/logger.js';
import { engineRegistry, type EngineBinary, type EngineDriver } from '../../src/guest/index.js';
import { chooseUpgradeMethod, moveCluster, upgradePostgresql } from '../../src/guest/engines/postgresql/upgrade.js';
import type { LocalProcessRunner } from '../../src/agent/index.js';
import { tempDataDir } from '../support/temp-dir.js';
import { cleanUp, localRunner, randomAddress } from './engine-fixture.js';

// Major version upgrades of real clusters (issue 13): the data, roles, grants and a database's
// own settings survive, `SELECT version()` names the new major, and a refused upgrade leaves the
// old cluster as it was. This host has Debian's PostgreSQL 15 (with pg_upgrade and pg_dump) and
// the npm builds of 16 to 18 (the server alone): 15 → 16 goes by a logical copy with Debian's
// pg_dump 15; pg_upgrade's path runs with the only installation that has it, 15 onto 15; 16 → 17
// has neither tool here and is refused before anything changes.

const password = 'App-pass-1x';
let runner: LocalProcessRunner;
let binaries: EngineBinary[];
let reports: Array<{ name: string; capabilities: { backup: boolean; replication: boolean } }>;
let root: string;

const binary = (major: string) => {
  const found = binaries.find((b) => b.versionName === major);
  assert.ok(found, `no PostgreSQL ${major}: ${binaries.map((b) => b.version).join(', ')}`);
  return found;
};

function driverOf(dir: string, address: string, bin: EngineBinary): EngineDriver {
  return engineRegistry.postgresql.create({
    placement: { instanceId: dir.split('/').pop()!, dir, address, port: 5432 },
    binary: bin,
    runner,
    logger: silentLogger(),
    defaultClientCidrs: ['127.0.0.0/8'],
  });
}

async function query<T>(address: string, database: string, sql: string): Promise<T[]> {
  const client = new Client({ host: address, port: 5432, user: 'app', password, database, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

interface Instance {
  dir: string;
  address: string;
  driver: EngineDriver;
}

async function preparedWithData(name: string, bin: EngineBinary): Promise<Instance> {
  const dir = join(root, name);
  await mkdir(dir, { mode: 0o700 });
  await chmod(dir, 0o711);
  const address = randomAddress();
  const driver = driverOf(dir, address, bin);
  await driver.prepare({
    memoryMb: 256,
    databases: [{ name: 'app' }, { name: 'other' }],
    users: [{ name: 'app', password, databases: [{ name: 'app' }, { name: 'other' }] }],
    adminPassword: 'Admin-pass-1x',
    access: null,
    overrides: {},
  });
  await query(address, 'app', "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 5000) i");
  await query(address, 'other', "CREATE TABLE o (v jsonb); INSERT INTO o VALUES ('{\"a\": 1}')");
  return { dir, address, driver };
}

async function upgrade(instance: Instance, from: EngineBinary, to: EngineBinary) {
  await instance.driver.stop();
  return upgradePostgresql({
    placement: { instanceId: 'x', dir: instance.dir, address: instance.address, port: 5432 },
    from,
    to,
    installed: binaries,
    runner,
    logger: silentLogger(),
  });
}

describe('postgresql major version upgrades', { timeout: 600_000 }, () => {
  before(async () => {
    runner = await localRunner();
    ({ binaries, reports } = await engineRegistry.postgresql.discover([], runner));
    root = await tempDataDir('coffer-pg-upgrade-');
    await chmod(root, 0o711);
  });

  after(async () => {
    await cleanUp(root);
  });

  it('offers the npm builds of 16 to 18 beside Debian’s 15, which stays first; without pg_basebackup they have no backups or replicas', () => {
    assert.deepEqual(
      binaries.map((b) => b.versionName),
      ['15', '16', '17', '18'],
    );
    assert.deepEqual(
      reports.map((r) => [r.name, r.capabilities.backup, r.capabilities.replication]),
      [
        ['15', true, true],
        ['16', false, false],
        ['17', false, false],
        ['18', false, false],
      ],
    );
  });

  it('upgrades 15 to 16 by a logical copy, keeping data, users, grants and every database, from an instance directory as deep as its socket allows', async () => {
    // 85 bytes: the instance's own socket (data/.s.PGSQL.65535) fits in 107, one beside a new cluster (data.upgrading/…) would not
    const deep = 'a'.padEnd(85 - root.length - 1, 'x');
    const instance = await preparedWithData(deep, binary('15'));
    assert.equal((await chooseUpgradeMethod(binary('15'), binary('16'), binaries)).kind, 'dump');
    const outcome = await upgrade(instance, binary('15'), binary('16'));
    assert.equal(outcome.method, 'dump');
    assert.equal((await readFile(join(instance.dir, 'data', 'PG_VERSION'), 'utf8')).trim(), '16');
    assert.deepEqual((await readdir(instance.dir)).filter((name) => name.startsWith('data.')), [], 'no leftover cluster');
    const upgraded = driverOf(instance.dir, instance.address, binary('16'));
    await upgraded.start();
    try {
      const [version] = await query<{ version: string }>(instance.address, 'app', 'SELECT version()');
      assert.match(version!.version, /^PostgreSQL 16\./);
      const [counted] = await query<{ n: string; sum: string }>(instance.address, 'app', 'SELECT count(*) AS n, sum(id) AS sum FROM t');
      assert.deepEqual(counted, { n: '5000', sum: String((5000 * 5001) / 2) });
      const [other] = await query<{ v: unknown }>(instance.address, 'other', 'SELECT v FROM o');
      assert.deepEqual(other!.v, { a: 1 });
      // the tenant still may not do what it could not before (its grants came along, no more)
      await assert.rejects(query(instance.address, 'postgres', 'CREATE DATABASE nope'), /permission denied/);
    } finally {
      await upgraded.stop();
    }
  });

  it('upgrades with pg_upgrade in link mode where the installation has it (15 onto 15 here)', async () => {
    const instance = await preparedWithData('b', binary('15'));
    const before = (await readFile(join(instance.dir, 'data', 'global', 'pg_control'))).subarray(0, 8);
    await instance.driver.stop();
    // pg_upgrade between majors, minus the catalog change: the only installation with it is 15
    await moveCluster(
      { placement: { instanceId: 'x', dir: instance.dir, address: instance.address, port: 5432 }, from: binary('15'), to: binary('15'), installed: binaries, runner, logger: silentLogger() },
      { kind: 'pg_upgrade' },
    );
    const after = (await readFile(join(instance.dir, 'data', 'global', 'pg_control'))).subarray(0, 8);
    assert.notDeepEqual(after, before, 'a new cluster (its own system identifier) holds the data');
    const upgraded = driverOf(instance.dir, instance.address, binary('15'));
    await upgraded.start();
    try {
      const [counted] = await query<{ n: string }>(instance.address, 'app', 'SELECT count(*) AS n FROM t');
      assert.equal(counted!.n, '5000');
    } finally {
      await upgraded.stop();
    }
  });

  it('refuses 16 to 17 here (no pg_upgrade for 17, no pg_dump for 16) before touching anything, and the old cluster runs on', async () => {
    const instance = await preparedWithData('c', binary('16'));
    await assert.rejects(upgrade(instance, binary('16'), binary('17')), /cannot be upgraded to 17 on this host.*postgresql-17/);
    assert.equal((await readFile(join(instance.dir, 'data', 'PG_VERSION'), 'utf8')).trim(), '16');
    await instance.driver.start();
    const [counted] = await query<{ n: string }>(instance.address, 'app', 'SELECT count(*) AS n FROM t');
    assert.equal(counted!.n, '5000');
    await instance.driver.stop();
  });

  it('leaves the old cluster whole when the copy fails half-way (a setting 16 no longer has)', async () => {
    const instance = await preparedWithData('d', binary('15'));
    // force_parallel_mode is gone from 16 (renamed): the database's dump sets it, the new server refuses
    const admin = new Client({ host: join(instance.dir, 'data'), port: 5432, user: 'os_admin', password: 'Admin-pass-1x', database: 'other' });
    await admin.connect();
    await admin.query('ALTER DATABASE other SET force_parallel_mode = off');
    await admin.end();
    await assert.rejects(upgrade(instance, binary('15'), binary('16')), (err: Error & { details?: string }) => {
      assert.match(`${err.message} ${err.details ?? ''}`, /force_parallel_mode/);
      return true;
    });
    assert.equal((await readFile(join(instance.dir, 'data', 'PG_VERSION'), 'utf8')).trim(), '15');
    assert.deepEqual((await readdir(instance.dir)).filter((name) => name.startsWith('data.')), [], 'the half-made cluster is gone');
    await instance.driver.start();
    const [counted] = await query<{ n: string }>(instance.address, 'app', 'SELECT count(*) AS n FROM t');
    assert.equal(counted!.n, '5000');
    await instance.driver.stop();
  });
});
