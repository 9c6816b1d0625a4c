import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
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
  type CreateBackupInput,
  type PrepareInput,
  type Subscription,
} from '../../src/bus/index.js';
import { newUuid, silentLogger } from '../../src/common/index.js';
import { startConductor, type Conductor } from '../../src/conductor/index.js';
import { startTaskmanager, type Taskmanager } from '../../src/taskmanager/index.js';
import { fakeGuestHandlers, noCapabilities } from '../support/fake-guest.js';
import { makeDataDir } from '../support/temp-dir.js';
import { eventually } from '../support/wait.js';
import { adminSession, json, memberSession, startHarness, type Harness, type Session } from './api-harness.js';

// Backups end to end inside one process, over HTTP: the real API, taskmanager and conductor on
// one SQLite store and the in-process bus, a real local-directory storage, and fake guests that
// do what a guest does with a backup: report BUILDING, store an object, report COMPLETED with its
// size and checksum (or FAILED, or fall silent as a guest whose host died). What the engines
// themselves back up and restore is tested with real engines in test/guest.

type Behaviour = 'complete' | 'fail' | 'silent' | 'hold';

interface FakeInstance {
  behaviour: Behaviour;
  backups: CreateBackupInput[];
  prepares: PrepareInput[];
  /** completes a held backup */
  release?: () => Promise<void>;
  /** a held backup's guest keeps reporting, as a live one does */
  reporting?: NodeJS.Timeout;
  /** its engine archives its log (PostgreSQL's): its full backups record where */
  archivesLog?: boolean;
}

const host = 'host-backup';
let h: Harness;
let conductor: Conductor;
let taskmanager: Taskmanager;
let agent: Subscription;
let storage: BackupStorage;
let storageDir: { path: string; remove: () => Promise<void> };
let admin: Session;
let alice: Session;
let bob: Session;
const instances = new Map<string, FakeInstance>();
const guests: Subscription[] = [];
const masterKey = MasterKey.generate();

const conductorClient = () => createRpcClient(h.transport, conductorContract, conductorTopic);

async function complete(instanceId: string, input: CreateBackupInput): Promise<void> {
  const { backupId, container, objectName } = input.target;
  const stored = await storage.put(container, objectName, Readable.from([randomBytes(4096)]));
  await conductorClient().updateBackup(
    {
      instanceId,
      backupId,
      state: 'COMPLETED',
      bytes: stored.size,
      sha256: stored.sha256,
      facts: {
        'to-lsn': String(instances.get(instanceId)!.backups.length),
        // as a guest whose engine archives its log records it (point in time)
        ...(input.walArchive === undefined || !instances.get(instanceId)!.archivesLog
          ? {}
          : {
              'wal-archiving': 'on',
              'wal-container': input.walArchive.container,
              'wal-prefix': input.walArchive.prefix,
              'completed-at': new Date().toISOString(),
              // each backup of an instance starts two segments after the one before
              'wal-start': segment(instances.get(instanceId)!.backups.length * 2 - 1),
            }),
      },
    },
    { requestId: 'r' },
  );
}

/** a WAL segment's name on timeline 1 */
const segment = (n: number) => `00000001${'0'.repeat(8)}${n.toString(16).toUpperCase().padStart(8, '0')}`;

async function serveGuest(instanceId: string): Promise<void> {
  const fake: FakeInstance = { behaviour: 'complete', backups: [], prepares: [] };
  instances.set(instanceId, fake);
  guests.push(
    await serveRpc(
      h.transport,
      guestContract,
      guestTopic(instanceId),
      fakeGuestHandlers({
        prepare: async (input) => {
          fake.prepares.push(input);
          await conductorClient().heartbeat({ instanceId, status: 'HEALTHY', volumeUsedBytes: 10 * 1024 ** 2 });
        },
        createBackup: async (input) => {
          fake.backups.push(input);
          const { backupId } = input.target;
          await conductorClient().updateBackup({ instanceId, backupId, state: 'BUILDING', dataBytes: 3 * 1024 ** 3 }, { requestId: 'r' });
          if (fake.behaviour === 'complete') await complete(instanceId, input);
          if (fake.behaviour === 'fail') {
            await conductorClient().updateBackup({ instanceId, backupId, state: 'FAILED', message: 'pg_basebackup: could not connect' }, { requestId: 'r' });
          }
          if (fake.behaviour === 'hold') {
            fake.reporting = setInterval(() => {
              conductorClient().updateBackup({ instanceId, backupId, state: 'BUILDING', bytes: 1024 }, { requestId: 'r' }).catch(() => undefined);
            }, 50);
            fake.release = async () => {
              clearInterval(fake.reporting);
              await complete(instanceId, input);
            };
          }
        },
      }),
    ),
  );
}

