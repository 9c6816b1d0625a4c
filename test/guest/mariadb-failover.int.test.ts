// test-lane: parallel (engines as coffer-test-db, a user no agent walls, replicate between random loopback addresses; their own directories)
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RowDataPacket } from 'mysql2/promise';
import type { PrepareInput } from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/index.js';
import { engineRegistry, type EngineBinary, type EngineDriver } from '../../src/guest/index.js';
import { withAdminConnection } from '../../src/guest/engines/mysql-family/connection.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { tempDataDir } from '../support/temp-dir.js';
import { testCa } from '../support/test-ca.js';
import { eventually as poll } from '../support/wait.js';
import { localRunner, randomAddress } from './engine-fixture.js';
import { cleanUpMysqlFamily, connectTenant } from './mysql-family-fixture.js';

// MariaDB switchover and failover at the engine level, with three real servers: a fenced
// source refuses everyone and its replicas get all it wrote, a replica is promoted and the
// others (the former source among them) follow it keeping their data; after a source's crash
// the most advanced replica is promoted without losing a row it had, and the crashed source,
// which wrote after its replicas were cut off, cannot follow (Conflict) and stays stopped; a
// synchronous source's commit waits until a replica has received it.

type Row = RowDataPacket & Record<string, unknown>;
interface Instance {
  name: string;
  driver: EngineDriver;
  address: string;
  dir: string;
}

