// test-lane: parallel (engines as coffer-test-db, a user no agent walls, replicate between random loopback addresses; their own directories)
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import type { PrepareInput } from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/index.js';
import { LocalProcessRunner, type EngineIdentity } from '../../src/agent/index.js';
import { createInstanceUser, removeInstanceUser } from '../../src/agent/instance-user.js';
import { NetworkWall } from '../../src/agent/network-wall.js';
import { engineRegistry, type EngineBinary, type EngineDriver } from '../../src/guest/index.js';
import type { ReplicationGrant } from '../../src/guest/engines/engine.js';
import { withAdminConnection } from '../../src/guest/engines/mysql-family/connection.js';
import { replicationUser } from '../../src/guest/engines/mysql-family/replication.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { tempDataDir } from '../support/temp-dir.js';
import { testCa } from '../support/test-ca.js';
import { eventually as poll } from '../support/wait.js';
import { localRunner, randomAddress, sealedFullBackup } from './engine-fixture.js';
import { cleanUpMysqlFamily, connectTenant } from './mysql-family-fixture.js';

// MariaDB read replicas at the engine level, with real servers: a primary gives a replica an
// account of its own (REPLICATION SLAVE only), the replica initialises itself as the primary
// was made and replays its whole binary log by GTID, what the primary writes (rows, databases,
// users) reaches it, tenants' writes on it are refused, it stays a replica across a restart and
// an adoption, and once detached is a writable primary of its own. The replica's engine runs as
// an OS user of its own walled as the agent walls it: its own address and its primary's.

type Row = RowDataPacket & Record<string, unknown>;