before(async () => {
  storageDir = await makeDataDir('coffer-backups-api');
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
    backups: { storage, masterKey },
    // long enough that a loaded machine never takes a slow first report for a stall; the silent guest waits this long
    backupStallMs: 3_000,
  });
  agent = await serveRpc(h.transport, agentContract, agentTopic(host), {
    createServer: async ({ instanceId }) => {
      if (!instances.has(instanceId)) await serveGuest(instanceId);
      return { instanceId, host, address: '127.88.1.9', port: 5432 };
    },
    deleteServer: async () => ({ deleted: true }),
    upgradeServer: async () => {
      throw new Error('no upgrade is asked of this agent');
    },
    listServers: async () => [],
  });
  const report = (datastore: string, name: string, version: string, capabilities: typeof noCapabilities) => ({
    datastore,
    manager: datastore,
    name,
    version,
    active: true,
    inactiveReason: null,
    capabilities,
    parameters: [],
  });
  await conductorClient().agentHeartbeat({
    host,
    engines: [
      report('postgresql', '15', '15.19', { ...noCapabilities, backup: true, pointInTimeRecovery: true }),
      report('mariadb', '10.11', '10.11.19', { ...noCapabilities, backup: true, incrementalBackup: true, pointInTimeRecovery: true }),
      report('redis', '7', '7.0.15', noCapabilities),
    ],
    contracts: { [agentContract.name]: agentContract.version, [guestContract.name]: guestContract.version },
  });
  await eventually('the agent’s versions registered', () => h.store.datastores.listVersions(), (v) => v.length >= 3);
  admin = await adminSession(h.app);
  alice = await memberSession(h, 'alice');
  bob = await memberSession(h, 'bob');
});

after(async () => {
  for (const fake of instances.values()) clearInterval(fake.reporting);
  await taskmanager.stop();
  for (const g of guests) await g.close();
  await agent.close();
  await conductor.stop();
  await h.close();
  await storage.close();
  await storageDir.remove();
});

const headers = (s: Session) => ({ 'x-auth-token': s.token, host: 'db.example' });