describe('mariadb switchover and failover', () => {
  let root: string;
  let binary: EngineBinary;
  const input: PrepareInput = {
    memoryMb: 256,
    databases: [{ name: 'app' }],
    users: [{ name: 'tenant', password: 'tenant-Pass-1', databases: [{ name: 'app' }] }],
    adminPassword: 'primary-Admin-1',
    access: null,
    overrides: {},
  };
  const replicaInput: PrepareInput = { ...input, databases: [], users: [], adminPassword: 'unused-Admin-1' };
  let p: Instance;
  let r1: Instance;
  let r2: Instance;

  async function instance(name: string): Promise<Instance> {
    const dir = join(root, name);
    await mkdir(dir);
    await chmod(dir, 0o711);
    const address = randomAddress();
    const driver = engineRegistry.mariadb.create({
      placement: { instanceId: name, dir, address, port: 3306 },
      binary,
      runner: await localRunner(),
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    });
    // as the guest does before a first start: every instance serves TLS, its replicas connect with it
    await driver.installTls(await (await testCa()).issue({ address, validityDays: 1 }));
    return { name, driver, address, dir };
  }

  async function query(at: Instance, sql: string): Promise<Row[]> {
    const connection = await connectTenant({ address: at.address, port: 3306, user: 'tenant', password: 'tenant-Pass-1', database: 'app' });
    try {
      return (await connection.query<Row[]>(sql))[0];
    } finally {
      await connection.end().catch(() => connection.destroy());
    }
  }

  /** as the guest logs in, with the admin password it keeps */
  async function admin(at: Instance, sql: string): Promise<Row[]> {
    const password = await readFile(join(at.dir, 'os_admin.password'), 'utf8');
    return withAdminConnection({ socketPath: join(at.dir, 'data', 'mysqld.sock'), password }, async (c) => (await c.query<Row[]>(sql))[0]);
  }

  const values = async (at: Instance) => (await query(at, 'SELECT v FROM t ORDER BY v')).map((row) => String(row.v));

  async function shows(at: Instance, value: string): Promise<void> {
    await poll(`${at.name} to show ${value}`, () => values(at).catch((): string[] => []), (found) => found.includes(value));
  }

  async function position(at: Instance): Promise<number> {
    const status = await at.driver.replication!.status();
    assert.ok(status.role !== 'standalone' && status.position !== undefined, JSON.stringify(status));
    return status.position;
  }

  async function timed<T>(what: string, work: () => Promise<T>): Promise<T> {
    const began = performance.now();
    const result = await work();
    // measured, not asserted: the report quotes these
    console.log(`${what}: ${Math.round(performance.now() - began)} ms`);
    return result;
  }

  const refusesWrites = (at: Instance) =>
    assert.rejects(query(at, "INSERT INTO t VALUES ('refused')"), (err: { code?: string }) => err.code === 'ER_OPTION_PREVENTS_STATEMENT');

  before(async () => {
    root = await tempDataDir('coffer-myfail-');
    const discovery = await engineRegistry.mariadb.discover([], await localRunner());
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    binary = discovery.binaries[0];
    [p, r1, r2] = await Promise.all([instance('p'), instance('r1'), instance('r2')]);
    await p.driver.prepare(input);
    await query(p, "CREATE TABLE t (v VARCHAR(40) PRIMARY KEY) AS SELECT 'before' AS v");
    for (const replica of [r1, r2]) {
      await replica.driver.replication!.prepareReplica(replicaInput, await p.driver.replication!.addReplica({ id: replica.name, address: replica.address }));
    }
    await Promise.all([shows(r1, 'before'), shows(r2, 'before')]);
  });

  after(async () => {
    for (const at of [p, r1, r2]) await at?.driver.stop().catch(() => undefined);
    await cleanUpMysqlFamily(root);
  });

  it('reports positions: what the source wrote, what each replica received', async () => {
    await query(p, "INSERT INTO t VALUES ('counted')");
    const [written] = await admin(p, 'SELECT @@gtid_binlog_pos AS pos');
    const seq = Number(/^0-\d+-(\d+)$/.exec(String(written!.pos))![1]);
    assert.equal(await position(p), seq);
    await poll('the replicas to receive it', async () => [await position(r1), await position(r2)], (found) => found.every((at) => at === seq));
    // a replica cannot be fenced, nor made synchronous
    await rejectsWithCode(r1.driver.replication!.fence(), 'BadRequest');
    await rejectsWithCode(r1.driver.replication!.setSynchronous(true), 'BadRequest');
  });

  it('switches over: the fenced source refuses everyone, the promoted replica has all, the others follow it', async () => {
    await query(p, "INSERT INTO t VALUES ('last before fence')");
    const fenced = await timed('fence', () => p.driver.replication!.fence());
    assert.ok(fenced.position >= 3, JSON.stringify(fenced));
    assert.equal(await p.driver.health(), 'stopped');
    await assert.rejects(query(p, 'SELECT 1'));
    // idempotent: a fenced, stopped source answers its position again, and status says it too
    assert.deepEqual(await p.driver.replication!.fence(), fenced);
    assert.equal(await position(p), fenced.position);

    await poll('r1 to receive all the fenced source wrote', () => position(r1), (at) => at >= fenced.position);
    await timed('promote (detach)', () => r1.driver.replication!.detach());
    assert.ok((await values(r1)).includes('last before fence'));
    await query(r1, "INSERT INTO t VALUES ('written on r1')");
    assert.deepEqual(await r1.driver.replication!.status(), { role: 'standalone' });

    const forP = await r1.driver.replication!.addReplica({ id: 'p', address: p.address });
    const forR2 = await r1.driver.replication!.addReplica({ id: 'r2', address: r2.address });
    // the promoted replica continues the sequence numbers (its new admin password, the row), under a server id of its own
    assert.equal(await position(r1), fenced.position + 2);
    const [last] = await admin(r1, 'SELECT @@gtid_binlog_pos AS pos, @@server_id AS id');
    assert.equal(String(last!.pos), `0-${String(last!.id)}-${fenced.position + 2}`);
    await timed('follow (former source, stopped)', () => p.driver.replication!.follow(forP));
    await timed('follow (running replica)', () => r2.driver.replication!.follow(forR2));

    await query(r1, "INSERT INTO t VALUES ('after switchover')");
    for (const at of [p, r2]) {
      await shows(at, 'after switchover');
      assert.deepEqual(await values(at), await values(r1));
      await refusesWrites(at);
      const status = await at.driver.replication!.status();
      assert.ok(status.role === 'replica' && status.streaming, JSON.stringify(status));
      assert.deepEqual(status.source, { address: r1.address, port: 3306 });
      // the guest logs in with the new source's admin password, which its binary log also brought
      assert.equal(await readFile(join(at.dir, 'os_admin.password'), 'utf8'), forP.adminPassword);
    }
    // the former source kept nothing of its replicas
    assert.deepEqual(await admin(p, "SELECT User FROM mysql.user WHERE User LIKE 'os\\_repl\\_%'"), []);
    const spec = JSON.parse(await readFile(join(p.dir, 'engine-spec.json'), 'utf8')) as { replication?: unknown };
    assert.deepEqual(spec.replication, { role: 'replica', source: { address: r1.address, port: 3306, user: forP.user, slot: forP.slot } });
    // a replica across a restart
    await p.driver.stop();
    await p.driver.start();
    await query(r1, "INSERT INTO t VALUES ('after restart')");
    await shows(p, 'after restart');
    await refusesWrites(p);
    // a redelivered follow converges
    await r2.driver.replication!.follow(await r1.driver.replication!.addReplica({ id: 'r2', address: r2.address }));
    await query(r1, "INSERT INTO t VALUES ('after redelivery')");
    await shows(r2, 'after redelivery');
  });

  it("fails over after the source's crash: the most advanced replica keeps every row, the crashed source cannot follow", async () => {
    // now: r1 the source, p and r2 its replicas. p is cut off first, then r2, then r1 writes on and dies.
    const source = r1;
    const [ahead, behind] = [r2, p];
    await admin(behind, 'STOP SLAVE IO_THREAD');
    // ahead applies what it receives 2 s late: the promotion must apply what was received, not only what was applied
    await admin(ahead, 'STOP SLAVE');
    await admin(ahead, 'CHANGE MASTER TO MASTER_DELAY = 2');
    await admin(ahead, 'START SLAVE');
    await query(source, "INSERT INTO t VALUES ('only on ahead')");
    await poll('ahead to receive it', async () => [await position(ahead), await position(source)], ([at, written]) => at === written);
    await admin(ahead, 'STOP SLAVE IO_THREAD');
    await query(source, "INSERT INTO t VALUES ('only on the dead source')");
    const written = await position(source);
    process.kill((await source.driver.processId())!, 'SIGKILL');
    await poll('the source to die', () => source.driver.health(), (health) => health === 'stopped');
    // fenced dead: no state file of a clean shutdown, the binary log is recovered to answer
    assert.deepEqual(await timed('fence (crashed source)', () => source.driver.replication!.fence()), { position: written });
    assert.equal(await source.driver.health(), 'stopped');

    const [aheadAt, behindAt] = [await position(ahead), await position(behind)];
    assert.ok(aheadAt > behindAt, `${aheadAt} > ${behindAt}`);
    await timed('promote after a crash (detach, 2 s of delayed apply)', () => ahead.driver.replication!.detach());
    const kept = await values(ahead);
    assert.ok(kept.includes('only on ahead'));
    assert.ok(!kept.includes('only on the dead source'));

    await timed('follow (running replica, behind)', async () =>
      behind.driver.replication!.follow(await ahead.driver.replication!.addReplica({ id: behind.name, address: behind.address })),
    );
    await query(ahead, "INSERT INTO t VALUES ('after failover')");
    await shows(behind, 'after failover');
    assert.deepEqual(await values(behind), await values(ahead));

    const forDead = await ahead.driver.replication!.addReplica({ id: source.name, address: source.address });
    await timed('follow refused (crashed source)', () => rejectsWithCode(source.driver.replication!.follow(forDead), 'Conflict'));
    assert.equal(await source.driver.health(), 'stopped');
    // still what it was: a source holding its own last row, with no replication configured
    assert.equal((await source.driver.replication!.status()).role, 'source');
    assert.doesNotMatch(await readFile(join(source.dir, 'my.cnf'), 'utf8'), /read_only|skip-networking/);
    await ahead.driver.replication!.removeReplica(source.name);
  });

  it('makes a source synchronous: a commit waits until a replica has received it, live and after a restart', async () => {
    // now: r2 the source, p its replica
    const [source, replica] = [r2, p];
    await source.driver.replication!.setSynchronous(true);
    assert.match(await readFile(join(source.dir, 'my.cnf'), 'utf8'), /^rpl_semi_sync_master_wait_point = AFTER_SYNC$/m);
    await admin(replica, 'STOP SLAVE');
    await poll('the replica to disconnect', () => source.driver.replication!.status(), (s) => s.role === 'source' && s.replicas.every((r) => !r.connected));

    let committed: 'waiting' | 'yes' | Error = 'waiting';
    const commit = query(source, "INSERT INTO t VALUES ('synchronous')").then(
      () => (committed = 'yes'),
      (err: Error) => (committed = err),
    );
    await poll(
      'the commit to wait for an acknowledgement',
      async () => (await admin(source, "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE STATE LIKE '%semi-sync ACK%'"))[0]!.n,
      (n) => Number(n) === 1,
    );
    assert.equal(committed, 'waiting');
    await admin(replica, 'START SLAVE');
    // polled, not awaited: a commit that never completes fails the test instead of hanging it
    await poll('the commit to complete', () => committed, (state) => state !== 'waiting');
    await commit;
    assert.equal(committed, 'yes');
    await shows(replica, 'synchronous');

    // kept across a restart
    await source.driver.stop();
    await source.driver.start();
    assert.equal(Number((await admin(source, 'SELECT @@rpl_semi_sync_master_enabled AS on_'))[0]!.on_), 1);
    await source.driver.replication!.setSynchronous(false);
    assert.equal(Number((await admin(source, 'SELECT @@rpl_semi_sync_master_enabled AS on_'))[0]!.on_), 0);
    assert.doesNotMatch(await readFile(join(source.dir, 'my.cnf'), 'utf8'), /rpl_semi_sync_master/);
    await admin(replica, 'STOP SLAVE');
    await query(source, "INSERT INTO t VALUES ('asynchronous')");
  });
});