describe('mariadb replication', () => {
  let root: string;
  let binary: EngineBinary;
  const drivers: EngineDriver[] = [];
  const input: PrepareInput = {
    memoryMb: 256,
    databases: [{ name: 'app' }],
    users: [{ name: 'tenant', password: 'tenant-Pass-1', databases: [{ name: 'app' }] }],
    adminPassword: 'primary-Admin-1',
    access: null,
    overrides: {},
  };
  const replicaInput: PrepareInput = { ...input, databases: [], users: [], adminPassword: 'replica-Admin-1' };
  let primary: { driver: EngineDriver; address: string; dir: string };
  let replica: { driver: EngineDriver; address: string; dir: string };
  let grant: ReplicationGrant;
  let replicaUser: EngineIdentity;
  const wall = new NetworkWall(new LocalProcessRunner(undefined));

  async function instance(name: string, runner?: LocalProcessRunner): Promise<{ driver: EngineDriver; address: string; dir: string }> {
    const dir = join(root, name);
    await mkdir(dir);
    await chmod(dir, 0o711);
    const address = randomAddress();
    const driver = engineRegistry.mariadb.create({
      placement: { instanceId: name, dir, address, port: 3306 },
      binary,
      runner: runner ?? (await localRunner()),
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    });
    drivers.push(driver);
    return { driver, address, dir };
  }

  async function query(address: string, user: string, password: string, sql: string, database: string | null = 'app'): Promise<Row[]> {
    // the primary refuses plaintext clients (a test CA's certificate: not verified here)
    const connection =
      address === primary.address
        ? await createConnection({ host: address, port: 3306, user, password, database: database ?? undefined, ssl: { rejectUnauthorized: false } })
        : await connectTenant({ address, port: 3306, user, password, database: database ?? undefined });
    connection.on('error', () => undefined);
    try {
      return (await connection.query<Row[]>(sql))[0];
    } finally {
      await connection.end().catch(() => connection.destroy());
    }
  }

  async function eventually<T>(read: () => Promise<T>, expected: T): Promise<void> {
    const want = JSON.stringify(expected);
    await poll(`the replica to show ${want}`, () => read().catch(() => undefined), (value) => JSON.stringify(value) === want);
  }

  const values = async (address: string) => (await query(address, 'tenant', 'tenant-Pass-1', 'SELECT v FROM t ORDER BY v')).map((row) => row.v);

  before(async () => {
    root = await tempDataDir('coffer-myrepl-');
    const discovery = await engineRegistry.mariadb.discover([], await localRunner());
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    binary = discovery.binaries[0];
    primary = await instance('primary');
    replicaUser = await createInstanceUser('myreplica', silentLogger());
    replica = await instance('replica', new LocalProcessRunner(replicaUser));
    await wall.raise(replicaUser.uid, [
      { address: replica.address, port: 3306 },
      { address: primary.address, port: 3306 },
    ]);
    // as the guest does before a first start: the primary serves TLS, and here requires it
    await primary.driver.installTls(await (await testCa()).issue({ address: primary.address, validityDays: 1 }));
    await primary.driver.prepare({ ...input, access: { requireTls: true } });
    await query(primary.address, 'tenant', 'tenant-Pass-1', "CREATE TABLE t (v VARCHAR(20) PRIMARY KEY) AS SELECT 'before' AS v");
    grant = await primary.driver.replication!.addReplica({ id: 'replica', address: replica.address });
    await replica.driver.replication!.prepareReplica(replicaInput, grant);
  });

  after(async () => {
    for (const driver of drivers) await driver.stop().catch(() => undefined);
    await cleanUpMysqlFamily(root);
    if (replicaUser !== undefined) {
      await wall.remove(replicaUser.uid).catch(() => undefined);
      await removeInstanceUser(replicaUser.name, silentLogger()).catch(() => undefined);
    }
  });

  it('reports the capability for MariaDB, not MySQL', () => {
    assert.equal(engineRegistry.mariadb.capabilities.replication, true);
    assert.equal(engineRegistry.mysql.capabilities.replication, false);
  });

  it('gives the replica an account of its own with a strong password and REPLICATION SLAVE alone', async () => {
    assert.equal(grant.user, replicationUser('replica'));
    assert.ok(grant.password.length >= 40, 'a 256-bit password');
    for (const file of ['my.cnf', 'engine-spec.json', 'error.log']) {
      assert.ok(!(await readFile(join(replica.dir, file), 'utf8')).includes(grant.password), `${file} holds no password`);
      assert.ok(!(await readFile(join(primary.dir, file), 'utf8')).includes(grant.password), `${file} holds no password`);
    }
    // it reads no table, and cannot be logged in from anywhere but the replica's side
    await assert.rejects(query(primary.address, grant.user, grant.password, 'SELECT v FROM t'), /denied/);
    await assert.rejects(query(primary.address, grant.user, grant.password, 'SELECT COUNT(*) FROM mysql.user', null), /denied/);
    const rows = await query(primary.address, grant.user, grant.password, 'SHOW GRANTS', null);
    assert.equal(rows.length, 1);
    assert.match(String(Object.values(rows[0]!)[0]), new RegExp(`^GRANT REPLICATION SLAVE ON \\*\\.\\* TO \`${grant.user}\`@\`127\\.0\\.0\\.1\` IDENTIFIED BY PASSWORD '\\*[0-9A-F]{40}'$`));
    // the primary refuses plaintext clients, and the replica connects to it over TLS
    await assert.rejects(connectTenant({ address: primary.address, port: 3306, user: 'tenant', password: 'tenant-Pass-1' }), /secure transport|Access denied/i);
    const [status] = await withAdminConnection({ socketPath: join(replica.dir, 'data', 'mysqld.sock'), password: grant.adminPassword }, async (c) => (await c.query<Row[]>('SHOW SLAVE STATUS'))[0]);
    assert.equal(status!.Master_SSL_Allowed, 'Yes');
    assert.match(await readFile(join(primary.dir, 'my.cnf'), 'utf8'), /^gtid_strict_mode = ON$/m);
    // not archived here: the server expires its own files after a week
    assert.match(await readFile(join(primary.dir, 'my.cnf'), 'utf8'), /^binlog_expire_logs_seconds = 604800$/m);
    assert.match(await readFile(join(replica.dir, 'my.cnf'), 'utf8'), /^read_only = ON$/m);
    const ids = await Promise.all([primary, replica].map(async (i) => /^server_id = (\d+)$/m.exec(await readFile(join(i.dir, 'my.cnf'), 'utf8'))![1]));
    assert.notEqual(ids[0], ids[1]);
  });

  it("replicates the primary's rows, databases and users", async () => {
    await eventually(() => values(replica.address), ['before']);
    await query(primary.address, 'tenant', 'tenant-Pass-1', "INSERT INTO t VALUES ('after')");
    await primary.driver.databases!.create([{ name: 'later' }]);
    await primary.driver.users!.create([{ name: 'newcomer', password: 'newcomer-Pass-1', databases: [{ name: 'later' }] }]);
    await eventually(() => values(replica.address), ['after', 'before']);
    await eventually(async () => (await replica.driver.databases!.list()).map((d) => d.name).sort(), ['app', 'later']);
    await eventually(async () => (await replica.driver.users!.list()).map((u) => u.name).sort(), ['newcomer', 'tenant']);
    // the account's grant replays a moment after the registry's row the list reads
    await eventually(async () => (await query(replica.address, 'newcomer', 'newcomer-Pass-1', 'SELECT CURRENT_USER() AS who', 'later')).map((row) => row.who), [
      'newcomer@127.0.0.0/255.0.0.0',
    ]);
  });

  it("backs up the replica: its backup, taken through the compressor as a backup storage takes it, restores the primary's rows", async () => {
    const { link } = await sealedFullBackup(replica.driver);
    // the backup wrote nothing of its own into the replica's binary log: it goes on replaying its primary's
    await query(primary.address, 'tenant', 'tenant-Pass-1', 'CREATE TABLE after_backup (v INT)');
    await eventually(async () => (await query(replica.address, 'tenant', 'tenant-Pass-1', 'SELECT COUNT(*) AS n FROM after_backup')).map((row) => Number(row.n)), [0]);
    const restored = await instance('restored-from-replica');
    await restored.driver.prepare({ ...input, adminPassword: 'restored-Admin-1' }, undefined, [link]);
    assert.deepEqual(await values(restored.address), ['after', 'before']);
    // a restore is a primary of its own, writable, and replicates from nobody
    await query(restored.address, 'tenant', 'tenant-Pass-1', "INSERT INTO t VALUES ('restored')");
    assert.deepEqual(await restored.driver.replication!.status(), { role: 'standalone' });
    await restored.driver.stop();
  });

  it("does not list the replication account among the primary's users, nor lets one be made under its prefix", async () => {
    assert.deepEqual((await primary.driver.users!.list()).map((u) => u.name).sort(), ['newcomer', 'tenant']);
    await rejectsWithCode(primary.driver.users!.create([{ name: 'os_repl_x', password: 'x-Pass-1234', databases: [] }]), 'BadRequest');
  });

  it("refuses a tenant's writes on the replica with the engine's own error", async () => {
    await assert.rejects(query(replica.address, 'tenant', 'tenant-Pass-1', "INSERT INTO t VALUES ('no')"), (err: { code?: string }) => err.code === 'ER_OPTION_PREVENTS_STATEMENT');
    // the volume guard's "writes allowed" (asked on every first check) leaves a replica read-only
    await replica.driver.refuseWrites(false);
    await assert.rejects(query(replica.address, 'tenant', 'tenant-Pass-1', "INSERT INTO t VALUES ('no')"), (err: { code?: string }) => err.code === 'ER_OPTION_PREVENTS_STATEMENT');
  });

  it('reports the replica connected on the primary and its own lag on the replica', async () => {
    await eventually(async () => {
      const source = await primary.driver.replication!.status();
      return source.role === 'source' ? source.replicas : undefined;
    }, [{ replicaId: 'replica', connected: true }]);
    const own = await replica.driver.replication!.status();
    assert.ok(own.role === 'replica');
    assert.equal(own.streaming, true);
    assert.deepEqual(own.source, { address: primary.address, port: 3306 });
    assert.equal(own.lagSeconds, 0);
  });

  it("keeps its primary's client ranges through an access update, and keeps replicating", async () => {
    await replica.driver.updateAccess({ allowedCidrs: ['10.0.0.0/8'] });
    await query(primary.address, 'tenant', 'tenant-Pass-1', "INSERT INTO t VALUES ('access')");
    await eventually(() => values(replica.address), ['access', 'after', 'before']);
    assert.equal((await replica.driver.replication!.status() as { streaming?: boolean }).streaming, true);
    await query(primary.address, 'tenant', 'tenant-Pass-1', "DELETE FROM t WHERE v = 'access'");
    await eventually(() => values(replica.address), ['after', 'before']);
  });

  it('stays a replica across a restart, and a new driver (an adopting agent) renders it as one', async () => {
    await replica.driver.stop();
    // a my.cnf that lost its replica lines is rendered again from the spec
    await writeFile(join(replica.dir, 'my.cnf'), (await readFile(join(replica.dir, 'my.cnf'), 'utf8')).replace(/^read_only = ON\n/m, ''));
    const adopted = engineRegistry.mariadb.create({
      placement: { instanceId: 'replica', dir: replica.dir, address: replica.address, port: 3306 },
      binary,
      runner: new LocalProcessRunner(replicaUser),
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    });
    drivers.push(adopted);
    await adopted.resize(256);
    await query(primary.address, 'tenant', 'tenant-Pass-1', "INSERT INTO t VALUES ('restarted')");
    await eventually(() => values(replica.address), ['after', 'before', 'restarted']);
    await assert.rejects(query(replica.address, 'tenant', 'tenant-Pass-1', "INSERT INTO t VALUES ('no')"), /read-only/);
    replica.driver = adopted;
  });

  it('refuses a replica to a primary whose binary log no longer starts at its creation', async () => {
    const other = await instance('purged');
    await other.driver.prepare({ ...input, adminPassword: 'purged-Admin-1' });
    const admin = (sql: string) =>
      withAdminConnection({ socketPath: join(other.dir, 'data', 'mysqld.sock'), password: 'purged-Admin-1' }, (c) => c.query(sql));
    await admin('FLUSH BINARY LOGS');
    // the server keeps a file until InnoDB no longer needs it for crash recovery: purged again until it goes
    await poll('the first binary log purged', async () => {
      const [logs] = (await admin('SHOW BINARY LOGS')) as unknown as [Row[]];
      await admin(`PURGE BINARY LOGS TO '${String(logs.at(-1)!.Log_name)}'`);
      return ((await admin('SHOW BINARY LOGS')) as unknown as [Row[]])[0].length;
    }, (count) => count === 1);
    await rejectsWithCode(other.driver.replication!.addReplica({ id: 'late', address: randomAddress() }), 'BadRequest');
    // nothing was made for it
    assert.deepEqual(await other.driver.replication!.status(), { role: 'standalone' });
    await other.driver.stop();
  });

  it('refuses a replica as the source of another', async () => {
    await rejectsWithCode(replica.driver.replication!.addReplica({ id: 'cascade', address: randomAddress() }), 'BadRequest');
  });

  it('detaches: the replica becomes writable with its own admin password, its primary drops the account', async () => {
    await replica.driver.replication!.detach();
    await primary.driver.replication!.removeReplica('replica');
    await query(replica.address, 'tenant', 'tenant-Pass-1', "INSERT INTO t VALUES ('detached')");
    assert.deepEqual(await values(replica.address), ['after', 'before', 'detached', 'restarted']);
    assert.notEqual(await readFile(join(replica.dir, 'os_admin.password'), 'utf8'), input.adminPassword);
    assert.deepEqual(await replica.driver.replication!.status(), { role: 'standalone' });
    assert.deepEqual(await primary.driver.replication!.status(), { role: 'standalone' });
    await assert.rejects(query(primary.address, grant.user, grant.password, 'SELECT 1', null), /denied/);
    assert.doesNotMatch(await readFile(join(replica.dir, 'my.cnf'), 'utf8'), /read_only/);
    // what the primary writes now stays there
    await query(primary.address, 'tenant', 'tenant-Pass-1', "INSERT INTO t VALUES ('primary only')");
    // still its own after a restart
    await replica.driver.stop();
    await replica.driver.start();
    await query(replica.address, 'tenant', 'tenant-Pass-1', "INSERT INTO t VALUES ('own')");
    assert.deepEqual(await values(replica.address), ['after', 'before', 'detached', 'own', 'restarted']);
    // idempotent
    await replica.driver.replication!.detach();
    await primary.driver.replication!.removeReplica('replica');
  });
});