function call(s: Session, method: 'GET' | 'POST' | 'DELETE', path: string, payload?: unknown) {
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

async function createInstance(s: Session, datastore = 'postgresql', version = '15', extra: Record<string, unknown> = {}): Promise<string> {
  const res = await call(s, 'POST', '/instances', {
    instance: { name: `db-${newUuid().slice(0, 6)}`, flavorRef: '2', volume: { size: 5 }, datastore: { type: datastore, version }, ...extra },
  });
  assert.equal(res.statusCode, 200, res.body);
  const id: string = json(res).instance.id;
  await eventually(`instance ${id} active`, () => h.store.instances.get(id), (row) => row?.taskStatus === 'NONE');
  instances.get(id)!.archivesLog = datastore === 'postgresql';
  return id;
}

async function backup(s: Session, body: Record<string, unknown>) {
  return call(s, 'POST', '/backups', { backup: { name: `b-${newUuid().slice(0, 6)}`, ...body } });
}

async function ended(s: Session, id: string, state = 'COMPLETED') {
  await eventually(`backup ${id} ${state}`, () => h.store.backups.get(id), (row) => row?.state === state);
  return json((await call(s, 'GET', `/backups/${id}`)) as never).backup;
}

describe('taking backups', () => {
  test('POST answers 202 NEW; the backup completes with its size and location; lists and show agree', async () => {
    const instanceId = await createInstance(alice);
    const res = await backup(alice, { instance: instanceId, description: 'before the upgrade' });
    assert.equal(res.statusCode, 202, res.body);
    const created = json(res).backup;
    assert.equal(created.status, 'NEW');
    assert.equal(created.size, null);
    assert.equal(created.locationRef, null);
    assert.equal(created.instance_id, instanceId);
    assert.equal(created.parent_id, null);
    assert.equal(created.project_id, alice.projectId);
    assert.deepEqual(created.datastore, { type: 'postgresql', version: '15', version_id: created.datastore.version_id });
    const done = await ended(alice, created.id);
    assert.equal(done.description, 'before the upgrade');
    // Trove's GB with two decimals: 4 KiB shows as 0
    assert.equal(done.size, 0);
    assert.match(done.locationRef, new RegExp(`${created.id}`));
    const row = await h.store.backups.get(created.id);
    const head = await storage.head(row!.container, row!.objectName);
    assert.equal(head?.sha256, row!.sha256, 'the recorded checksum is the stored object’s');
    assert.equal(row!.sizeBytes, head?.size);
    const asked = instances.get(instanceId)!.backups[0]!;
    assert.equal(asked.kind, 'full');
    assert.equal(asked.projectId, alice.projectId);
    assert.equal(asked.target.container, 'database_backups');
    assert.ok(asked.target.wrappedKey.length > 0);
    const list = json(await call(alice, 'GET', '/backups')).backups;
    assert.ok(list.some((b: { id: string }) => b.id === created.id));
    const ofInstance = json(await call(alice, 'GET', `/instances/${instanceId}/backups`)).backups;
    assert.deepEqual(ofInstance.map((b: { id: string }) => b.id), [created.id]);
    // the instance's history says how it ended, which its project's webhooks receive
    const events = json(await call(alice, 'GET', `/instances/${instanceId}/events`)).events;
    const completed = events.filter((e: { type: string }) => e.type === 'backup.completed');
    assert.deepEqual(completed.map((e: { name: string; message: string }) => [e.name, e.message]), [[created.id, `full backup ${created.name}: 1 MB stored`]]);
  });

  test('while a backup runs the instance shows BACKUP, a second backup and a restart are refused (422)', async () => {
    const instanceId = await createInstance(alice);
    instances.get(instanceId)!.behaviour = 'hold';
    const first = json(await backup(alice, { instance: instanceId })).backup;
    await eventually('the guest asked', async () => instances.get(instanceId)!.release, (r) => r !== undefined);
    const view = json(await call(alice, 'GET', `/instances/${instanceId}`)).instance;
    assert.equal(view.status, 'BACKUP');
    for (const path of ['/instances', '/instances/detail']) {
      const listed = json(await call(alice, 'GET', path)).instances;
      assert.equal(listed.find((i: { id: string }) => i.id === instanceId).status, 'BACKUP', `${path} shows it too`);
      assert.ok(listed.filter((i: { id: string }) => i.id !== instanceId).every((i: { status: string }) => i.status !== 'BACKUP'), `${path}: only it`);
    }
    const running = await eventually('the bytes stored so far shown', async () => json(await call(alice, 'GET', `/backups/${first.id}`)).backup, (b) => b.stored_bytes === 1024);
    assert.equal(running.size, null, "Trove's size waits for the whole object");
    assert.equal(view.operating_status, 'HEALTHY');
    const busy = `Instance ${instanceId} is not currently available for an action to be performed (instance status was BACKUP).`;
    expectFault(await backup(alice, { instance: instanceId }), 422, 'unprocessableEntity', busy);
    expectFault(await call(alice, 'POST', `/instances/${instanceId}/action`, { restart: {} }), 422, 'unprocessableEntity', busy);
    expectFault(await call(alice, 'DELETE', `/backups/${first.id}`), 422, 'unprocessableEntity', `Backup ${first.id} cannot be deleted because it is running.`);
    await instances.get(instanceId)!.release!();
    await ended(alice, first.id);
    assert.equal(json(await call(alice, 'GET', `/instances/${instanceId}`)).instance.status, 'ACTIVE');
  });

  test('a backup the guest fails is FAILED with its reason and leaves no object', async () => {
    const instanceId = await createInstance(alice);
    instances.get(instanceId)!.behaviour = 'fail';
    const id = json(await backup(alice, { instance: instanceId })).backup.id;
    const failed = await ended(alice, id, 'FAILED');
    assert.equal(failed.fail_reason, 'pg_basebackup: could not connect');
    assert.equal(failed.size, null);
    const events = json(await call(alice, 'GET', `/instances/${instanceId}/events`)).events;
    assert.deepEqual(
      events.filter((e: { type: string }) => e.type.startsWith('backup.')).map((e: { type: string; name: string; message: string }) => [e.type, e.name, e.message]),
      [['backup.failed', id, 'pg_basebackup: could not connect']],
    );
    const row = await h.store.backups.get(id);
    assert.equal(await storage.head(row!.container, row!.objectName), undefined);
  });

  test('a backup whose guest falls silent is FAILED once it stalls, saying so', async () => {
    const instanceId = await createInstance(alice);
    instances.get(instanceId)!.behaviour = 'silent';
    const id = json(await backup(alice, { instance: instanceId })).backup.id;
    const failed = await ended(alice, id, 'FAILED');
    assert.match(failed.fail_reason, /stopped reporting/);
    const events = json(await call(alice, 'GET', `/instances/${instanceId}/events`)).events;
    const backupEvents = events.filter((e: { type: string }) => e.type.startsWith('backup.'));
    assert.deepEqual(backupEvents.map((e: { type: string; name: string }) => [e.type, e.name]), [['backup.failed', id]]);
    assert.match(backupEvents[0].message, /stopped reporting/);
    assert.equal(json(await call(alice, 'GET', `/instances/${instanceId}`)).instance.status, 'ACTIVE');
  });

  test('incremental: parent_id or the newest completed backup; refused (501) where the engine has none', async () => {
    const maria = await createInstance(alice, 'mariadb', '10.11');
    const full = json(await backup(alice, { instance: maria })).backup.id;
    await ended(alice, full);
    const inc1 = json(await backup(alice, { instance: maria, incremental: 1 })).backup;
    assert.equal(inc1.parent_id, full);
    await ended(alice, inc1.id);
    const inc2 = json(await backup(alice, { instance: maria, parent_id: full })).backup;
    assert.equal(inc2.parent_id, full);
    await ended(alice, inc2.id);
    const asked = instances.get(maria)!.backups;
    assert.deepEqual(asked.map((b) => b.kind), ['full', 'incremental', 'incremental']);
    assert.deepEqual(asked[1]!.parentFacts, { 'to-lsn': '1' }, 'the parent’s facts go to the guest');

    const pg = await createInstance(alice);
    const pgFull = json(await backup(alice, { instance: pg })).backup.id;
    await ended(alice, pgFull);
    expectFault(await backup(alice, { instance: pg, incremental: true }), 501, 'notImplemented', /Incremental backups are not supported for datastore postgresql/);
    expectFault(await backup(alice, { instance: maria, parent_id: pgFull }), 400, 'badRequest', /is a backup of another instance/);
  });

  test('bad requests: no instance (400), unknown or another project’s (404), no backups for the engine (501), a bad container (400)', async () => {
    expectFault(await backup(alice, {}), 400, 'badRequest', 'instance is missing.');
    const unknown = newUuid();
    expectFault(await backup(alice, { instance: unknown }), 404, 'itemNotFound', `Instance ${unknown} cannot be found.`);
    const bobs = await createInstance(bob);
    expectFault(await backup(alice, { instance: bobs }), 404, 'itemNotFound', `Instance ${bobs} cannot be found.`);
    const redis = await createInstance(alice, 'redis', '7');
    expectFault(await backup(alice, { instance: redis }), 501, 'notImplemented', 'Backups are not supported for datastore redis.');
    const pg = await createInstance(alice);
    expectFault(await backup(alice, { instance: pg, swift_container: 'x; rm -rf /' }), 400, 'badRequest', /Invalid swift_container name/);
    const res = await call(alice, 'POST', '/backups', { backup: { instance: pg } });
    assert.equal(res.statusCode, 400, res.body);
  });
});

describe('backups belong to their project', () => {
  test('another project’s backup is 404 and not listed; admins see every project’s with all_projects', async () => {
    const instanceId = await createInstance(bob);
    const id = json(await backup(bob, { instance: instanceId })).backup.id;
    await ended(bob, id);
    expectFault(await call(alice, 'GET', `/backups/${id}`), 404, 'itemNotFound', `Backup ${id} cannot be found.`);
    expectFault(await call(alice, 'DELETE', `/backups/${id}`), 404, 'itemNotFound', `Backup ${id} cannot be found.`);
    assert.ok(!json(await call(alice, 'GET', '/backups')).backups.some((b: { id: string }) => b.id === id));
    assert.equal((await call(alice, 'GET', '/backups?all_projects=true')).statusCode, 403);
    assert.ok(json(await call(admin, 'GET', '/backups?all_projects=true')).backups.some((b: { id: string }) => b.id === id));
    assert.equal((await call(admin, 'GET', `/backups/${id}`)).statusCode, 200);
  });
});

describe('quota, paging and deleting', () => {
  test('the backups quota counts live backups (413 past it); a delete frees the slot', async () => {
    const s = await memberSession(h, 'quota');
    const quota = await h.app.inject({ method: 'PUT', url: `/v1.0/${admin.projectId}/mgmt/quotas/${s.projectId}`, headers: headers(admin), payload: { quotas: { backups: 6 } } });
    assert.equal(quota.statusCode, 200, quota.body);
    const instanceId = await createInstance(s);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await backup(s, { instance: instanceId });
      assert.equal(res.statusCode, 202, res.body);
      ids.push(json(res).backup.id);
      await ended(s, ids[i]!);
    }
    expectFault(await backup(s, { instance: instanceId }), 413, 'overLimit', /Quota exceeded for resources: \['backups'\]/);
    // Trove's paging: newest update first, an integer offset as the marker
    const first = json(await call(s, 'GET', '/backups?limit=4'));
    assert.equal(first.backups.length, 4);
    assert.match(first.links[0].href, /marker=4/);
    const second = json(await call(s, 'GET', '/backups?limit=4&marker=4'));
    assert.equal(second.backups.length, 2);
    assert.equal(second.links, undefined);
    assert.deepEqual([...first.backups, ...second.backups].map((b: { id: string }) => b.id).sort(), [...ids].sort());

    assert.equal((await call(s, 'DELETE', `/backups/${ids[0]}`)).statusCode, 202);
    await eventually('the backup deleted', () => h.store.backups.get(ids[0]!), (row) => row === undefined);
    expectFault(await call(s, 'GET', `/backups/${ids[0]}`), 404, 'itemNotFound', `Backup ${ids[0]} cannot be found.`);
    assert.equal((await backup(s, { instance: instanceId })).statusCode, 202);
  });

  test('deleting a backup deletes its incrementals first, objects and rows', async () => {
    const maria = await createInstance(alice, 'mariadb', '10.11');
    const full = json(await backup(alice, { instance: maria })).backup.id;
    await ended(alice, full);
    const inc = json(await backup(alice, { instance: maria, incremental: 1 })).backup.id;
    await ended(alice, inc);
    const rows = [await h.store.backups.get(full), await h.store.backups.get(inc)];
    assert.equal((await call(alice, 'DELETE', `/backups/${full}`)).statusCode, 202);
    await eventually('both deleted', async () => [await h.store.backups.get(full), await h.store.backups.get(inc)], (r) => r.every((b) => b === undefined));
    for (const row of rows) assert.equal(await storage.head(row!.container, row!.objectName), undefined);
  });

  test('a deleted instance’s running backup is FAILED', async () => {
    const instanceId = await createInstance(alice);
    instances.get(instanceId)!.behaviour = 'hold';
    const id = json(await backup(alice, { instance: instanceId })).backup.id;
    await eventually('the guest asked', async () => instances.get(instanceId)!.release, (r) => r !== undefined);
    assert.equal((await call(alice, 'DELETE', `/instances/${instanceId}`)).statusCode, 202);
    const failed = await ended(alice, id, 'FAILED');
    assert.equal(failed.fail_reason, 'The instance was deleted while the backup ran.');
  });
});

