// test-lane: parallel (coffer serve on a loopback range, a port and a data directory of its own; it checks processes of its own instances only)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { request, trove, waitForInstance, type Session } from '../support/api-client.js';
import { eventually } from '../support/wait.js';
import { deleteAndVerifyGone, waitActive } from './instance-lifecycle.js';
import { startServe, type ServeRun } from './serve-run.js';

// MariaDB read replicas through the Trove API of a real `coffer serve`: the same API as
// PostgreSQL's (replicas.test.ts), here replicating by GTID. A replica gets what its primary
// wrote before and after it was made (rows, databases and users made through the API), refuses
// a tenant's writes, reports its replication, and once detached is writable and its primary
// keeps no account for it.

const adminPassword = 'Mariadb-replicas-admin-1234';
const appPassword = 'App-pass-for-replicas-1';
let run: ServeRun;
let session: Session;

before(async () => {
  run = await startServe('coffer-e2e-myreplicas', adminPassword, ['--address-pool', '127.97.31.0/24']);
  ({ session } = run);
});

after(async () => {
  await run?.stop();
});

async function query(instance: any, sql: string, user = 'app', password = appPassword, database = 'app'): Promise<RowDataPacket[]> {
  const connection = await createConnection({ host: instance.addresses[0].address, port: 3306, user, password, database, connectTimeout: 5000 });
  connection.on('error', () => undefined);
  try {
    return (await connection.query<RowDataPacket[]>(sql))[0];
  } finally {
    await connection.end().catch(() => connection.destroy());
  }
}

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  return request<any>(method, trove(session, path), { token: session.token, ...(body === undefined ? {} : { body }) });
}

test('a MariaDB read replica: created from its primary, replicating by GTID, read-only, then detached', async () => {
  const made = await call('POST', '/instances', {
    instance: {
      name: 'my-primary',
      flavorRef: '1',
      volume: { size: 1 },
      datastore: { type: 'mariadb' },
      databases: [{ name: 'app' }],
      users: [{ name: 'app', password: appPassword, databases: [{ name: 'app' }] }],
    },
  });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  const primary = await waitActive(session, made.body.instance.id, 120_000);
  await query(primary, 'CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, body VARCHAR(60) NOT NULL)');
  await query(primary, "INSERT INTO notes (body) VALUES ('hello from coffer')");

  const created = await call('POST', '/instances', { instance: { name: 'my-replica', replica_of: primary.id } });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  assert.equal(created.body.instance.replica_of.id, primary.id);
  const replica = await waitActive(session, created.body.instance.id, 120_000);
  assert.equal(replica.datastore.type, 'mariadb');
  assert.deepEqual((await call('GET', `/instances/${primary.id}`)).body.instance.replicas.map((r: any) => r.id), [replica.id]);

  await eventually('the row written before the replica', async () => (await query(replica, 'SELECT body FROM notes').catch(() => [])).map((r) => r.body), (seen) => seen.length === 1 && seen[0] === 'hello from coffer', 30_000);
  await query(primary, "INSERT INTO notes (body) VALUES ('after the replica')");
  assert.equal((await call('POST', `/instances/${primary.id}/databases`, { databases: [{ name: 'later' }] })).status, 202);
  const user = await call('POST', `/instances/${primary.id}/users`, { users: [{ name: 'reader', password: 'Reader-pass-1234', databases: [{ name: 'later' }] }] });
  assert.equal(user.status, 202, JSON.stringify(user.body));
  await eventually(
    'the row, the database and the user on the replica',
    async () => {
      const notes = await query(replica, 'SELECT COUNT(*) AS n FROM notes').catch(() => []);
      const who = await query(replica, 'SELECT CURRENT_USER() AS who', 'reader', 'Reader-pass-1234', 'later').catch(() => []);
      return { notes: Number(notes[0]?.n), who: String(who[0]?.who ?? '') };
    },
    (seen) => seen.notes === 2 && seen.who.startsWith('reader@'),
    30_000,
  );
  const databases = await call('GET', `/instances/${replica.id}/databases`);
  assert.deepEqual(databases.body.databases.map((d: any) => d.name).sort(), ['app', 'later']);

  const sourceStatus = await call('GET', `/instances/${primary.id}/replication`);
  assert.equal(sourceStatus.status, 200, JSON.stringify(sourceStatus.body));
  assert.equal(sourceStatus.body.replication.role, 'source');
  assert.deepEqual(sourceStatus.body.replication.replicas.map((r: any) => [r.id, r.streaming]), [[replica.id, true]]);
  const replicaStatus = await call('GET', `/instances/${replica.id}/replication`);
  assert.equal(replicaStatus.status, 200, JSON.stringify(replicaStatus.body));
  assert.equal(replicaStatus.body.replication.role, 'replica');
  assert.equal(replicaStatus.body.replication.replica_of, primary.id);
  assert.equal(replicaStatus.body.replication.streaming, true);
  assert.equal(typeof replicaStatus.body.replication.lag_seconds, 'number');

  // the engine refuses the tenant's writes on the replica (ER_OPTION_PREVENTS_STATEMENT, read_only)
  await assert.rejects(query(replica, "INSERT INTO notes (body) VALUES ('on the replica')"), (err: { errno?: number }) => err.errno === 1290);

  // detach: writable, its own from now on, and its primary keeps no account for it
  const detach = await call('PUT', `/instances/${replica.id}`, { instance: { replica_of: null } });
  assert.equal(detach.status, 202, JSON.stringify(detach.body));
  const detached = (await waitForInstance(session, replica.id, (i) => i?.status === 'ACTIVE' && i.replica_of === undefined, 60_000)).instance;
  await query(detached, "INSERT INTO notes (body) VALUES ('detached')");
  assert.deepEqual((await query(detached, 'SELECT COUNT(*) AS n FROM notes')).map((r) => Number(r.n)), [3]);
  assert.deepEqual((await query(primary, 'SELECT COUNT(*) AS n FROM notes')).map((r) => Number(r.n)), [2]);
  assert.equal((await call('GET', `/instances/${primary.id}`)).body.instance.replicas, undefined);
  assert.deepEqual((await call('GET', `/instances/${primary.id}/replication`)).body.replication, { role: 'standalone', failover: true, synchronous: false });

  await deleteAndVerifyGone(session, replica.id, run.dataDir.path);
  await deleteAndVerifyGone(session, primary.id, run.dataDir.path);
});
