import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { encodeBackup, LocalDirectoryStorage, MasterKey, newProjectKey, wrapKey, type BackupStorage } from '../../src/backup/index.js';
import { agentContract, agentTopic, conductorContract, conductorTopic, createRpcClient, guestContract, guestTopic, serveRpc, type PrepareInput, type Subscription } from '../../src/bus/index.js';
import { newUuid, silentLogger } from '../../src/common/index.js';
import { startConductor, type Conductor } from '../../src/conductor/index.js';
import { startTaskmanager, sweepBackupOrphans, type Taskmanager } from '../../src/taskmanager/index.js';
import { fakeGuestHandlers, noCapabilities } from '../support/fake-guest.js';
import { makeDataDir } from '../support/temp-dir.js';
import { eventually } from '../support/wait.js';
import { adminSession, json, memberSession, startHarness, type Harness, type Session } from './api-harness.js';
import { baseBackup, rdb } from './backup-import-objects.js';

// POST /backups with Trove's restore_from, over HTTP: the real API, taskmanager and conductor on
// one SQLite store and the in-process bus, a real local-directory storage holding objects sealed
// the way guests seal them (encodeBackup under the project's key). The import reads each object
// back in the taskmanager: RESTORED with the storage's checksum and the facts a restore needs, or
// FAILED saying why. The restore of an imported backup into a real engine, with its data compared,
// is test/e2e/backup-import.test.ts.

const host = 'host-import';
const container = 'database_backups';
let h: Harness;
let conductor: Conductor;
let taskmanager: Taskmanager;
let agent: Subscription;
let storage: BackupStorage;
let storageDir: { path: string; remove: () => Promise<void> };
let admin: Session;
let alice: Session;
let bob: Session;
const masterKey = MasterKey.generate();
const aliceKey = newProjectKey();
const prepares = new Map<string, PrepareInput[]>();
const guests: Subscription[] = [];
const versionIds: Record<'pg15' | 'pg16' | 'redis' | 'mariadb' | 'old', string> = { pg15: '', pg16: '', redis: '', mariadb: '', old: '' };

const conductorClient = () => createRpcClient(h.transport, conductorContract, conductorTopic);

before(async () => {
  storageDir = await makeDataDir('coffer-backup-imports');
  storage = new LocalDirectoryStorage(storageDir.path);
  await storage.ensureContainer(container);
  h = await startHarness({ rateLimitPerMinute: 100_000, backupStorage: storage, quotaDefaults: { instances: 50, ram: -1, volumes: 500, backups: 50 } });
  conductor = await startConductor({ store: h.store, transport: h.transport, logger: silentLogger() });
  taskmanager = await startTaskmanager({
    store: h.store,
    transport: h.transport,
    logger: silentLogger(),
    leaseMs: 2_000,
    sweepIntervalMs: 20,
    statusPollMs: 10,
    actionTimeoutMs: 2_000,
    backups: { storage, masterKey },
  });
  agent = await serveRpc(h.transport, agentContract, agentTopic(host), {
    createServer: async ({ instanceId }) => {
      prepares.set(instanceId, []);
      guests.push(
        await serveRpc(
          h.transport,
          guestContract,
          guestTopic(instanceId),
          fakeGuestHandlers({
            prepare: async (input) => {
              prepares.get(instanceId)!.push(input);
              await conductorClient().heartbeat({ instanceId, status: 'HEALTHY', volumeUsedBytes: 10 * 1024 ** 2 });
            },
          }),
        ),
      );
      return { instanceId, host, address: '127.88.2.9', port: 6379 };
    },
    deleteServer: async () => ({ deleted: true }),
    upgradeServer: async () => {
      throw new Error('no upgrade is asked of this agent');
    },
    listServers: async () => [],
  });
  const report = (datastore: string, name: string, version: string, backup: boolean, active = true) => ({
    datastore,
    manager: datastore,
    name,
    version,
    active,
    inactiveReason: active ? null : 'binary missing',
    capabilities: { ...noCapabilities, backup, pointInTimeRecovery: backup },
    parameters: [],
  });
  await conductorClient().agentHeartbeat({
    host,
    engines: [
      report('postgresql', '15', '15.19', true),
      report('postgresql', '16', '16.4', true),
      report('postgresql', '14', '14.1', true, false),
      report('redis', '7', '7.0.15', true),
      report('mariadb', '10.11', '10.11.19', true),
    ],
    contracts: { [agentContract.name]: agentContract.version, [guestContract.name]: guestContract.version },
  });
  const versions = await eventually('the agent’s versions registered', () => h.store.datastores.listVersions(), (v) => v.length >= 5);
  const id = (manager: string, name: string) => versions.find((v) => v.manager === manager && v.name === name)!.id;
  Object.assign(versionIds, { pg15: id('postgresql', '15'), pg16: id('postgresql', '16'), old: id('postgresql', '14'), redis: id('redis', '7'), mariadb: id('mariadb', '10.11') });
  admin = await adminSession(h.app);
  alice = await memberSession(h, 'alice');
  bob = await memberSession(h, 'bob');
  // as the taskmanager makes it on the project's first backup
  await h.store.projectKeys.getOrCreate(alice.projectId, wrapKey(masterKey, aliceKey, alice.projectId), new Date());
});