describe('backup strategies', () => {
  test('a project’s and an instance’s container: set, listed, used by the next backup, deleted', async () => {
    const s = await memberSession(h, 'strategy');
    const instanceId = await createInstance(s);
    const set = await call(s, 'POST', '/backup_strategies', { backup_strategy: { swift_container: 'team-backups' } });
    assert.equal(set.statusCode, 202, set.body);
    assert.deepEqual(json(set).backup_strategy, { project_id: s.projectId, instance_id: '', backend: 'swift', swift_container: 'team-backups' });
    assert.equal((await call(s, 'POST', '/backup_strategies', { backup_strategy: { swift_container: 'db-one', instance_id: instanceId } })).statusCode, 202);
    const listed = json(await call(s, 'GET', '/backup_strategies')).backup_strategies;
    assert.deepEqual(listed.map((r: { swift_container: string }) => r.swift_container).sort(), ['db-one', 'team-backups']);
    const id = json(await backup(s, { instance: instanceId })).backup.id;
    await ended(s, id);
    assert.equal((await h.store.backups.get(id))?.container, 'db-one');
    assert.equal((await call(s, 'DELETE', `/backup_strategies?instance_id=${instanceId}`)).statusCode, 202);
    const next = json(await backup(s, { instance: instanceId })).backup.id;
    await ended(s, next);
    assert.equal((await h.store.backups.get(next))?.container, 'team-backups');
    expectFault(await call(s, 'POST', '/backup_strategies', { backup_strategy: { swift_container: 'a b' } }), 400, 'badRequest', /swift_container/);
    expectFault(await call(s, 'POST', '/backup_strategies', { backup_strategy: { swift_container: 'x', extra: 1 } }), 400, 'badRequest', /extra/);
    assert.equal((await call(s, 'GET', `/backup_strategies?project_id=${alice.projectId}`)).statusCode, 403);
  });
});

