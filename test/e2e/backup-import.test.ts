// test-lane: parallel (coffer serve on a loopback range, a port and a data directory of its own; it checks processes of its own instances only)
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { encodeBackup, LocalDirectoryStorage, newProjectKey } from '../../src/backup/index.js';
import { newUuid } from '../../src/common/index.js';
import { request, trove, waitForInstance, type Session } from '../support/api-client.js';
import { describeRun, openstack } from '../support/openstack-clients.js';
import { connectRedis } from '../support/redis-client.js';
import { startServe, type ServeRun } from './serve-run.js';

// Issue 10's import (POST /backups restore_from) end to end, against a real `coffer serve` and
// its default local backup storage, with a real Redis: a backup's object copied to a name of its
// own (as an operator copies one in from another region) and its backup deleted, then imported:
// RESTORED, and an instance restored from it holds exactly the source's keys (PostgreSQL: rows).
// An object sealed
// under a key the deployment does not hold ends FAILED with the reason.

const adminPassword = 'Import-admin-pass-1234';
const cachePassword = 'Cache-pass-1234';
const appPassword = 'App-pass-1234-import';
const container = 'database_backups';
const waitMs = 240_000;
let run: ServeRun;
let admin: Session;
let storage: LocalDirectoryStorage;
const created: string[] = [];

before(async () => {
  run = await startServe('coffer-e2e-import', adminPassword, ['--address-pool', '127.95.91.0/24']);
  admin = run.session;
  storage = new LocalDirectoryStorage(join(run.dataDir.path, 'backups'));
});

after(async () => {
  for (const id of created) {
    await request('DELETE', trove(admin, `/instances/${id}`), { token: admin.token }).catch(() => undefined);
    await waitForInstance(admin, id, (_i, status) => status === 404, 60_000).catch(() => undefined);
  }
  await storage?.close();
  await run?.stop();
});