after(async () => {
  await taskmanager.stop();
  for (const g of guests) await g.close();
  await agent.close();
  await conductor.stop();
  await h.close();
  await storage.close();
  await storageDir.remove();
});

const headers = (s: Session) => ({ 'x-auth-token': s.token, host: 'db.example' });

function call(s: Session, method: 'GET' | 'POST' | 'DELETE' | 'PUT', path: string, payload?: unknown) {
  return h.app.inject({ method, url: `/v1.0/${s.projectId}${path}`, headers: headers(s), ...(payload === undefined ? {} : { payload: payload as object }) });
}

function expectFault(res: { statusCode: number; body: string }, status: number, fault: string, message: string | RegExp): void {
  assert.equal(res.statusCode, status, res.body);
  const body = json(res as never);
  assert.deepEqual(Object.keys(body), [fault]);
  assert.equal(body[fault].code, status);
  if (typeof message === 'string') assert.equal(body[fault].message, message);
  else assert.match(body[fault].message, message);
}

/** stores `content` as a guest stores a backup: zstd, then sealed under `key` (null: not sealed) */
async function storeObject(name: string, content: Buffer, key: Buffer | null = aliceKey, metadata: Record<string, string> = {}) {
  const body = encodeBackup(Readable.from([content]), { compression: 'zstd', ...(key === null ? {} : { key }) });
  return storage.put(container, name, body, { metadata });
}

const sizeGb = (bytes: number) => bytes / 1024 ** 3;

async function importBackup(s: Session, restoreFrom: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return call(s, 'POST', '/backups', { backup: { name: `imported-${newUuid().slice(0, 6)}`, restore_from: restoreFrom, ...extra } });
}

async function ended(s: Session, id: string, state: string) {
  await eventually(`backup ${id} ${state}`, () => h.store.backups.get(id), (row) => row?.state !== 'NEW');
  const view = json(await call(s, 'GET', `/backups/${id}`)).backup;
  assert.equal(view.status, state, JSON.stringify(view));
  return view;
}