describe('restoring into a new instance', () => {
  test('restorePoint sends the backup’s chain (full first) with the project’s key to the new instance’s prepare', async () => {
    const maria = await createInstance(alice, 'mariadb', '10.11');
    const full = json(await backup(alice, { instance: maria })).backup.id;
    await ended(alice, full);
    const inc = json(await backup(alice, { instance: maria, incremental: 1 })).backup.id;
    await ended(alice, inc);
    const restored = await createInstance(alice, 'mariadb', '10.11', { restorePoint: { backupRef: inc } });
    const prepare = instances.get(restored)!.prepares[0]!;
    assert.equal(prepare.restore?.projectId, alice.projectId);
    assert.deepEqual(prepare.restore?.chain.map((l) => [l.backupId, l.kind]), [[full, 'full'], [inc, 'incremental']]);
    const fullRow = await h.store.backups.get(full);
    assert.equal(prepare.restore?.chain[0]?.sha256, fullRow?.sha256);
    assert.equal(prepare.restore?.chain[0]?.wrappedKey, instances.get(maria)!.backups[0]!.target.wrappedKey, 'one key per project');
  });

  test('Trove’s checks: unknown (404), not completed (409), other datastore (400), too large (403), point in time where the engine has none (501)', async () => {
    const pg = await createInstance(alice);
    const create = (extra: Record<string, unknown>, datastore = 'postgresql', version = '15', size = 5) =>
      call(alice, 'POST', '/instances', { instance: { name: 'r', flavorRef: '2', volume: { size }, datastore: { type: datastore, version }, ...extra } });
    const unknown = newUuid();
    expectFault(await create({ restorePoint: { backupRef: unknown } }), 404, 'itemNotFound', `Backup ${unknown} cannot be found.`);
    instances.get(pg)!.behaviour = 'fail';
    const failed = json(await backup(alice, { instance: pg })).backup.id;
    await ended(alice, failed, 'FAILED');
    expectFault(
      await create({ restorePoint: { backupRef: failed } }),
      409,
      'conflict',
      `Unable to create instance because backup ${failed} is not completed. Actual state: FAILED.`,
    );
    instances.get(pg)!.behaviour = 'complete';
    const good = json(await backup(alice, { instance: pg })).backup.id;
    await ended(alice, good);
    expectFault(await create({ restorePoint: { backupRef: good } }, 'mariadb', '10.11'), 400, 'badRequest', /does not match the destination datastore of mariadb/);
    // the fake guest reported 3 GiB of data when the backup began
    expectFault(await create({ restorePoint: { backupRef: good } }, 'postgresql', '15', 2), 403, 'forbidden', /Backup size: 3 GBs. Available size: 2 GBs./);
    const cache = await createInstance(alice, 'redis', '7');
    expectFault(
      await create({ restorePoint: { instance_id: cache, restore_time: '2026-12-01T00:00:00Z' } }, 'redis', '7'),
      501,
      'notImplemented',
      'Point-in-time restore (restorePoint.restore_time) is not supported for datastore redis yet.',
    );
    const bobsView = await call(bob, 'POST', '/instances', {
      instance: { name: 'r', flavorRef: '2', volume: { size: 5 }, datastore: { type: 'postgresql', version: '15' }, restorePoint: { backupRef: good } },
    });
    expectFault(bobsView, 404, 'itemNotFound', `Backup ${good} cannot be found.`);
  });
});

