// test-lane: parallel (engines as coffer-test-db, a user no agent walls, replicate between random loopback addresses; their own directories)
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import type { PrepareInput } from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/index.js';
import { LocalProcessRunner, type EngineIdentity } from '../../src/agent/index.js';
import { createInstanceUser, removeInstanceUser } from '../../src/agent/instance-user.js';
import { NetworkWall } from '../../src/agent/network-wall.js';
import { engineRegistry, type EngineBinary, type EngineDriver } from '../../src/guest/index.js';
import type { ReplicationGrant } from '../../src/guest/engines/engine.js';
import { replicationRole, replicationSlot } from '../../src/guest/engines/postgresql/replication.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { tempDataDir } from '../support/temp-dir.js';
import { eventually as poll } from '../support/wait.js';
import { cleanUp, localRunner, randomAddress, sealedFullBackup } from './engine-fixture.js';

// PostgreSQL read replicas at the engine level, with real servers: a primary gives a replica a
// role and a slot of its own, the replica is a base backup streaming from it as a hot standby,
// what the primary writes (tables, databases, users) reaches it, the replica refuses writes,
// stays a replica across a restart, and once detached is a writable primary of its own. The
// replica's engine runs as an OS user of its own walled as the agent walls it (network-wall.ts):
// its own address and its primary's, nothing else.

