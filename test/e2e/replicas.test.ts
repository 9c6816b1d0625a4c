// test-lane: parallel (coffer serve on a loopback range, a port and a data directory of its own; it checks processes of its own instances only)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { request, trove, waitForInstance, type Session } from '../support/api-client.js';
import { describeRun, lastJson, openstack, troveCli, type Credentials } from '../support/openstack-clients.js';
import { eventually } from '../support/wait.js';
import { appPassword, connectAndWrite, createInstance, deleteAndVerifyGone, waitActive } from './instance-lifecycle.js';
import { startServe, type ServeRun } from './serve-run.js';
import { wallDestinations } from '../support/network-walls.js';

// Read replicas of PostgreSQL through the Trove API of a real `coffer serve`: a replica is
// created from its primary (its flavor, datastore and volume), streams what the primary writes
// (rows, databases, users made through the API), refuses writes, shows in both views, keeps its
// primary from being deleted, and once detached is a writable instance of its own.

const adminPassword = 'Replicas-admin-pass-1234';
let run: ServeRun;
let session: Session;

before(async () => {
  run = await startServe('coffer-e2e-replicas', adminPassword, ['--address-pool', '127.91.11.0/24']);
  ({ session } = run);
});

after(async () => {
  await run?.stop();
});

async function query(instance: any, sql: string, user = 'app', password = appPassword, database = 'app'): Promise<any[]> {
  const client = new pg.Client({ host: instance.addresses[0].address, port: 5432, user, password, database, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

/** Where the network wall lets an instance's engine user connect (its uid's address.port pairs), and the record the agent keeps. */
async function wallOf(id: string): Promise<{ allowed: string[]; record: any }> {
  const record = JSON.parse(await readFile(join(run.dataDir.path, 'instances', id, 'instance.json'), 'utf8'));
  const { stdout: passwd } = await promisify(execFile)('id', ['-u', record.osUser]);
  const uid = Number(passwd.trim());
  return { allowed: await wallDestinations(uid), record };
}

async function show(id: string): Promise<any> {
  const res = await request<any>('GET', trove(session, `/instances/${id}`), { token: session.token });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.instance;
}

async function post(path: string, body: unknown): Promise<{ status: number; body: any }> {
  return request<any>('POST', trove(session, path), { token: session.token, body });
}

test('a PostgreSQL read replica: created from its primary, streaming, read-only, then detached', async () => {
  const primary = await waitActive(session, (await createInstance(session, 'primary')).id);
  await connectAndWrite(primary);

  // what a replica cannot run on
  const refused = await post('/instances', { instance: { name: 'r', replica_of: primary.id, datastore: { type: 'mariadb' } } });
  assert.equal(refused.status, 400);
  assert.match(refused.body.badRequest.message, /^A replica runs its source's datastore, postgresql/);
  const withUsers = await post('/instances', { instance: { name: 'r', replica_of: primary.id, users: [{ name: 'x', password: 'Xx-pass-12345' }] } });
  assert.equal(withUsers.status, 400);
  assert.equal(withUsers.body.badRequest.message, 'Cannot create a replica with users or databases.');

  const created = await post('/instances', { instance: { name: 'replica', replica_of: primary.id } });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const view = created.body.instance;
  assert.equal(view.status, 'BUILD');
  assert.equal(view.replica_of.id, primary.id);
  assert.match(view.replica_of.links[0].href, new RegExp(`/instances/${primary.id}$`));
  assert.equal(view.flavor.id, primary.flavor.id);
  assert.deepEqual(view.volume.size, primary.volume.size);
  assert.equal(view.datastore.version, primary.datastore.version);

  const replica = await waitActive(session, view.id, 120_000);
  assert.equal(replica.replica_of.id, primary.id);
  assert.deepEqual((await show(primary.id)).replicas.map((r: any) => r.id), [replica.id]);
  const list = await request<any>('GET', trove(session, '/instances'), { token: session.token });
  const listed = new Map<string, any>(list.body.instances.map((i: any) => [i.id, i]));
  assert.deepEqual(listed.get(primary.id).replicas.map((r: any) => r.id), [replica.id]);
  assert.equal(listed.get(replica.id).replica_of.id, primary.id);
  assert.equal(listed.get(primary.id).replica_of, undefined);

  // the replica's engine user may reach its own engine and its primary's, nothing else; the primary's only its own
  const replicaAddress = replica.addresses[0].address as string;
  const primaryAddress = primary.addresses[0].address as string;
  const replicaWall = await wallOf(replica.id);
  assert.deepEqual(replicaWall.allowed, [`${primaryAddress}:5432`, `${replicaAddress}:5432`].sort());
  assert.deepEqual(replicaWall.record.replicationSource, { address: primaryAddress, port: 5432 });
  assert.deepEqual((await wallOf(primary.id)).allowed, [`${primaryAddress}:5432`]);

  // a replica of a replica is Trove's Forbidden
  const cascade = await post('/instances', { instance: { name: 'r2', replica_of: replica.id } });
  assert.equal(cascade.status, 401, JSON.stringify(cascade.body));

  // what was written before, and what is written and made through the API after, reaches it
  assert.deepEqual(await query(replica, 'SELECT body FROM notes'), [{ body: 'hello from coffer' }]);
  await query(primary, "INSERT INTO notes (body) VALUES ('after the replica')");
  assert.equal((await post(`/instances/${primary.id}/databases`, { databases: [{ name: 'later' }] })).status, 202);
  const user = await post(`/instances/${primary.id}/users`, { users: [{ name: 'reader', password: 'Reader-pass-1234', databases: [{ name: 'later' }] }] });
  assert.equal(user.status, 202, JSON.stringify(user.body));
  await eventually(
    'the row, the database and the user on the replica',
    async () => {
      const notes = await query(replica, 'SELECT count(*)::int AS n FROM notes').catch(() => []);
      const who = await query(replica, 'SELECT current_user AS who', 'reader', 'Reader-pass-1234', 'later').catch(() => []);
      return { notes: notes[0]?.n, who: who[0]?.who };
    },
    (seen) => seen.notes === 2 && seen.who === 'reader',
    30_000,
  );
  // how far each replica trails, as the engines say now
  const sourceStatus = await request<any>('GET', trove(session, `/instances/${primary.id}/replication`), { token: session.token });
  assert.equal(sourceStatus.status, 200, JSON.stringify(sourceStatus.body));
  assert.equal(sourceStatus.body.replication.role, 'source');
  assert.deepEqual(sourceStatus.body.replication.replicas.map((r: any) => [r.id, r.streaming, typeof r.lag_bytes]), [[replica.id, true, 'number']]);
  const replicaStatus = await request<any>('GET', trove(session, `/instances/${replica.id}/replication`), { token: session.token });
  assert.equal(replicaStatus.status, 200, JSON.stringify(replicaStatus.body));
  assert.equal(replicaStatus.body.replication.role, 'replica');
  assert.equal(replicaStatus.body.replication.replica_of, primary.id);
  assert.equal(replicaStatus.body.replication.streaming, true);
  assert.equal(typeof replicaStatus.body.replication.lag_bytes, 'number');

  const databases = await request<any>('GET', trove(session, `/instances/${replica.id}/databases`), { token: session.token });
  assert.equal(databases.status, 200, JSON.stringify(databases.body));
  assert.deepEqual(databases.body.databases.map((d: any) => d.name).sort(), ['app', 'later']);

  // a backup of the replica (off its primary's back): it restores what the primary wrote into an instance of its own;
  // an incremental of it is refused, saying why (a standby archives no WAL: its primary does)
  const backupOf = async (body: object): Promise<any> => {
    const made = await post('/backups', { backup: { instance: replica.id, ...body } });
    assert.equal(made.status, 202, JSON.stringify(made.body));
    return eventually(
      `backup ${made.body.backup.id} to end`,
      async () => (await request<any>('GET', trove(session, `/backups/${made.body.backup.id}`), { token: session.token })).body.backup,
      (view) => view?.status === 'COMPLETED' || view?.status === 'FAILED',
      60_000,
    );
  };
  const full = await backupOf({ name: 'of-the-replica' });
  assert.equal(full.status, 'COMPLETED', full.fail_reason);
  const incremental = await backupOf({ name: 'incremental-of-the-replica', incremental: true });
  assert.equal(incremental.status, 'FAILED');
  assert.match(incremental.fail_reason, /is a replica, whose write-ahead log its primary archives/);
  const fromBackup = await post('/instances', {
    instance: { name: 'from-the-replica', flavorRef: primary.flavor.id, volume: { size: 1 }, datastore: { type: 'postgresql' }, restorePoint: { backupRef: full.id } },
  });
  assert.equal(fromBackup.status, 200, JSON.stringify(fromBackup.body));
  const restored = await waitActive(session, fromBackup.body.instance.id, 120_000);
  assert.deepEqual(await query(restored, 'SELECT count(*)::int AS n FROM notes'), [{ n: 2 }]);
  await deleteAndVerifyGone(session, restored.id, run.dataDir.path);
  for (const id of [incremental.id, full.id]) assert.equal((await request('DELETE', trove(session, `/backups/${id}`), { token: session.token })).status, 202);

  // Coffer restarts (its engines keep running, it adopts them again): the replica stays a walled, streaming replica
  await run.restart();
  await waitActive(session, replica.id);
  assert.deepEqual((await wallOf(replica.id)).allowed, [`${primaryAddress}:5432`, `${replicaAddress}:5432`].sort());
  await query(primary, "INSERT INTO notes (body) VALUES ('after a restart')");
  await eventually('the row written after the restart on the replica', async () => (await query(replica, 'SELECT count(*)::int AS n FROM notes').catch(() => []))[0]?.n, (n) => n === 3, 30_000);

    // the API sends database and user changes to the source
  const onReplica = await post(`/instances/${replica.id}/databases`, { databases: [{ name: 'nope' }] });
  assert.equal(onReplica.status, 400, JSON.stringify(onReplica.body));
  assert.match(onReplica.body.badRequest.message, new RegExp(`is a read replica of ${primary.id}`));

  // the engine itself refuses writes on the replica
  await assert.rejects(query(replica, "INSERT INTO notes (body) VALUES ('on the replica')"), (err: { code?: string }) => err.code === '25006');

  // a primary with replicas is not deleted
  const deleting = await request<any>('DELETE', trove(session, `/instances/${primary.id}`), { token: session.token });
  assert.equal(deleting.status, 403, JSON.stringify(deleting.body));
  assert.equal(deleting.body.forbidden.message, 'Detach replicas before deleting replica source.');

  // detach: a writable instance of its own, and its primary keeps no slot for it
  const detach = await request('PUT', trove(session, `/instances/${replica.id}`), { token: session.token, body: { instance: { replica_of: null } } });
  assert.equal(detach.status, 202, JSON.stringify(detach.body));
  const detached = (await waitForInstance(session, replica.id, (i) => i?.status === 'ACTIVE' && i.replica_of === undefined, 60_000)).instance;
  assert.equal(detached.replica_of, undefined);
  assert.equal((await show(primary.id)).replicas, undefined);
  await query(detached, "INSERT INTO notes (body) VALUES ('detached')");
  assert.deepEqual(await query(detached, 'SELECT count(*)::int AS n FROM notes'), [{ n: 4 }]);
  assert.deepEqual(await query(primary, 'SELECT count(*)::int AS n FROM notes'), [{ n: 3 }]);
  assert.deepEqual(await query(primary, 'SELECT count(*)::int AS n FROM pg_replication_slots'), [{ n: 0 }]);
  // nor may its engine user reach its former primary any more
  assert.deepEqual((await wallOf(replica.id)).allowed, [`${replicaAddress}:5432`]);
  const again = await request<any>('PUT', trove(session, `/instances/${replica.id}`), { token: session.token, body: { instance: { replica_of: null } } });
  assert.equal(again.status, 400);
  assert.equal(again.body.badRequest.message, `Instance ${replica.id} is not a replica.`);

  await deleteAndVerifyGone(session, replica.id, run.dataDir.path);
  await deleteAndVerifyGone(session, primary.id, run.dataDir.path);
});

test("Debian's openstack client: instance create --replica-of (no flavor, no size), detach; the trove client's create --replica_of (with its flavor)", async () => {
  const admin: Credentials = { authUrl: `${run.baseUrl}/identity/v3`, user: 'admin', password: adminPassword, project: 'admin' };
  const os = async (args: string[]) => {
    const result = await openstack(admin, args);
    assert.equal(result.code, 0, describeRun(['openstack', ...args], result));
    return result;
  };
  const primary = await waitActive(session, (await createInstance(session, 'os-primary')).id);
  await connectAndWrite(primary);
  const created = lastJson((await os(['database', 'instance', 'create', 'os-replica', '--replica-of', 'os-primary', '-f', 'json'])).stdout) as Record<string, unknown>;
  assert.equal(created.name, 'os-replica');
  const replica = await waitActive(session, String(created.id), 120_000);
  assert.equal(replica.replica_of.id, primary.id);
  assert.deepEqual(await query(replica, 'SELECT body FROM notes'), [{ body: 'hello from coffer' }]);

  // the legacy client always sends a flavor: the source's (or a larger one) is taken
  const legacy = await troveCli(admin, ['create', 'tr-replica', '1', '--replica_of', primary.id]);
  assert.equal(legacy.code, 0, describeRun(['trove', 'create', 'tr-replica', '1', '--replica_of', primary.id], legacy));
  const listed = await request<{ instances: Array<{ id: string; name: string }> }>('GET', trove(session, '/instances'), { token: session.token });
  const trReplica = await waitActive(session, listed.body.instances.find((i) => i.name === 'tr-replica')!.id, 120_000);
  assert.equal(trReplica.replica_of.id, primary.id);
  assert.deepEqual(await query(trReplica, 'SELECT body FROM notes'), [{ body: 'hello from coffer' }]);
  await deleteAndVerifyGone(session, trReplica.id, run.dataDir.path);

  await os(['database', 'instance', 'detach', 'os-replica']);
  await waitForInstance(session, replica.id, (i) => i?.status === 'ACTIVE' && i.replica_of === undefined, 60_000);
  await query(replica, "INSERT INTO notes (body) VALUES ('written after detach')");
  await deleteAndVerifyGone(session, replica.id, run.dataDir.path);
  await deleteAndVerifyGone(session, primary.id, run.dataDir.path);
});

test("Debian's clients: a replica promoted to replica source (openstack database instance promote, trove promote-to-replica-source): its primary follows it and nothing is lost; eject is refused while the primary heartbeats", async () => {
  const admin: Credentials = { authUrl: `${run.baseUrl}/identity/v3`, user: 'admin', password: adminPassword, project: 'admin' };
  const primary = await waitActive(session, (await createInstance(session, 'sw-primary')).id);
  await connectAndWrite(primary);
  const made = await post('/instances', { instance: { name: 'sw-replica', replica_of: primary.id } });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  const replica = await waitActive(session, made.body.instance.id, 120_000);
  await query(primary, "INSERT INTO notes (body) VALUES ('before the switchover')");

  /** waits until `newPrimary` is the group's primary and `follower` streams from it, both ready */
  const switched = async (newPrimary: any, follower: any) => {
    await waitForInstance(session, newPrimary.id, (i) => i?.status === 'ACTIVE' && i.operating_status === 'HEALTHY' && i.replica_of === undefined, 120_000);
    await waitForInstance(session, follower.id, (i) => i?.status === 'ACTIVE' && i.operating_status === 'HEALTHY' && i.replica_of?.id === newPrimary.id, 120_000);
  };
  const os = await openstack(admin, ['database', 'instance', 'promote', 'sw-replica']);
  assert.equal(os.code, 0, describeRun(['openstack', 'database', 'instance', 'promote', 'sw-replica'], os));
  await switched(replica, primary);
  assert.deepEqual((await query(replica, 'SELECT body FROM notes ORDER BY id')).map((r) => r.body), ['hello from coffer', 'before the switchover']);
  await query(replica, "INSERT INTO notes (body) VALUES ('on the new primary')");
  await eventually('the old primary streams the new one', async () => (await query(primary, "SELECT count(*)::int AS n FROM notes WHERE body = 'on the new primary'"))[0].n, (n) => n === 1, 10_000);
  await assert.rejects(query(primary, "INSERT INTO notes (body) VALUES ('refused')"), /read-only transaction/);
  assert.ok((await request<any>('GET', trove(session, `/instances/${replica.id}/events`), { token: session.token })).body.events.some((e: any) => e.type === 'replication.promoted'));

  const legacy = await troveCli(admin, ['promote-to-replica-source', primary.id]);
  assert.equal(legacy.code, 0, describeRun(['trove', 'promote-to-replica-source', primary.id], legacy));
  await switched(primary, replica);
  await query(primary, "INSERT INTO notes (body) VALUES ('back on the first')");
  await eventually('the replica streams the first primary again', async () => (await query(replica, "SELECT count(*)::int AS n FROM notes WHERE body = 'back on the first'"))[0].n, (n) => n === 1, 10_000);

  const eject = await openstack(admin, ['database', 'instance', 'eject', 'sw-primary']);
  assert.notEqual(eject.code, 0);
  assert.match(eject.stderr + eject.stdout, new RegExp(`Replica Source ${primary.id} cannot be ejected as it has a current heartbeat`));

  await deleteAndVerifyGone(session, replica.id, run.dataDir.path);
  await deleteAndVerifyGone(session, primary.id, run.dataDir.path);
});