describe('point in time', () => {
  const create = (s: Session, restorePoint: Record<string, unknown>) =>
    call(s, 'POST', '/instances', { instance: { name: 'pitr', flavorRef: '2', volume: { size: 5 }, datastore: { type: 'postgresql', version: '15' }, restorePoint } });

  test('a full backup asks the guest to archive the log beside it; the instance view shows the window the guest reports', async () => {
    const pg = await createInstance(alice);
    const full = json(await backup(alice, { instance: pg })).backup.id;
    await ended(alice, full);
    assert.deepEqual(instances.get(pg)!.backups[0]!.walArchive, { container: 'database_backups', prefix: `${pg}/wal-15` });
    const inc = await createInstance(alice, 'mariadb', '10.11');
    json(await backup(alice, { instance: inc }));
    await eventually('the mariadb backup asked', async () => instances.get(inc)!.backups.length, (n) => n === 1);

    assert.equal(json(await call(alice, 'GET', `/instances/${pg}`)).instance.recoverable_window, undefined, 'nothing archived yet');
    expectFault(await create(alice, { instance_id: pg, restore_time: new Date().toISOString() }), 400, 'badRequest', /has no recoverable window yet \(take a full backup first\)/);

    const completed = new Date((await h.store.backups.get(full))!.facts!['completed-at']!);
    const through = new Date(completed.getTime() + 60_000);
    await conductorClient().walArchived({ instanceId: pg, through: through.toISOString() }, { requestId: 'r' });
    await eventually('the archive recorded', () => h.store.instances.get(pg), (row) => row?.walArchivedUntil?.getTime() === through.getTime());
    // a late, older report never narrows it
    await conductorClient().walArchived({ instanceId: pg, through: completed.toISOString() }, { requestId: 'r' });
    const window = json(await call(alice, 'GET', `/instances/${pg}`)).instance.recoverable_window;
    assert.deepEqual(window, {
      earliest: new Date(Math.ceil(completed.getTime() / 1000) * 1000).toISOString().slice(0, 19),
      latest: through.toISOString().slice(0, 19),
    });
  });

  test('restore_time with instance_id or backupRef sends the base backup and where its log is to the new instance; outside the window is 400', async () => {
    const pg = await createInstance(alice);
    const full = json(await backup(alice, { instance: pg })).backup.id;
    await ended(alice, full);
    const completed = new Date((await h.store.backups.get(full))!.facts!['completed-at']!);
    const through = new Date(completed.getTime() + 120_000);
    await conductorClient().walArchived({ instanceId: pg, through: through.toISOString() }, { requestId: 'r' });
    await eventually('the archive recorded', () => h.store.instances.get(pg), (row) => row?.walArchivedUntil !== null);

    const moment = new Date(completed.getTime() + 30_000).toISOString();
    for (const restorePoint of [{ instance_id: pg, restore_time: moment }, { backupRef: full, restore_time: moment.replace('Z', '+00:00') }]) {
      const res = await create(alice, restorePoint);
      assert.equal(res.statusCode, 200, res.body);
      const id = json(res).instance.id;
      await eventually(`instance ${id} active`, () => h.store.instances.get(id), (row) => row?.taskStatus === 'NONE');
      const prepare = instances.get(id)!.prepares[0]!;
      assert.deepEqual(prepare.restore?.chain.map((l) => l.backupId), [full]);
      assert.deepEqual(prepare.restore?.pointInTime, {
        time: moment,
        container: 'database_backups',
        prefix: `${pg}/wal-15`,
        wrappedKey: instances.get(pg)!.backups[0]!.target.wrappedKey,
      });
    }

    const window = `its recoverable window is ${completed.toISOString()} to ${through.toISOString()}`;
    const late = new Date(through.getTime() + 1000).toISOString();
    expectFault(await create(alice, { instance_id: pg, restore_time: late }), 400, 'badRequest', `restore_time ${late} is outside what instance ${pg} can be restored to: ${window}.`);
    const early = new Date(completed.getTime() - 1000).toISOString();
    expectFault(await create(alice, { backupRef: full, restore_time: early }), 400, 'badRequest', `restore_time ${early} is outside what instance ${pg} can be restored to: ${window}.`);
    expectFault(await create(alice, { instance_id: pg, restore_time: 'yesterday' }), 400, 'badRequest', /restore_time "yesterday" is not a time: give an ISO 8601 time/);
    expectFault(await create(alice, { instance_id: pg }), 400, 'badRequest', 'restorePoint.instance_id restores to a moment: give restore_time too.');
    expectFault(await create(bob, { instance_id: pg, restore_time: moment }), 404, 'itemNotFound', new RegExp(pg));
  });
});