describe('postgresql replication', () => {
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
    const driver = engineRegistry.postgresql.create({
      placement: { instanceId: name, dir, address, port: 5432 },
      binary,
      runner: runner ?? (await localRunner()),
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
      // as on a host with a backup storage: the replica's settings archive WAL, which a standby does not
      archiveLog: name === 'replica',
    });
    drivers.push(driver);
    return { driver, address, dir };
  }

  async function query<T extends Record<string, unknown>>(address: string, user: string, password: string, sql: string, database = 'app'): Promise<T[]> {
    const client = new Client({ host: address, port: 5432, user, password, database, connectionTimeoutMillis: 5000 });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return (await client.query<T>(sql)).rows;
    } finally {
      await client.end();
    }
  }

  function lsnValue(text: string): bigint {
    const [high, low] = text.split('/');
    return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
  }

  /** what the replica answers once it replayed what the primary wrote */
  async function eventually<T>(read: () => Promise<T>, expected: T): Promise<void> {
    const want = JSON.stringify(expected);
    await poll(`the replica to show ${want}`, () => read().catch(() => undefined), (value) => JSON.stringify(value) === want);
  }

  before(async () => {
    root = await tempDataDir('coffer-pgrepl-');
    const discovery = await engineRegistry.postgresql.discover([], await localRunner());
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    binary = discovery.binaries[0];
    primary = await instance('primary');
    replicaUser = await createInstanceUser('replica', silentLogger());
    replica = await instance('replica', new LocalProcessRunner(replicaUser));
    // as the agent walls a replica: its own engine and its primary's, nothing else
    await wall.raise(replicaUser.uid, [
      { address: replica.address, port: 5432 },
      { address: primary.address, port: 5432 },
    ]);
    await primary.driver.prepare(input);
    await query(primary.address, 'tenant', 'tenant-Pass-1', "CREATE TABLE t AS SELECT 'before'::text AS v");
    grant = await primary.driver.replication!.addReplica({ id: 'replica', address: replica.address });
    await replica.driver.replication!.prepareReplica(replicaInput, grant);
  });

  after(async () => {
    for (const driver of drivers) await driver.stop().catch(() => undefined);
    await cleanUp(root);
    if (replicaUser !== undefined) {
      await wall.remove(replicaUser.uid).catch(() => undefined);
      await removeInstanceUser(replicaUser.name, silentLogger()).catch(() => undefined);
    }
  });

  it('reports the capability', () => {
    assert.equal(engineRegistry.postgresql.capabilities.replication, true);
  });

  it('gives the replica a role and a slot of its own, with a strong password that is in no configuration file', async () => {
    assert.equal(grant.user, replicationRole('replica'));
    assert.equal(grant.slot, replicationSlot('replica'));
    assert.ok(grant.password.length >= 40, 'a 256-bit password');
    // the standby's walreceiver connects a moment after it started
    await eventually(() => query(primary.address, 'tenant', 'tenant-Pass-1', 'SELECT slot_name, active FROM pg_replication_slots'), [
      { slot_name: grant.slot, active: true },
    ]);
    for (const file of ['postgresql.conf', 'pg_hba.conf', 'engine-spec.json']) {
      assert.ok(!(await readFile(join(replica.dir, file), 'utf8')).includes(grant.password), `${file} holds no password`);
    }
    const hba = await readFile(join(primary.dir, 'pg_hba.conf'), 'utf8');
    assert.match(hba, new RegExp(`^host replication ${grant.user} 127\\.0\\.0\\.1/32 scram-sha-256$`, 'm'));
    assert.match(hba, new RegExp(`^host all ${grant.user} 0\\.0\\.0\\.0/0 reject$`, 'm'));
    // the tenant's own lines do not let anyone else replicate
    assert.doesNotMatch(hba, /^host(ssl)? replication all/m);
  });

  it("refuses the replica's role any session but replication, and refuses tenants replication", async () => {
    await assert.rejects(query(primary.address, grant.user, grant.password, 'SELECT 1', 'postgres'), /pg_hba\.conf rejects connection/);
    // a physical replication connection, as pg_basebackup opens: pg_hba has no line for a tenant's
    await assert.rejects(
      new LocalProcessRunner(undefined).run(
        join(binary.binDir, 'pg_basebackup'),
        ['-h', primary.address, '-p', '5432', '-U', 'tenant', '-w', '-D', join(root, 'stolen'), '-X', 'none'],
        { timeoutMs: 30_000, env: { PGPASSWORD: 'tenant-Pass-1' } },
      ),
      (err: { details?: string }) => /no pg_hba\.conf entry for replication connection/.test(err.details ?? ''),
    );
  });

  it("streams the primary's data, databases and users to the replica", async () => {
    assert.deepEqual(await query(replica.address, 'tenant', 'tenant-Pass-1', 'SELECT v FROM t'), [{ v: 'before' }]);
    await query(primary.address, 'tenant', 'tenant-Pass-1', "INSERT INTO t VALUES ('after')");
    await primary.driver.databases!.create([{ name: 'later' }]);
    await primary.driver.users!.create([{ name: 'newcomer', password: 'newcomer-Pass-1', databases: [{ name: 'later' }] }]);
    await eventually(async () => (await query<{ v: string }>(replica.address, 'tenant', 'tenant-Pass-1', 'SELECT v FROM t ORDER BY v')).map((row) => row.v), ['after', 'before']);
    await eventually(async () => (await replica.driver.databases!.list()).map((d) => d.name).sort(), ['app', 'later']);
    await eventually(async () => (await replica.driver.users!.list()).map((u) => u.name).sort(), ['newcomer', 'tenant']);
    assert.deepEqual(await query(replica.address, 'newcomer', 'newcomer-Pass-1', 'SELECT current_user AS who', 'later'), [{ who: 'newcomer' }]);
  });

  it("backs up the standby: its base backup, taken through the compressor as a backup storage takes it, restores the primary's data on the primary's timeline", async () => {
    const { facts, link } = await sealedFullBackup(replica.driver);
    const [primaryState] = await query<{ id: string; timeline: number }>(
      primary.address,
      'tenant',
      'tenant-Pass-1',
      'SELECT system_identifier::text AS id, (SELECT timeline_id FROM pg_control_checkpoint()) AS timeline FROM pg_control_system()',
    );
    // the same cluster as its primary: WAL archived from either one continues this backup
    assert.equal(facts['system-identifier'], primaryState!.id);
    assert.equal(facts.timeline, String(primaryState!.timeline));
    assert.ok(lsnValue(facts['stop-lsn']!) >= lsnValue(facts['start-lsn']!), JSON.stringify(facts));
    // a standby archives no WAL of its own (its primary does): nothing can follow this backup from it
    assert.equal(facts['wal-archiving'], 'off');
    // nor from a backup of its primary's: an incremental is refused on a replica, with the reason
    await assert.rejects(
      replica.driver.backup!.start({ parent: { ...facts, 'wal-archiving': 'on', 'wal-prefix': 'primary', 'wal-start': 'x' }, signal: new AbortController().signal }),
      (err: { code?: string; message?: string }) => err.code === 'BadRequest' && /is a replica/.test(err.message ?? ''),
    );
    const restored = await instance('restored-from-standby');
    await restored.driver.prepare({ ...input, adminPassword: 'restored-Admin-1' }, undefined, [link]);
    assert.deepEqual(await query(restored.address, 'tenant', 'tenant-Pass-1', 'SELECT v FROM t ORDER BY v'), [{ v: 'after' }, { v: 'before' }]);
    // a restore is a primary of its own, writable
    await query(restored.address, 'tenant', 'tenant-Pass-1', "INSERT INTO t VALUES ('restored')");
    await restored.driver.stop();
  });

  it('does not list the replication role among the primary\'s users, nor lets one be made under its prefix', async () => {
    assert.deepEqual((await primary.driver.users!.list()).map((u) => u.name).sort(), ['newcomer', 'tenant']);
    await rejectsWithCode(primary.driver.users!.create([{ name: 'os_repl_x', password: 'x-Pass-1234', databases: [] }]), 'BadRequest');
  });

  it('refuses writes on the replica with the engine\'s own error', async () => {
    await assert.rejects(query(replica.address, 'tenant', 'tenant-Pass-1', "INSERT INTO t VALUES ('no')"), (err: { code?: string }) => err.code === '25006');
    await assert.rejects(replica.driver.databases!.create([{ name: 'nope' }]), /read-only|recovery/);
  });

  it('reports the lag of each replica on the primary and its own on the replica', async () => {
    const source = await primary.driver.replication!.status();
    assert.equal(source.role, 'source');
    assert.ok(source.role === 'source');
    assert.equal(source.replicas.length, 1);
    assert.equal(source.replicas[0]!.replicaId, 'replica');
    assert.equal(source.replicas[0]!.connected, true);
    assert.equal(typeof source.replicas[0]!.lagBytes, 'number');
    assert.ok(source.replicas[0]!.lagBytes! >= 0);
    const own = await replica.driver.replication!.status();
    assert.ok(own.role === 'replica');
    assert.equal(own.streaming, true);
    assert.deepEqual(own.source, { address: primary.address, port: 5432 });
    assert.equal(typeof own.lagBytes, 'number');
  });

  it('stays a replica across a restart (its standby.signal put back readable, a link in its place not followed), and a new driver (an adopting agent) renders it as one', async () => {
    const signal = join(replica.dir, 'data', 'standby.signal');
    // as an earlier version made it, unreadable to the engine (a base backup of the standby failed on it)
    await replica.driver.stop();
    await chmod(signal, 0o600);
    await replica.driver.start();
    assert.equal((await lstat(signal)).mode & 0o777, 0o644);
    // the engine's user swapped it for a link to a file it must not open up: the link is replaced, not followed
    await replica.driver.stop();
    const target = join(root, 'not-the-signal');
    await writeFile(target, 'secret', { mode: 0o600 });
    await rm(signal);
    await symlink(target, signal);
    const adopted = engineRegistry.postgresql.create({
      placement: { instanceId: 'replica', dir: replica.dir, address: replica.address, port: 5432 },
      binary,
      runner: new LocalProcessRunner(replicaUser),
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    });
    drivers.push(adopted);
    await adopted.start();
    assert.deepEqual(await query(replica.address, 'tenant', 'tenant-Pass-1', 'SELECT pg_is_in_recovery() AS r'), [{ r: true }]);
    assert.ok((await lstat(signal)).isFile());
    assert.equal((await stat(target)).mode & 0o777, 0o600);
    await query(primary.address, 'tenant', 'tenant-Pass-1', "INSERT INTO t VALUES ('restarted')");
    await eventually(async () => (await query<{ n: number }>(replica.address, 'tenant', 'tenant-Pass-1', 'SELECT count(*)::int AS n FROM t'))[0]!.n, 3);
    replica.driver = adopted;
  });

  it('refuses a replica as the source of another', async () => {
    await rejectsWithCode(replica.driver.replication!.addReplica({ id: 'cascade', address: randomAddress() }), 'BadRequest');
  });

  it('detaches: the replica becomes a writable primary with its own admin password, its primary drops the slot and role', async () => {
    await replica.driver.replication!.detach();
    await primary.driver.replication!.removeReplica('replica');
    await query(replica.address, 'tenant', 'tenant-Pass-1', "INSERT INTO t VALUES ('detached')");
    assert.equal((await query<{ n: number }>(replica.address, 'tenant', 'tenant-Pass-1', 'SELECT count(*)::int AS n FROM t'))[0]!.n, 4);
    assert.notEqual((await readFile(join(replica.dir, 'os_admin.password'), 'utf8')).trim(), input.adminPassword);
    assert.deepEqual(await replica.driver.replication!.status(), { role: 'standalone' });
    assert.deepEqual(await primary.driver.replication!.status(), { role: 'standalone' });
    assert.deepEqual(await query(primary.address, 'tenant', 'tenant-Pass-1', 'SELECT count(*)::int AS n FROM pg_replication_slots'), [{ n: 0 }]);
    assert.deepEqual(
      await query(primary.address, 'tenant', 'tenant-Pass-1', `SELECT count(*)::int AS n FROM pg_roles WHERE rolname = '${grant.user}'`),
      [{ n: 0 }],
    );
    assert.doesNotMatch(await readFile(join(primary.dir, 'pg_hba.conf'), 'utf8'), /replication os_repl_/);
    assert.doesNotMatch(await readFile(join(replica.dir, 'postgresql.conf'), 'utf8'), /primary_conninfo/);
    // still its own after a restart
    await replica.driver.stop();
    await replica.driver.start();
    assert.deepEqual(await query(replica.address, 'tenant', 'tenant-Pass-1', 'SELECT pg_is_in_recovery() AS r'), [{ r: false }]);
    // idempotent
    await replica.driver.replication!.detach();
    await primary.driver.replication!.removeReplica('replica');
  });
});
