// test-lane: parallel (in-process API, taskmanager and conductor over SQLite; a storage directory of its own)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { LocalDirectoryStorage, MasterKey, type BackupStorage } from '../../src/backup/index.js';
import {
  agentContract,
  agentTopic,
  conductorContract,
  conductorTopic,
  createRpcClient,
  guestContract,
  guestTopic,
  serveRpc,
  type DataCheckResult,
  type PrepareInput,
  type Subscription,
} from '../../src/bus/index.js';
import { newUuid, silentLogger } from '../../src/common/index.js';
import { startConductor, type Conductor } from '../../src/conductor/index.js';
import { startTaskmanager, type Taskmanager } from '../../src/taskmanager/index.js';
import { fakeGuestHandlers, noCapabilities } from '../support/fake-guest.js';
import { makeDataDir } from '../support/temp-dir.js';
import { eventually } from '../support/wait.js';
import { json, memberSession, startHarness, type Harness, type Session } from './api-harness.js';

// Backup verification over HTTP, inside one process: the real API, taskmanager and conductor on
// one SQLite store and the in-process bus, a real local-directory storage, and a fake agent whose
// guests do what a guest does: a source instance takes backups; a scratch instance (its prepare
// restores) reports HEALTHY or FAILED as its restore went, and answers checkData as the engine's
// check would. The engines' own checks run on real engines in test/guest; the whole of it through
// `coffer serve` in test/e2e/backup-verify.test.ts.

type Scratch = {
  /** what the scratch instance's prepare does */
  restore: { fails?: string; silent?: true };
  /** what its checkData ends with; `hold` runs until `release` */
  check: DataCheckResult | { failed: string } | 'hold';
};

const host = 'host-verify';
let h: Harness;
let conductor: Conductor;
let taskmanager: Taskmanager;
let agent: Subscription;
let storage: BackupStorage;
let storageDir: { path: string; remove: () => Promise<void> };
let alice: Session;
let bob: Session;
const guests = new Map<string, Subscription>();
const masterKey = MasterKey.generate();
const sound: DataCheckResult = { checks: { databases: 2, tables: 7, indexes: 3, errors: 0 }, problems: [] };
let scratch: Scratch = { restore: {}, check: sound };
/** the prepares of instances that restore, by instance id */
const restores = new Map<string, PrepareInput>();
const created: string[] = [];
const deleted: string[] = [];
let release: (() => void) | undefined;

const conductorClient = () => createRpcClient(h.transport, conductorContract, conductorTopic);

async function serveGuest(instanceId: string): Promise<Subscription> {
  const beat = (status: 'HEALTHY' | 'FAILED', message?: string) =>
    conductorClient().heartbeat({ instanceId, status, ...(message === undefined ? {} : { message }) });
  return serveRpc(
    h.transport,
    guestContract,
    guestTopic(instanceId),
    fakeGuestHandlers({
      prepare: async (input) => {
        if (input.restore === undefined) return beat('HEALTHY');
        restores.set(instanceId, input);
        if (scratch.restore.silent === true) return;
        if (scratch.restore.fails !== undefined) return beat('FAILED', `${scratch.restore.fails}\nthe engine log's last lines`);
        return beat('HEALTHY');
      },
      createBackup: async (input) => {
        const stored = await storage.put(input.target.container, input.target.objectName, Readable.from([randomBytes(64 * 1024)]));
        await conductorClient().updateBackup(
          { instanceId, backupId: input.target.backupId, state: 'COMPLETED', bytes: stored.size, sha256: stored.sha256, facts: {} },
          { requestId: 'r' },
        );
      },
      // as a guest answers: running until the check ends (here: until released), then its result
      checkData: async () => {
        const answer = scratch.check;
        if (answer === 'hold') {
          release ??= () => (scratch = { ...scratch, check: sound });
          return { state: 'running' };
        }
        if ('failed' in answer) return { state: 'failed', message: String(answer.failed) };
        return { state: 'done', result: answer };
      },
    }),
  );
}