describe('the archived log is kept as long as a backup needs it', () => {
  test('deleting a base backup removes the log older than the oldest remaining one; the last one takes the whole archive', async () => {
    const pg = await createInstance(alice);
    const first = json(await backup(alice, { instance: pg })).backup.id;
    await ended(alice, first);
    const second = json(await backup(alice, { instance: pg })).backup.id;
    await ended(alice, second);
    const [start1, start2] = [(await h.store.backups.get(first))!.facts!['wal-start']!, (await h.store.backups.get(second))!.facts!['wal-start']!];
    assert.deepEqual([start1, start2], [segment(1), segment(3)]);
    for (let n = 1; n <= 5; n += 1) await storage.put('database_backups', `${pg}/wal-15/${segment(n)}`, Readable.from([randomBytes(64)]));
    const archived = async () => (await storage.list('database_backups', `${pg}/wal-15/`)).map((o) => o.name.slice(`${pg}/wal-15/`.length));

    assert.equal((await call(alice, 'DELETE', `/backups/${first}`)).statusCode, 202);
    await eventually('the first backup deleted', () => h.store.backups.get(first), (row) => row === undefined);
    await eventually('the log before the second backup removed', archived, (names) => names.length === 3);
    assert.deepEqual(await archived(), [segment(3), segment(4), segment(5)]);

    assert.equal((await call(alice, 'DELETE', `/backups/${second}`)).statusCode, 202);
    await eventually('the whole archive removed', archived, (names) => names.length === 0);
  });
});