describe('importing an object (restore_from)', () => {
  test('a Redis RDB sealed under the project’s key: 202 NEW without an instance, then RESTORED with the storage’s checksum; a restore sends it to prepare', async () => {
    const name = `imports/${newUuid()}.redis.zst.enc`;
    const content = rdb();
    const stored = await storeObject(name, content);
    const res = await importBackup(alice, { remote_location: `${container}/${name}`, local_datastore_version_id: versionIds.redis, size: sizeGb(stored.size) }, { description: 'from the other region' });
    assert.equal(res.statusCode, 202, res.body);
    const created = json(res).backup;
    assert.equal(created.status, 'NEW');
    assert.equal(created.instance_id, null);
    assert.equal(created.parent_id, null);
    assert.equal(created.locationRef, null);
    assert.equal(created.description, 'from the other region');
    assert.deepEqual(created.datastore, { type: 'redis', version: '7', version_id: versionIds.redis });
    const done = await ended(alice, created.id, 'RESTORED');
    assert.equal(done.locationRef, storage.locationOf(container, name));
    assert.equal(done.size, 0);
    const row = (await h.store.backups.get(created.id))!;
    assert.equal(row.sha256, stored.sha256, 'the checksum restores verify is the stored object’s');
    assert.equal(row.sizeBytes, stored.size);
    assert.equal(row.dataBytes, content.length);
    assert.deepEqual(row.facts, { format: 'rdb', 'rdb-version': '10', 'redis-version': '7.0.15', imported: 'true' });
    assert.ok((await storage.head(container, name)) !== undefined, 'the object stays where it was');

    const restore = await call(alice, 'POST', '/instances', {
      instance: { name: 'from-import', flavorRef: '2', volume: { size: 1 }, datastore: { type: 'redis', version: '7' }, restorePoint: { backupRef: created.id } },
    });
    assert.equal(restore.statusCode, 200, restore.body);
    const instanceId = json(restore).instance.id;
    const prepare = await eventually('the prepare', async () => prepares.get(instanceId)?.[0], (p) => p !== undefined);
    assert.deepEqual(
      prepare!.restore?.chain.map((l) => [l.backupId, l.container, l.objectName, l.sha256, l.kind, l.facts['redis-version']]),
      [[created.id, container, name, stored.sha256, 'full', '7.0.15']],
    );
    assert.equal(prepare!.restore?.projectId, alice.projectId);
    // no instance's archived log follows an import: no point in time from it
    const moment = await call(alice, 'POST', '/instances', {
      instance: { name: 'pitr', flavorRef: '2', volume: { size: 1 }, datastore: { type: 'redis', version: '7' }, restorePoint: { backupRef: created.id, restore_time: new Date().toISOString() } },
    });
    expectFault(moment, 409, 'conflict', `Backup ${created.id} was imported (restore_from): no instance's archived log follows it, so it restores only as it is, without restore_time.`);
    // Coffer's verification takes it as any restorable backup
    const verify = await call(alice, 'POST', `/backups/${created.id}/action`, { verify: {} });
    assert.equal(verify.statusCode, 202, verify.body);
  });

  test('a PostgreSQL base backup named by its locationRef: RESTORED with its major version; into another major it FAILS saying which', async () => {
    const name = `${newUuid()}.postgresql.zst.enc`;
    const content = baseBackup('15');
    const stored = await storeObject(name, content);
    const location = storage.locationOf(container, name);
    const id = json(await importBackup(alice, { remote_location: location, local_datastore_version_id: versionIds.pg15, size: sizeGb(stored.size) })).backup.id;
    await ended(alice, id, 'RESTORED');
    const row = (await h.store.backups.get(id))!;
    assert.deepEqual(row.facts, { format: 'tar', version: '15', timeline: '1', 'start-lsn': '0/2000028', imported: 'true' });

    const other = `${newUuid()}.postgresql.zst.enc`;
    const otherStored = await storeObject(other, content);
    const wrong = json(await importBackup(alice, { remote_location: `${container}/${other}`, local_datastore_version_id: versionIds.pg16, size: sizeGb(otherStored.size) })).backup.id;
    const failed = await ended(alice, wrong, 'FAILED');
    assert.match(failed.fail_reason, /^The object cannot be imported: The object is a backup of PostgreSQL 15, not of datastore version 16/);
    assert.equal(failed.locationRef, null);
    // an RDB is no base backup
    const rdbName = `${newUuid()}.x.zst.enc`;
    const rdbStored = await storeObject(rdbName, rdb());
    const notTar = json(await importBackup(alice, { remote_location: `${container}/${rdbName}`, local_datastore_version_id: versionIds.pg15, size: sizeGb(rdbStored.size) })).backup.id;
    assert.match((await ended(alice, notTar, 'FAILED')).fail_reason, /not a PostgreSQL base backup \(it is not a tar archive\)/);
  });

  test('an object sealed under another key, or not sealed, ends FAILED with the reason, never RESTORED; deleting the record leaves the object', async () => {
    const name = `${newUuid()}.redis.zst.enc`;
    const stored = await storeObject(name, rdb(), newProjectKey());
    const id = json(await importBackup(alice, { remote_location: `${container}/${name}`, local_datastore_version_id: versionIds.redis, size: sizeGb(stored.size) })).backup.id;
    const failed = await ended(alice, id, 'FAILED');
    assert.match(failed.fail_reason, /^The object cannot be imported: The backup cannot be decrypted with this project's key, or it was altered \(it was sealed with key [0-9a-f]{16}; the key given is [0-9a-f]{16}\)\.$/);
    assert.equal(failed.size, null);
    assert.equal((await h.store.backups.get(id))!.sha256, null);
    // not restorable: Trove's 409 for a backup not completed
    const restore = await call(alice, 'POST', '/instances', {
      instance: { name: 'never', flavorRef: '2', volume: { size: 1 }, datastore: { type: 'redis', version: '7' }, restorePoint: { backupRef: id } },
    });
    expectFault(restore, 409, 'conflict', `Unable to create instance because backup ${id} is not completed. Actual state: FAILED.`);

    const plainName = `${newUuid()}.redis.zst.enc`;
    const plain = await storeObject(plainName, rdb(), null);
    const plainId = json(await importBackup(alice, { remote_location: `${container}/${plainName}`, local_datastore_version_id: versionIds.redis, size: sizeGb(plain.size) })).backup.id;
    assert.match((await ended(alice, plainId, 'FAILED')).fail_reason, /The backup object is not encrypted, but this project's backups are/);

    // the object was there before the import: neither the delete nor the orphan sweep removes it
    assert.equal((await call(alice, 'DELETE', `/backups/${id}`)).statusCode, 202);
    await eventually('the failed import deleted', () => h.store.backups.get(id), (row) => row === undefined);
    await sweepBackupOrphans({ store: h.store, storage, logger: silentLogger(), graceMs: 0 }, new Date(Date.now() + 1000));
    assert.ok((await storage.head(container, name)) !== undefined);
    assert.ok((await storage.head(container, plainName)) !== undefined);
  });

  test('the object of a deleted backup of the project, copied back under its name: imported, and the sweep keeps it for the import', async () => {
    const name = `${newUuid()}.redis.zst.enc`;
    const stored = await storeObject(name, rdb());
    const now = new Date(Date.now() - 60_000);
    const gone = { id: newUuid(), tenantId: alice.projectId, name: 'gone', description: null, instanceId: newUuid(), parentId: null, datastoreVersionId: versionIds.redis, backupType: 'full' as const, state: 'COMPLETED' as const, container, objectName: name, createdAt: now, updatedAt: now };
    await h.store.backups.create(gone);
    await h.store.backups.markDeleted(gone.id, now);
    const id = json(await importBackup(alice, { remote_location: `${container}/${name}`, local_datastore_version_id: versionIds.redis, size: sizeGb(stored.size) })).backup.id;
    await ended(alice, id, 'RESTORED');
    await sweepBackupOrphans({ store: h.store, storage, logger: silentLogger(), graceMs: 0 }, new Date(Date.now() + 1000));
    assert.ok((await storage.head(container, name)) !== undefined, 'the deleted backup’s row does not take the import’s object with it');
  });

  test('a project without a backup key imports nothing: FAILED saying so', async () => {
    const carol = await memberSession(h, 'carol');
    const name = `${newUuid()}.redis.zst.enc`;
    const stored = await storeObject(name, rdb());
    const id = json(await importBackup(carol, { remote_location: `${container}/${name}`, local_datastore_version_id: versionIds.redis, size: sizeGb(stored.size) })).backup.id;
    assert.match((await ended(carol, id, 'FAILED')).fail_reason, /This project has no backup key in this deployment yet/);
  });

  test('deleting a RESTORED import deletes its object, as Trove deletes a backup’s', async () => {
    const name = `${newUuid()}.redis.zst.enc`;
    const stored = await storeObject(name, rdb());
    const id = json(await importBackup(alice, { remote_location: `${container}/${name}`, local_datastore_version_id: versionIds.redis, size: sizeGb(stored.size) })).backup.id;
    await ended(alice, id, 'RESTORED');
    assert.equal(json(await call(bob, 'GET', `/backups/${id}`)).itemNotFound.code, 404, 'another project does not see it');
    assert.equal((await call(alice, 'DELETE', `/backups/${id}`)).statusCode, 202);
    await eventually('the import deleted', () => h.store.backups.get(id), (row) => row === undefined);
    assert.equal(await storage.head(container, name), undefined);
  });
});

describe('what an import refuses, before any record', () => {
  test('bodies: restore_from’s fields (400), mixed with a backup of an instance (400)', async () => {
    const valid = { remote_location: `${container}/x`, local_datastore_version_id: versionIds.redis, size: 0 };
    for (const bad of [{ ...valid, size: -1 }, { ...valid, size: '1' }, { remote_location: 'x', size: 0 }, { ...valid, remote_location: '' }, { ...valid, extra: 1 }, 'http://x']) {
      const res = await importBackup(alice, bad as never);
      expectFault(res, 400, 'badRequest', /^Validation error: /);
    }
    expectFault(await importBackup(alice, valid, { instance: newUuid() }), 400, 'badRequest', 'restore_from imports an existing backup object: it takes no instance.');
    expectFault(await importBackup(alice, valid, { parent_id: newUuid(), swift_container: 'c' }), 400, 'badRequest', 'restore_from imports an existing backup object: it takes no parent_id, swift_container.');
    expectFault(await importBackup(alice, valid, { incremental: 1 }), 400, 'badRequest', 'restore_from imports an existing backup object: it takes no incremental.');
    // as troveclient sends for a backup of an instance: no incremental asked for
    expectFault(await importBackup(alice, valid, { incremental: 0 }), 404, 'itemNotFound', /Backup object database_backups\/x cannot be found/);
  });

  test('datastore versions: unknown 404, inactive 400, an engine whose imports Coffer cannot read 501', async () => {
    const location = `${container}/x.zst.enc`;
    const unknown = newUuid();
    expectFault(await importBackup(alice, { remote_location: location, local_datastore_version_id: unknown, size: 0 }), 404, 'itemNotFound', `Datastore version '${unknown}' cannot be found.`);
    expectFault(await importBackup(alice, { remote_location: location, local_datastore_version_id: versionIds.old, size: 0 }), 400, 'badRequest', "Datastore version '14' is not active. binary missing.");
    expectFault(await importBackup(alice, { remote_location: location, local_datastore_version_id: versionIds.mariadb, size: 0 }), 501, 'notImplemented', /not supported for datastore mariadb yet: only postgresql and redis backups can be imported/);
  });

  test('locations: never a URL outside this storage, another container, an archived log, a missing object; another project’s backup object 404, the project’s own live one 409', async () => {
    const v = versionIds.redis;
    for (const outside of ['http://169.254.169.254/latest/meta-data', 'file:///etc/shadow', `https://swift.example/v1/AUTH_x/${container}/a`, 'other_container/a.zst.enc', `/${container}/a`, container]) {
      expectFault(await importBackup(alice, { remote_location: outside, local_datastore_version_id: v, size: 0 }), 400, 'badRequest', /is not an object in one of your project's backup containers \(database_backups\) of this deployment's backup storage/);
    }
    // a container the project's backup strategy names is one of its own
    assert.equal((await call(alice, 'POST', '/backup_strategies', { backup_strategy: { swift_container: 'alice-backups' } })).statusCode, 202);
    expectFault(await importBackup(alice, { remote_location: 'alice-backups/none.zst.enc', local_datastore_version_id: v, size: 0 }), 404, 'itemNotFound', "Backup object alice-backups/none.zst.enc cannot be found in this deployment's backup storage.");
    expectFault(await importBackup(alice, { remote_location: `${container}/../x`, local_datastore_version_id: v, size: 0 }), 400, 'badRequest', /is not allowed: a part starts with a dot/);
    const wal = `${newUuid()}/wal-15/000000010000000000000001`;
    expectFault(await importBackup(alice, { remote_location: `${container}/${wal}`, local_datastore_version_id: v, size: 0 }), 400, 'badRequest', `${container}/${wal} is an instance's archived log, not a backup: only backup objects can be imported.`);
    expectFault(await importBackup(alice, { remote_location: `${container}/missing.zst.enc`, local_datastore_version_id: v, size: 0 }), 404, 'itemNotFound', `Backup object ${container}/missing.zst.enc cannot be found in this deployment's backup storage.`);

    // bob's backup (its object in the shared container): alice is told it is not there
    const bobsName = `${newUuid()}.redis.zst.enc`;
    const bobs = await storeObject(bobsName, rdb(), newProjectKey());
    const now = new Date();
    const bobsBackup = { id: newUuid(), tenantId: bob.projectId, name: 'b', description: null, instanceId: newUuid(), parentId: null, datastoreVersionId: v, backupType: 'full' as const, state: 'COMPLETED' as const, container, objectName: bobsName, createdAt: now, updatedAt: now };
    await h.store.backups.create(bobsBackup);
    expectFault(await importBackup(alice, { remote_location: `${container}/${bobsName}`, local_datastore_version_id: v, size: sizeGb(bobs.size) }), 404, 'itemNotFound', `Backup object ${container}/${bobsName} cannot be found in this deployment's backup storage.`);
    await h.store.backups.markDeleted(bobsBackup.id, new Date());
    expectFault(await importBackup(alice, { remote_location: storage.locationOf(container, bobsName), local_datastore_version_id: v, size: sizeGb(bobs.size) }), 404, 'itemNotFound', /cannot be found/);

    // alice's own live backup's object is that backup already
    const ownName = `${newUuid()}.redis.zst.enc`;
    const own = await storeObject(ownName, rdb());
    const first = json(await importBackup(alice, { remote_location: `${container}/${ownName}`, local_datastore_version_id: v, size: sizeGb(own.size) })).backup.id;
    expectFault(
      await importBackup(alice, { remote_location: `${container}/${ownName}`, local_datastore_version_id: v, size: sizeGb(own.size) }),
      409,
      'conflict',
      `Backup object ${container}/${ownName} is already the object of backup ${first}: restore from that backup instead.`,
    );
    await ended(alice, first, 'RESTORED');
  });

  test('size must be the object’s (400); an incremental object answers 501', async () => {
    const name = `${newUuid()}.postgresql.zst.enc`;
    const stored = await storeObject(name, baseBackup());
    expectFault(
      await importBackup(alice, { remote_location: `${container}/${name}`, local_datastore_version_id: versionIds.pg15, size: 2 }),
      400,
      'badRequest',
      `restore_from.size 2 does not match the object's size, 0 GB (${stored.size} bytes): check the remote_location.`,
    );
    const inc = `${newUuid()}.postgresql.zst.enc`;
    const incStored = await storeObject(inc, baseBackup(), aliceKey, { kind: 'incremental' });
    expectFault(
      await importBackup(alice, { remote_location: `${container}/${inc}`, local_datastore_version_id: versionIds.pg15, size: sizeGb(incStored.size) }),
      501,
      'notImplemented',
      /Importing an incremental backup .* is not supported by Coffer yet: import its full backup\./,
    );
  });

  test('the backups quota counts imports (413)', async () => {
    const s = await memberSession(h, 'quota');
    const quota = await h.app.inject({ method: 'PUT', url: `/v1.0/${admin.projectId}/mgmt/quotas/${s.projectId}`, headers: headers(admin), payload: { quotas: { backups: 1 } } });
    assert.equal(quota.statusCode, 200, quota.body);
    const names = [`${newUuid()}.redis.zst.enc`, `${newUuid()}.redis.zst.enc`];
    const stored = await Promise.all(names.map((n) => storeObject(n, rdb())));
    const first = await importBackup(s, { remote_location: `${container}/${names[0]}`, local_datastore_version_id: versionIds.redis, size: sizeGb(stored[0]!.size) });
    assert.equal(first.statusCode, 202, first.body);
    expectFault(
      await importBackup(s, { remote_location: `${container}/${names[1]}`, local_datastore_version_id: versionIds.redis, size: sizeGb(stored[1]!.size) }),
      413,
      'overLimit',
      /Quota exceeded for resources: \['backups'\]/,
    );
    assert.equal((await h.store.backups.byObjectNames(container, [names[1]!])).length, 0, 'no record of the refused import');
  });
});