async function api<T = any>(method: string, path: string, status: number, body?: unknown): Promise<T> {
  const res = await request<T>(method, trove(admin, path), { token: admin.token, ...(body === undefined ? {} : { body }) });
  assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`);
  return res.body;
}

async function createRedis(name: string, extra: Record<string, unknown> = {}): Promise<{ id: string; address: string }> {
  const body = await api('POST', '/instances', 200, {
    instance: { name, flavorRef: '1', volume: { size: 1 }, datastore: { type: 'redis' }, users: [{ name: 'cache', password: cachePassword }], ...extra },
  });
  const id = body.instance.id as string;
  created.push(id);
  const { instance } = await waitForInstance(admin, id, (i) => i?.status === 'ACTIVE' || i?.status === 'ERROR', waitMs);
  assert.equal(instance.status, 'ACTIVE', JSON.stringify(instance));
  return { id, address: instance.addresses[0].address as string };
}

async function asCache<T>(address: string, work: (client: Awaited<ReturnType<typeof connectRedis>>) => Promise<T>): Promise<T> {
  const client = await connectRedis(address, 6379, ['cache', cachePassword]);
  try {
    return await work(client);
  } finally {
    client.disconnect();
  }
}

async function backupEnded(id: string, running: readonly string[] = ['NEW', 'BUILDING', 'SAVING']): Promise<any> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const shown = (await api('GET', `/backups/${id}`, 200)).backup;
    if (!running.includes(shown.status)) return shown;
    assert.ok(Date.now() < deadline, `backup ${id} still ${shown.status}`);
    await sleep(200);
  }
}

/**
 * Backs `instanceId` up, copies the stored object under a name of its own, deletes the backup
 * (and with it its own object) and imports the copy; answers the import's view once it ended.
 */
async function backUpCopyAndImport(instanceId: string, engine: string): Promise<{ imported: any; copyName: string; versionId: string }> {
  const taken = (await api('POST', '/backups', 202, { backup: { name: `to-copy-${engine}`, instance: instanceId } })).backup;
  const done = await backupEnded(taken.id);
  assert.equal(done.status, 'COMPLETED', JSON.stringify(done));
  // the copy an operator makes (from another region's storage; here the same one): the stored bytes as they are
  const original = fileURLToPath(done.locationRef).slice(join(run.dataDir.path, 'backups', container).length + 1);
  const copyName = `copied-in/${newUuid()}.${engine}.zst.enc`;
  await storage.put(container, copyName, await storage.get(container, original));
  await api('DELETE', `/backups/${taken.id}`, 202);
  for (let gone = false; !gone; await sleep(200)) gone = (await request('GET', trove(admin, `/backups/${taken.id}`), { token: admin.token })).status === 404;
  const started = (
    await api('POST', '/backups', 202, {
      backup: { name: `imported-${engine}`, restore_from: { remote_location: `${container}/${copyName}`, local_datastore_version_id: done.datastore.version_id, size: done.size } },
    })
  ).backup;
  assert.equal(started.status, 'NEW');
  assert.equal(started.instance_id, null);
  const imported = await backupEnded(started.id, ['NEW']);
  assert.equal(imported.status, 'RESTORED', JSON.stringify(imported));
  assert.equal(imported.locationRef, storage.locationOf(container, copyName));
  return { imported, copyName, versionId: done.datastore.version_id };
}

test('PostgreSQL: an imported copy of a base backup restores the same rows', { timeout: 600_000 }, async () => {
  const body = await api('POST', '/instances', 200, {
    instance: {
      name: 'import-pg-source',
      flavorRef: '1',
      volume: { size: 1 },
      datastore: { type: 'postgresql' },
      databases: [{ name: 'app' }],
      users: [{ name: 'app', password: appPassword, databases: [{ name: 'app' }] }],
    },
  });
  const sourceId = body.instance.id as string;
  created.push(sourceId);
  const address = async (id: string) => {
    const { instance } = await waitForInstance(admin, id, (i) => i?.status === 'ACTIVE' || i?.status === 'ERROR', waitMs);
    assert.equal(instance.status, 'ACTIVE', JSON.stringify(instance));
    return instance.addresses[0].address as string;
  };
  const query = async (host: string, sql: string) => {
    const client = new pg.Client({ host, port: 5432, user: 'app', password: appPassword, database: 'app' });
    await client.connect();
    try {
      return (await client.query(sql)).rows;
    } finally {
      await client.end();
    }
  };
  const source = await address(sourceId);
  await query(source, "CREATE TABLE items AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 5000) g");
  const { imported } = await backUpCopyAndImport(sourceId, 'postgresql');
  const copy = (await api('POST', '/instances', 200, {
    instance: { name: 'import-pg-copy', flavorRef: '1', volume: { size: 1 }, datastore: { type: 'postgresql' }, restorePoint: { backupRef: imported.id } },
  })).instance.id as string;
  created.push(copy);
  const rows = await query(await address(copy), 'SELECT count(*)::int AS n, md5(string_agg(note, \',\' ORDER BY id)) AS digest FROM items');
  assert.deepEqual(rows, await query(source, 'SELECT count(*)::int AS n, md5(string_agg(note, \',\' ORDER BY id)) AS digest FROM items'));
  assert.equal(rows[0].n, 5000);
});

test('Redis: a backup’s object copied under a name of its own and its backup deleted is imported RESTORED, restores the same keys and verifies PASSED', { timeout: 600_000 }, async () => {
  const source = await createRedis('import-source');
  const keys: Record<string, string> = {};
  await asCache(source.address, async (client) => {
    for (let i = 0; i < 200; i += 1) {
      keys[`key:${i}`] = `value-${i}-${'x'.repeat(i)}`;
      await client.set(`key:${i}`, keys[`key:${i}`]!);
    }
  });
  const { imported, copyName, versionId } = await backUpCopyAndImport(source.id, 'redis');

  const copyOf = await createRedis('import-copy', { restorePoint: { backupRef: imported.id } });
  const restoredKeys = await asCache(copyOf.address, async (client) => {
    const names = (await client.keys('key:*')).sort();
    return Object.fromEntries(await Promise.all(names.map(async (name) => [name, await client.get(name)] as const)));
  });
  assert.deepEqual(restoredKeys, Object.fromEntries(Object.entries(keys).sort(([a], [b]) => (a < b ? -1 : 1))));

  // Coffer's verification restores it into a scratch instance and has the engine check it, as any backup
  await api('POST', `/backups/${imported.id}/action`, 202, { verify: {} });
  const verified = await (async () => {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const shown = (await api('GET', `/backups/${imported.id}`, 200)).backup;
      if (shown.verification !== null && shown.verification.status !== 'RUNNING') return shown.verification;
      assert.ok(Date.now() < deadline, `verification still ${JSON.stringify(shown.verification)}`);
      await sleep(500);
    }
  })();
  assert.equal(verified.status, 'PASSED', JSON.stringify(verified));

  // Debian's `openstack database backup create --restore-from` sends Trove's body: imported the same way
  const oscName = `copied-in/${newUuid()}.redis.zst.enc`;
  const oscCopy = await storage.put(container, oscName, await storage.get(container, copyName));
  const args = ['database', 'backup', 'create', 'via-osc', '--restore-from', storage.locationOf(container, oscName), '--restore-datastore-version', versionId, '--restore-size', String(oscCopy.size / 1024 ** 3), '-f', 'json'];
  const osc = await openstack({ authUrl: `${run.baseUrl}/identity/v3`, user: 'admin', password: adminPassword, project: 'admin' }, args);
  assert.equal(osc.code, 0, describeRun(['openstack', ...args], osc));
  const viaOsc = JSON.parse(osc.stdout) as { id: string; status: string };
  assert.equal(viaOsc.status, 'NEW');
  assert.equal((await backupEnded(viaOsc.id, ['NEW'])).status, 'RESTORED');

  // sealed under a key this deployment does not hold: FAILED saying so, the object left as it was
  const foreignName = `copied-in/${newUuid()}.redis.zst.enc`;
  const foreign = await storage.put(container, foreignName, encodeBackup(Readable.from([await readAll(await storage.get(container, copyName))]), { compression: 'none', key: newProjectKey() }));
  const refused = (
    await api('POST', '/backups', 202, {
      backup: { name: 'foreign', restore_from: { remote_location: `${container}/${foreignName}`, local_datastore_version_id: versionId, size: foreign.size / 1024 ** 3 } },
    })
  ).backup;
  const failed = await backupEnded(refused.id, ['NEW']);
  assert.equal(failed.status, 'FAILED', JSON.stringify(failed));
  assert.match(failed.fail_reason, /cannot be decrypted with this project's key/);
  assert.ok((await storage.head(container, foreignName)) !== undefined);
});

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