before(async () => {
  storageDir = await makeDataDir('coffer-verify-api');
  storage = new LocalDirectoryStorage(storageDir.path);
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
    dataCheckPollMs: 20,
    // a scratch instance whose guest never answers fails its build quickly
    buildTimeoutMs: 1_500,
    backups: { storage, masterKey },
  });
  agent = await serveRpc(h.transport, agentContract, agentTopic(host), {
    createServer: async ({ instanceId }) => {
      created.push(instanceId);
      if (!guests.has(instanceId)) guests.set(instanceId, await serveGuest(instanceId));
      return { instanceId, host, address: '127.88.2.9', port: 5432 };
    },
    deleteServer: async ({ instanceId }) => {
      deleted.push(instanceId);
      await guests.get(instanceId)?.close();
      guests.delete(instanceId);
      return { deleted: true };
    },
    upgradeServer: async () => {
      throw new Error('no upgrade is asked of this agent');
    },
    listServers: async () => [],
  });
  await conductorClient().agentHeartbeat({
    host,
    engines: [
      { datastore: 'postgresql', manager: 'postgresql', name: '15', version: '15.19', active: true, inactiveReason: null, capabilities: { ...noCapabilities, backup: true, accessRules: true }, parameters: [] },
      { datastore: 'redis', manager: 'redis', name: '7', version: '7.0.15', active: true, inactiveReason: null, capabilities: noCapabilities, parameters: [] },
    ],
    contracts: { [agentContract.name]: agentContract.version, [guestContract.name]: guestContract.version },
  });
  await eventually('the agent’s versions registered', () => h.store.datastores.listVersions(), (v) => v.length >= 2);
  alice = await memberSession(h, 'alice');
  bob = await memberSession(h, 'bob');
});

after(async () => {
  release?.();
  await taskmanager.stop();
  for (const g of guests.values()) await g.close();
  await agent.close();
  await conductor.stop();
  await h.close();
  await storage.close();
  await storageDir.remove();
});

const headers = (s: Session) => ({ 'x-auth-token': s.token, host: 'db.example' });

function call(s: Session, method: 'GET' | 'POST' | 'DELETE', path: string, payload?: unknown) {
  return h.app.inject({
    method,
    url: `/v1.0/${s.projectId}${path}`,
    headers: { ...headers(s), 'content-type': 'application/json' },
    ...(payload === undefined ? {} : { payload: typeof payload === 'string' ? payload : JSON.stringify(payload) }),
  });
}

function expectFault(res: { statusCode: number; body: string }, status: number, fault: string, message: RegExp): void {
  assert.equal(res.statusCode, status, res.body);
  const body = json(res as never);
  assert.deepEqual(Object.keys(body), [fault]);
  assert.equal(body[fault].code, status);
  assert.match(body[fault].message, message);
}

async function completedBackup(s: Session): Promise<{ instanceId: string; backupId: string }> {
  const res = await call(s, 'POST', '/instances', { instance: { name: `db-${newUuid().slice(0, 6)}`, flavorRef: '2', volume: { size: 3 }, datastore: { type: 'postgresql', version: '15' } } });
  assert.equal(res.statusCode, 200, res.body);
  const instanceId: string = json(res).instance.id;
  await eventually(`instance ${instanceId} active`, () => h.store.instances.get(instanceId), (row) => row?.taskStatus === 'NONE');
  const made = await call(s, 'POST', '/backups', { backup: { name: `b-${newUuid().slice(0, 6)}`, instance: instanceId } });
  assert.equal(made.statusCode, 202, made.body);
  const backupId: string = json(made).backup.id;
  await eventually(`backup ${backupId} completed`, () => h.store.backups.get(backupId), (row) => row?.state === 'COMPLETED');
  return { instanceId, backupId };
}

const verify = (s: Session, backupId: string, body: unknown = { verify: {} }) => call(s, 'POST', `/backups/${backupId}/action`, body);
const view = async (s: Session, backupId: string) => json(await call(s, 'GET', `/backups/${backupId}`)).backup;

