// test-lane: parallel (engines as coffer-test-db, a user no agent walls, replicate between random loopback addresses; their own directories)
import assert from 'node:assert/strict';
import { chmod, mkdir, stat } from 'node:fs/promises';
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
import { lsnToNumber, recordEnd } from '../../src/guest/engines/postgresql/failover.js';
import { killDataDirProcesses } from '../../src/guest/engines/postgresql/postmaster.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { tempDataDir } from '../support/temp-dir.js';
import { eventually as poll, until } from '../support/wait.js';
import { cleanUp, randomAddress } from './engine-fixture.js';

// Switchover and failover of PostgreSQL at the engine level, with real servers: a source and two
// replicas, each engine as an OS user of its own walled to the three instances' addresses. A
// switchover fences the source, promotes a replica that received all of it, and the others
// (the former source included) follow it without losing or rewinding anything; a failover after
// the source's host died promotes a replica, and the dead source rejoins by pg_rewind, its
// unreplicated writes undone. Synchronous mode makes a commit wait for a replica.

interface Node {
  name: string;
  driver: EngineDriver;
  address: string;
  dir: string;
  user: EngineIdentity;
}

describe('postgresql switchover and failover', () => {
  let root: string;
  let binary: EngineBinary;
  const nodes: Node[] = [];
  const wall = new NetworkWall(new LocalProcessRunner(undefined));
  const input: PrepareInput = {
    memoryMb: 256,
    databases: [{ name: 'app' }],
    users: [{ name: 'tenant', password: 'tenant-Pass-1', databases: [{ name: 'app' }] }],
    adminPassword: 'primary-Admin-1',
    access: null,
    overrides: {},
  };
  const replicaInput: PrepareInput = { ...input, databases: [], users: [], adminPassword: 'replica-Admin-1' };
  let p: Node;
  let r1: Node;
  let r2: Node;
  /** the topology the failover left */
  let current: { source: Node; behind: Node } | undefined;

  async function node(name: string): Promise<Node> {
    const dir = join(root, name);
    await mkdir(dir);
    await chmod(dir, 0o711);
    const address = randomAddress();
    const user = await createInstanceUser(name, silentLogger());
    const driver = engineRegistry.postgresql.create({
      placement: { instanceId: name, dir, address, port: 5432 },
      binary,
      runner: new LocalProcessRunner(user),
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    });
    const made = { name, driver, address, dir, user };
    nodes.push(made);
    return made;
  }

  async function query<T extends Record<string, unknown>>(at: Node, sql: string, database = 'app'): Promise<T[]> {
    const client = new Client({ host: at.address, port: 5432, user: 'tenant', password: 'tenant-Pass-1', database, connectionTimeoutMillis: 5000 });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return (await client.query<T>(sql)).rows;
    } finally {
      await client.end();
    }
  }

  const values = async (at: Node) => (await query<{ v: string }>(at, 'SELECT v FROM t ORDER BY v')).map((row) => row.v);

  async function shows(at: Node, expected: string[]): Promise<void> {
    const want = JSON.stringify(expected);
    await poll(`${at.name} to show ${want}`, () => values(at).catch(() => undefined), (value) => JSON.stringify(value) === want, 60_000);
  }

  async function position(at: Node): Promise<number> {
    const status = await at.driver.replication!.status();
    assert.ok(status.role !== 'standalone', `${at.name} is in replication`);
    assert.equal(typeof status.position, 'number', `${at.name} reports a position`);
    return status.position!;
  }

  async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
    const began = performance.now();
    const result = await work();
    return [result, Math.round(performance.now() - began)];
  }

  const refusesWrites = (at: Node) =>
    assert.rejects(query(at, "INSERT INTO t VALUES ('refused')"), (err: { code?: string }) => err.code === '25006', `${at.name} refuses writes`);

  before(async () => {
    root = await tempDataDir('coffer-pgfo-');
    const discovery = await engineRegistry.postgresql.discover([], new LocalProcessRunner(undefined));
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    binary = discovery.binaries[0];
    p = await node('fo-p');
    r1 = await node('fo-r1');
    r2 = await node('fo-r2');
    // as the agent walls an engine, opened to every instance a switchover may make its source
    const all = nodes.map((each) => ({ address: each.address, port: 5432 }));
    for (const each of nodes) await wall.raise(each.user.uid, all);
    await p.driver.prepare(input);
    await query(p, "CREATE TABLE t AS SELECT 'a-first'::text AS v");
    for (const replica of [r1, r2]) {
      const grant = await p.driver.replication!.addReplica({ id: replica.name, address: replica.address });
      await replica.driver.replication!.prepareReplica(replicaInput, grant);
    }
  });

  after(async () => {
    for (const each of nodes) await each.driver.stop().catch(() => undefined);
    await cleanUp(root);
    for (const each of nodes) {
      await wall.remove(each.user.uid).catch(() => undefined);
      await removeInstanceUser(each.user.name, silentLogger()).catch(() => undefined);
    }
  });

  it('converts LSNs and finds where a record ends across page headers', () => {
    assert.equal(lsnToNumber('0/0'), 0);
    assert.equal(lsnToNumber('1/A'), 2 ** 32 + 10);
    assert.equal(lsnToNumber('FFFFFFFF/FFFFFFFF'), 2 ** 64 - 1);
    assert.throws(() => lsnToNumber('nonsense'));
    // MAXALIGNed within a page, ending exactly at a page boundary, crossing into a page, into a segment
    assert.equal(recordEnd(0x28, 114, 8192, 16 << 20), 0x28 + 120);
    assert.equal(recordEnd(8192 - 120, 114, 8192, 16 << 20), 8192);
    assert.equal(recordEnd(8192 - 16, 114, 8192, 16 << 20), 8192 + 24 + 104);
    assert.equal(recordEnd((16 << 20) - 16, 114, 8192, 16 << 20), (16 << 20) + 40 + 104);
  });

  it("reports positions that grow with the source's writes and that its replicas reach", async () => {
    const before = await position(p);
    await query(p, "INSERT INTO t VALUES ('b-positions')");
    const written = await position(p);
    assert.ok(written > before, `${written} > ${before}`);
    for (const replica of [r1, r2]) {
      await poll(`${replica.name} to reach ${written}`, () => position(replica), (at) => at >= written, 30_000);
    }
  });

  it('makes commits wait for a replica in synchronous mode, the replicas named as they connect', async () => {
    await p.driver.replication!.setSynchronous(true);
    const setting = async () => (await query<{ names: string }>(p, "SELECT current_setting('synchronous_standby_names') AS names"))[0]!.names;
    assert.equal(await setting(), 'ANY 1 ("coffer_fo_r1", "coffer_fo_r2")');
    // addReplica and removeReplica keep the list current
    await p.driver.replication!.addReplica({ id: 'fo-r3', address: randomAddress() });
    assert.equal(await setting(), 'ANY 1 ("coffer_fo_r1", "coffer_fo_r2", "coffer_fo_r3")');
    await p.driver.replication!.removeReplica('fo-r3');
    assert.equal(await setting(), 'ANY 1 ("coffer_fo_r1", "coffer_fo_r2")');

    await r1.driver.stop();
    await r2.driver.stop();
    let committed = false;
    const insert = query(p, "INSERT INTO t VALUES ('c-synchronous')").then(() => {
      committed = true;
    });
    // the backend waits for a standby's flush (wait event SyncRep) while none is connected
    await until('the commit to wait for a replica', async () => {
      const rows = await query<{ n: number }>(p, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep'");
      return rows[0]!.n === 1;
    });
    assert.equal(committed, false);
    await r1.driver.start();
    await insert;
    assert.ok(committed);
    await shows(r1, ['a-first', 'b-positions', 'c-synchronous']);
    await r2.driver.start();
    await p.driver.replication!.setSynchronous(false);
    assert.equal(await setting(), '');
    await shows(r2, ['a-first', 'b-positions', 'c-synchronous']);
  });

  it('switches over: the fenced source and the other replica follow the promoted one, nothing lost, nothing rewound', async (t) => {
    await query(p, "INSERT INTO t VALUES ('d-before-switch')");
    const [fenced, fenceMs] = await timed(() => p.driver.replication!.fence());
    assert.equal(await p.driver.processId(), undefined, 'the fenced source is stopped');
    // idempotent: answered again from the stopped cluster
    assert.deepEqual(await p.driver.replication!.fence(), fenced);
    await rejectsWithCode(r1.driver.replication!.fence(), 'BadRequest');
    for (const replica of [r1, r2]) {
      await poll(`${replica.name} to reach the fenced position`, () => position(replica), (at) => at >= fenced.position, 30_000);
    }
    // the position is the end of what the source wrote: a replica that has it all is exactly there
    assert.equal(await position(r1), fenced.position);

    const [, promoteMs] = await timed(() => r1.driver.replication!.detach());
    await query(r1, "INSERT INTO t VALUES ('e-after-switch')");
    const toP: ReplicationGrant = await r1.driver.replication!.addReplica({ id: p.name, address: p.address });
    const toR2: ReplicationGrant = await r1.driver.replication!.addReplica({ id: r2.name, address: r2.address });
    const dataDir = (await stat(join(p.dir, 'data'))).ino;
    const [, followSourceMs] = await timed(() => p.driver.replication!.follow(toP));
    assert.equal((await stat(join(p.dir, 'data'))).ino, dataDir, 'the former source keeps its data directory: it follows as it is');
    const [, followReplicaMs] = await timed(() => r2.driver.replication!.follow(toR2));
    t.diagnostic(`fence ${fenceMs} ms, promote ${promoteMs} ms, follow: former source ${followSourceMs} ms, replica ${followReplicaMs} ms`);

    const expected = ['a-first', 'b-positions', 'c-synchronous', 'd-before-switch', 'e-after-switch'];
    await shows(p, expected);
    await shows(r2, expected);
    await query(r1, "INSERT INTO t VALUES ('f-streamed')");
    await shows(p, [...expected, 'f-streamed']);
    await shows(r2, [...expected, 'f-streamed']);
    await refusesWrites(p);
    await refusesWrites(r2);
    const source = await r1.driver.replication!.status();
    assert.ok(source.role === 'source');
    assert.deepEqual(source.replicas.map((replica) => [replica.replicaId, replica.connected]).sort(), [
      [p.name, true],
      [r2.name, true],
    ]);
    const former = await p.driver.replication!.status();
    assert.ok(former.role === 'replica');
    assert.deepEqual(former.source, { address: r1.address, port: 5432 });
    // the former source kept no slot for its former replicas
    assert.deepEqual(await query(p, 'SELECT count(*)::int AS n FROM pg_replication_slots'), [{ n: 0 }]);
    // idempotent
    await p.driver.replication!.follow(toP);
    await shows(p, [...expected, 'f-streamed']);
  });

  it('fails over after the source host died: the promoted replica has every write it received, the dead source rejoins without its own', async (t) => {
    // r1 is the source now, p and r2 its replicas
    await query(r1, "INSERT INTO t VALUES ('g-replicated')");
    const written = await position(r1);
    for (const replica of [p, r2]) {
      await poll(`${replica.name} to reach ${written}`, () => position(replica), (at) => at >= written, 30_000);
    }
    // writes the replicas never get: they are down while the source takes them, then the source's host dies
    await p.driver.stop();
    await r2.driver.stop();
    await query(r1, 'CREATE TABLE only_on_dead_source AS SELECT generate_series(1, 1000) AS n');
    await query(r1, "INSERT INTO t VALUES ('h-lost')");
    const pid = await r1.driver.processId();
    assert.ok(pid !== undefined);
    process.kill(pid, 'SIGKILL');
    await killDataDirProcesses(join(r1.dir, 'data'));

    await p.driver.start();
    await r2.driver.start();
    // as a failover picks: the replica that received the most
    const [promoted, other] = (await position(p)) >= (await position(r2)) ? [p, r2] : [r2, p];
    const [, promoteMs] = await timed(() => promoted.driver.replication!.detach());
    const kept = ['a-first', 'b-positions', 'c-synchronous', 'd-before-switch', 'e-after-switch', 'f-streamed', 'g-replicated'];
    assert.deepEqual(await values(promoted), kept, 'every write the replica received survives its promotion');
    await query(promoted, "INSERT INTO t VALUES ('i-new-source')");
    const toOther = await promoted.driver.replication!.addReplica({ id: other.name, address: other.address });
    const toR1 = await promoted.driver.replication!.addReplica({ id: r1.name, address: r1.address });
    const [, followReplicaMs] = await timed(() => other.driver.replication!.follow(toOther));
    const [, rejoinMs] = await timed(() => r1.driver.replication!.follow(toR1));
    t.diagnostic(`promote ${promoteMs} ms, follow: replica ${followReplicaMs} ms, dead source (copied anew) ${rejoinMs} ms`);

    await shows(r1, [...kept, 'i-new-source']);
    assert.deepEqual(
      await query(r1, "SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'only_on_dead_source'"),
      [{ n: 0 }],
      'what only the dead source had is gone',
    );
    await query(promoted, "INSERT INTO t VALUES ('j-streamed')");
    await shows(r1, [...kept, 'i-new-source', 'j-streamed']);
    await shows(other, [...kept, 'i-new-source', 'j-streamed']);
    await refusesWrites(r1);
    await refusesWrites(other);
    const rejoined = await r1.driver.replication!.status();
    assert.ok(rejoined.role === 'replica' && rejoined.streaming);
    assert.deepEqual(rejoined.source, { address: promoted.address, port: 5432 });
    assert.deepEqual(await query(r1, 'SELECT count(*)::int AS n FROM pg_replication_slots'), [{ n: 0 }]);
    const source = await promoted.driver.replication!.status();
    assert.ok(source.role === 'source');
    assert.ok(source.replicas.every((replica) => replica.connected));
    current = { source: promoted, behind: other };
  });

  it('copies anew a running replica that received more than the replica promoted in its place', async (t) => {
    const { source, behind } = current!;
    // behind misses the last write, r1 gets it; then the source's host dies and behind is promoted all the same
    await behind.driver.stop();
    await query(source, "INSERT INTO t VALUES ('k-ahead')");
    const written = await position(source);
    await poll('r1 to reach the last write', () => position(r1), (at) => at >= written, 30_000);
    const pid = await source.driver.processId();
    assert.ok(pid !== undefined);
    process.kill(pid, 'SIGKILL');
    await killDataDirProcesses(join(source.dir, 'data'));
    await behind.driver.start();
    await behind.driver.replication!.detach();
    await query(behind, "INSERT INTO t VALUES ('l-behind-promoted')");
    const toR1 = await behind.driver.replication!.addReplica({ id: r1.name, address: r1.address });
    const toSource = await behind.driver.replication!.addReplica({ id: source.name, address: source.address });
    const [, aheadMs] = await timed(() => r1.driver.replication!.follow(toR1));
    await source.driver.replication!.follow(toSource);
    t.diagnostic(`follow of a replica ahead of the new source (copied anew) ${aheadMs} ms`);
    for (const follower of [r1, source]) {
      await poll(
        `${follower.name} to show the new source's rows and not k-ahead`,
        () => values(follower).catch((): string[] => []),
        (rows) => rows.includes('l-behind-promoted') && !rows.includes('k-ahead'),
        60_000,
      );
      await refusesWrites(follower);
    }
    current = { source: behind, behind: source };
  });

  it('keeps the data of an instance its new source refuses, stopped as it came, until a follow with a good grant', async () => {
    const { source } = current!;
    const grant = await source.driver.replication!.addReplica({ id: r1.name, address: r1.address });
    await r1.driver.stop();
    const dataDir = (await stat(join(r1.dir, 'data'))).ino;
    await rejectsWithCode(r1.driver.replication!.follow({ ...grant, password: 'not-the-password' }), 'EngineError');
    assert.equal(await r1.driver.processId(), undefined, 'stopped as it came');
    assert.equal((await stat(join(r1.dir, 'data'))).ino, dataDir, 'its data directory kept');
    await r1.driver.replication!.follow(grant);
    assert.equal((await stat(join(r1.dir, 'data'))).ino, dataDir, 'followed as it was');
    await query(source, "INSERT INTO t VALUES ('m-after-refusal')");
    await poll('r1 to show the new row', () => values(r1).catch((): string[] => []), (rows) => rows.includes('m-after-refusal'), 60_000);
  });
});
