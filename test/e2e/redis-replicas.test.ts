// test-lane: parallel (coffer serve on a loopback range, a port and a data directory of its own; it checks processes of its own instances only)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { request, trove, waitForInstance, type Session } from '../support/api-client.js';
import { connectRedis } from '../support/redis-client.js';
import { eventually } from '../support/wait.js';
import { deleteAndVerifyGone, waitActive } from './instance-lifecycle.js';
import { startServe, type ServeRun } from './serve-run.js';
import { wallDestinations } from '../support/network-walls.js';

// Read replicas of Redis through the Trove API of a real `coffer serve`, as PostgreSQL's
// (replicas.test.ts): a replica is made from its primary, follows what it writes, serves the
// primary's users (copied by its guest: Redis does not replicate ACL users), refuses writes
// with READONLY, is walled to its own engine and its primary's, and once detached is writable.

const adminPassword = 'Redis-replicas-admin-pass-1234';
const cachePassword = 'Cache-pass-12345';
let run: ServeRun;
let session: Session;
const clients: Redis[] = [];

before(async () => {
  run = await startServe('coffer-e2e-redis-replicas', adminPassword, ['--address-pool', '127.91.13.0/24']);
  ({ session } = run);
});

after(async () => {
  for (const client of clients) client.disconnect();
  await run?.stop();
});

async function as(instance: any, user: string, password: string): Promise<Redis> {
  const client = await connectRedis(instance.addresses[0].address, 6379, [user, password]);
  clients.push(client);
  return client;
}

async function post(path: string, body: unknown): Promise<{ status: number; body: any }> {
  return request<any>('POST', trove(session, path), { token: session.token, body });
}

async function wallOf(id: string): Promise<string[]> {
  const record = JSON.parse(await readFile(join(run.dataDir.path, 'instances', id, 'instance.json'), 'utf8'));
  const uid = Number((await promisify(execFile)('id', ['-u', record.osUser])).stdout.trim());
  return wallDestinations(uid);
}

test('a Redis read replica: created from its primary, following it read-only with its users, then detached', async () => {
  const made = await post('/instances', {
    instance: { name: 'redis-primary', flavorRef: '1', volume: { size: 1 }, datastore: { type: 'redis' }, users: [{ name: 'cache', password: cachePassword }] },
  });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  const primary = await waitActive(session, made.body.instance.id);
  await (await as(primary, 'cache', cachePassword)).set('greeting', 'hello from coffer');

  const created = await post('/instances', { instance: { name: 'redis-replica', replica_of: primary.id } });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  assert.equal(created.body.instance.replica_of.id, primary.id);
  assert.equal(created.body.instance.datastore.type, 'redis');
  const replica = await waitActive(session, created.body.instance.id, 120_000);
  assert.equal(replica.status, 'ACTIVE', JSON.stringify(replica));
  assert.deepEqual((await waitActive(session, primary.id)).replicas.map((r: any) => r.id), [replica.id]);

  const primaryAddress = primary.addresses[0].address as string;
  const replicaAddress = replica.addresses[0].address as string;
  // replication goes over the primary's TLS port (6380): the only one of its ports the replica may reach
  assert.deepEqual(await wallOf(replica.id), [`${primaryAddress}:6380`, `${replicaAddress}:6379`].sort());

  // the primary's data and users, and what comes after
  const reader = await as(replica, 'cache', cachePassword);
  assert.equal(await reader.get('greeting'), 'hello from coffer');
  await (await as(primary, 'cache', cachePassword)).set('later', 'after the replica');
  await eventually('the later key on the replica', () => reader.get('later').catch(() => null), (value) => value === 'after the replica', 15_000);
  await assert.rejects(reader.set('mine', 'no'), /READONLY/);
  const user = await post(`/instances/${primary.id}/users`, { users: [{ name: 'reader', password: 'Reader-pass-1234' }] });
  assert.equal(user.status, 202, JSON.stringify(user.body));
  await eventually(
    'the user made on the primary logging in on the replica',
    () => as(replica, 'reader', 'Reader-pass-1234').then((client) => client.get('greeting'), () => null),
    (value) => value === 'hello from coffer',
    45_000,
  );

  const sourceStatus = await request<any>('GET', trove(session, `/instances/${primary.id}/replication`), { token: session.token });
  assert.equal(sourceStatus.status, 200, JSON.stringify(sourceStatus.body));
  assert.deepEqual(sourceStatus.body.replication.replicas.map((r: any) => [r.id, r.streaming, typeof r.lag_bytes]), [[replica.id, true, 'number']]);
  const replicaStatus = await request<any>('GET', trove(session, `/instances/${replica.id}/replication`), { token: session.token });
  assert.equal(replicaStatus.status, 200, JSON.stringify(replicaStatus.body));
  assert.equal(replicaStatus.body.replication.role, 'replica');
  assert.equal(replicaStatus.body.replication.streaming, true);

  // detach: writable, no longer following, no longer walled towards its former primary
  const detach = await request('PUT', trove(session, `/instances/${replica.id}`), { token: session.token, body: { instance: { replica_of: null } } });
  assert.equal(detach.status, 202, JSON.stringify(detach.body));
  const detached = (await waitForInstance(session, replica.id, (i) => i?.status === 'ACTIVE' && i.replica_of === undefined, 60_000)).instance;
  const writer = await as(detached, 'cache', cachePassword);
  await writer.set('mine', 'yes');
  assert.equal(await writer.get('greeting'), 'hello from coffer');
  assert.deepEqual(await wallOf(replica.id), [`${replicaAddress}:6379`]);
  assert.equal((await waitActive(session, primary.id)).replicas, undefined);

  await deleteAndVerifyGone(session, replica.id, run.dataDir.path);
  await deleteAndVerifyGone(session, primary.id, run.dataDir.path);
});