async function ended(s: Session, backupId: string): Promise<any> {
  await eventually(`verification of ${backupId} ended`, () => h.store.backupVerifications.get(backupId), (row) => row !== undefined && row.status !== 'RUNNING');
  return (await view(s, backupId)).verification;
}

async function usage(s: Session): Promise<Record<string, number>> {
  const res = await call(s, 'GET', `/mgmt/quotas/${s.projectId}`);
  assert.equal(res.statusCode, 200, res.body);
  return Object.fromEntries(json(res).quotas.map((q: { resource: string; in_use: number }) => [q.resource, q.in_use]));
}

describe('POST /backups/{id}/action {"verify": {}}', () => {
  test('202; RUNNING while the scratch instance is checked, which its project never sees or pays for; PASSED with the checks once it is deleted', async () => {
    const { instanceId, backupId } = await completedBackup(alice);
    assert.equal((await view(alice, backupId)).verification, null, 'never verified');
    const before = await usage(alice);
    scratch = { restore: {}, check: 'hold' };
    const res = await verify(alice, backupId);
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(res.body, '');

    const running = (await eventually('the scratch instance checked', () => h.store.backupVerifications.get(backupId), (v) => v?.message === "running the engine's own check of the data"))!;
    const scratchId = running.scratchInstanceId!;
    assert.ok(scratchId !== null && scratchId !== instanceId);
    const shown = (await view(alice, backupId)).verification;
    assert.equal(shown.status, 'RUNNING');
    assert.match(shown.started, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    assert.equal(shown.finished, null);
    assert.equal(shown.message, "running the engine's own check of the data");
    assert.deepEqual(shown.checks, {});

    // the restore is a create's: the backup's chain with the project's key, no database, no user,
    // and no client address the engine admits
    const prepare = restores.get(scratchId)!;
    assert.deepEqual(prepare.restore!.chain.map((link) => link.backupId), [backupId]);
    assert.equal(prepare.restore!.projectId, alice.projectId);
    assert.deepEqual([prepare.databases, prepare.users, prepare.access], [[], [], { allowedCidrs: ['0.0.0.0/32'] }]);
    // hidden from its project: not listed, 404, not counted
    const listed = json(await call(alice, 'GET', '/instances')).instances.map((i: { id: string }) => i.id);
    assert.ok(listed.includes(instanceId) && !listed.includes(scratchId), JSON.stringify(listed));
    expectFault(await call(alice, 'GET', `/instances/${scratchId}`), 404, 'itemNotFound', new RegExp(scratchId));
    expectFault(await call(alice, 'DELETE', `/instances/${scratchId}`), 404, 'itemNotFound', new RegExp(scratchId));
    assert.deepEqual(await usage(alice), before, 'the scratch instance counts against no quota');
    const row = await h.store.instances.get(scratchId);
    assert.deepEqual([row?.tenantId, row?.internal], [alice.projectId, true]);

    // one verification at a time, and the backup stays while it runs
    expectFault(await verify(alice, backupId), 422, 'unprocessableEntity', /already being verified/);
    expectFault(await call(alice, 'DELETE', `/backups/${backupId}`), 422, 'unprocessableEntity', /being verified/);

    (await eventually('the guest asked for its check', async () => release, (r) => r !== undefined))!();
    release = undefined;
    const done = await ended(alice, backupId);
    assert.equal(done.status, 'PASSED');
    assert.match(done.finished, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    assert.deepEqual(done.checks, sound.checks);
    assert.match(done.message, /no errors/);
    assert.ok(deleted.includes(scratchId), 'the agent removed the scratch instance');
    assert.equal(await h.store.instances.get(scratchId), undefined, 'the scratch instance is deleted before PASSED is recorded');
    assert.deepEqual(await usage(alice), before);
    // listed with the verification
    const inList = json(await call(alice, 'GET', '/backups')).backups.find((b: { id: string }) => b.id === backupId);
    assert.deepEqual(inList.verification, done);
  });

  test('a finished verification can run again; the new one replaces it', async () => {
    const { backupId } = await completedBackup(alice);
    scratch = { restore: {}, check: sound };
    assert.equal((await verify(alice, backupId)).statusCode, 202);
    const first = await ended(alice, backupId);
    assert.equal((await verify(alice, backupId)).statusCode, 202);
    const second = await ended(alice, backupId);
    assert.equal(second.status, 'PASSED');
    assert.ok(second.started >= first.started);
    assert.equal(await h.store.tasks.activeForInstance(backupId), undefined);
  });

  test('a verification left RUNNING by a task that ended without it starts anew; its scratch instance is deleted', async () => {
    const { instanceId, backupId } = await completedBackup(alice);
    scratch = { restore: {}, check: sound };
    // as a task that failed outright would leave it: RUNNING, a scratch instance, no task
    const source = (await h.store.instances.get(instanceId))!;
    const leftover = newUuid();
    await h.store.instances.create({ ...source, id: leftover, name: 'verify-leftover', taskStatus: 'NONE', createdAt: new Date(), updatedAt: new Date(), internal: true });
    await h.store.instances.update(leftover, { host });
    assert.equal(await h.store.backupVerifications.begin({ backupId, tenantId: alice.projectId, message: 'waiting', startedAt: new Date() }), true);
    await h.store.backupVerifications.update(backupId, { scratchInstanceId: leftover });
    assert.equal((await verify(alice, backupId)).statusCode, 202);
    const done = await ended(alice, backupId);
    assert.equal(done.status, 'PASSED');
    assert.ok(deleted.includes(leftover), 'the leftover scratch instance was removed by its agent');
    await eventually('the leftover scratch instance deleted', () => h.store.instances.get(leftover), (row) => row === undefined);
  });

  test("FAILED with what the engine's check found; the scratch instance is deleted all the same", async () => {
    const { backupId } = await completedBackup(alice);
    scratch = { restore: {}, check: { checks: { databases: 1, tables: 4, indexes: 1, errors: 2 }, problems: ['heap table "app.public.t", block 0: bad', 'btree index "app.public.i": bad'] } };
    assert.equal((await verify(alice, backupId)).statusCode, 202);
    const done = await ended(alice, backupId);
    assert.equal(done.status, 'FAILED');
    assert.match(done.message, /found 2 error\(s\).*app\.public\.t.*app\.public\.i/);
    assert.deepEqual(done.checks, { databases: 1, tables: 4, indexes: 1, errors: 2 });
    const scratchId = (await h.store.backupVerifications.get(backupId))!.scratchInstanceId!;
    assert.equal(await h.store.instances.get(scratchId), undefined);
    assert.ok(deleted.includes(scratchId));
    assert.equal((await view(alice, backupId)).status, 'COMPLETED', "the backup's own status is Trove's, untouched");
  });

  test("a restore that fails: FAILED with the restore's reason, its first line only; the scratch instance is deleted", async () => {
    const { backupId } = await completedBackup(alice);
    scratch = { restore: { fails: 'Backup object x does not match its checksum (SHA-256 a, expected b)' }, check: sound };
    assert.equal((await verify(alice, backupId)).statusCode, 202);
    const done = await ended(alice, backupId);
    assert.equal(done.status, 'FAILED');
    assert.equal(done.message, 'The backup could not be restored: Backup object x does not match its checksum (SHA-256 a, expected b)');
    assert.deepEqual(done.checks, {});
    const scratchId = (await h.store.backupVerifications.get(backupId))!.scratchInstanceId!;
    assert.equal(await h.store.instances.get(scratchId), undefined);
    assert.ok(deleted.includes(scratchId));
  });

  test('a scratch instance whose guest never reports: FAILED when its build times out, and it is deleted', async () => {
    const { backupId } = await completedBackup(alice);
    scratch = { restore: { silent: true }, check: sound };
    assert.equal((await verify(alice, backupId)).statusCode, 202);
    const done = await ended(alice, backupId);
    assert.equal(done.status, 'FAILED');
    assert.match(done.message, /^The backup could not be restored: Build error: the guest did not report a healthy engine in time/);
    const scratchId = (await h.store.backupVerifications.get(backupId))!.scratchInstanceId!;
    assert.equal(await h.store.instances.get(scratchId), undefined);
    assert.ok(deleted.includes(scratchId));
  });

  test('a check that cannot run: FAILED saying why; the scratch instance is deleted', async () => {
    const { backupId } = await completedBackup(alice);
    scratch = { restore: {}, check: { failed: 'PostgreSQL is not running: its data cannot be checked.' } };
    assert.equal((await verify(alice, backupId)).statusCode, 202);
    const done = await ended(alice, backupId);
    assert.equal(done.status, 'FAILED');
    assert.equal(done.message, "The engine's check could not run: PostgreSQL is not running: its data cannot be checked.");
    const scratchId = (await h.store.backupVerifications.get(backupId))!.scratchInstanceId!;
    assert.equal(await h.store.instances.get(scratchId), undefined);
  });

  test('a stored object that no longer matches its checksum: FAILED saying so, before any scratch instance is made', async () => {
    const { backupId } = await completedBackup(alice);
    scratch = { restore: {}, check: sound };
    const row = (await h.store.backups.get(backupId))!;
    const file = join(storageDir.path, row.container, row.objectName);
    const bytes = await readFile(file);
    bytes[bytes.length >> 1]! ^= 0x01;
    await writeFile(file, bytes);
    const before = created.length;
    assert.equal((await verify(alice, backupId)).statusCode, 202);
    const done = await ended(alice, backupId);
    assert.equal(done.status, 'FAILED');
    assert.match(done.message, new RegExp(`Backup object ${row.objectName} in container ${row.container} does not match its checksum`));
    assert.equal((await h.store.backupVerifications.get(backupId))!.scratchInstanceId, null);
    assert.equal(created.length, before, 'no scratch instance was placed');
  });

  test('errors: 400 for any other body, 404 for an unknown or another project’s backup, 409 for one not completed', async () => {
    const { backupId } = await completedBackup(alice);
    for (const body of [{}, { verify: { deep: true } }, { verify: {}, restore: {} }, { restore: {} }, { verify: null }, [], '"verify"', 'null']) {
      expectFault(await verify(alice, backupId, body), 400, 'badRequest', /Validation error/);
    }
    expectFault(await verify(alice, backupId, '{"verify": '), 400, 'badRequest', /Malformed/);
    expectFault(await verify(alice, newUuid()), 404, 'itemNotFound', /cannot be found/);
    expectFault(await verify(bob, backupId), 404, 'itemNotFound', /cannot be found/);
    assert.equal((await view(alice, backupId)).verification, null, 'nothing was started');
    await h.store.backups.update(backupId, { state: 'FAILED', failReason: 'broken' });
    expectFault(await verify(alice, backupId), 409, 'conflict', /not completed\. Actual state: FAILED/);
  });

  test('501 for a backup of a datastore without backups', async () => {
    const redis = (await h.store.datastores.listVersions()).find((v) => v.manager === 'redis')!;
    const now = new Date();
    const id = newUuid();
    await h.store.backups.create({
      id, tenantId: alice.projectId, name: 'imported', description: null, instanceId: newUuid(), parentId: null, datastoreVersionId: redis.id,
      backupType: 'full', state: 'COMPLETED', container: 'database_backups', objectName: `${id}.redis.zst.enc`, createdAt: now, updatedAt: now,
    });
    await h.store.backups.update(id, { sha256: 'a'.repeat(64), sizeBytes: 1, facts: {} });
    expectFault(await verify(alice, id), 501, 'notImplemented', /not supported for datastore redis/);
  });
});
