// test-lane: parallel (SQLite files in a temporary directory of its own, the in-process bus)
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { scheduledBackupStarter, scheduledVerificationStarter } from '../../src/api/index.js';
import { LocalDirectoryStorage, MasterKey } from '../../src/backup/index.js';
import {
  conductorContract,
  conductorTopic,
  createRpcClient,
  guestContract,
  guestTopic,
  InProcessTransport,
  serveRpc,
  type CreateBackupInput,
  type Subscription,
} from '../../src/bus/index.js';
import { CofferError, nextCronRun, noEngineCapabilities, silentLogger, type ScheduledVerificationRequest } from '../../src/common/index.js';
import { startConductor, type Conductor } from '../../src/conductor/index.js';
import { openStateStore, type BackupRow, type BackupScheduleSettings, type NewBackup, type StateStore } from '../../src/db/index.js';
import { BackupScheduler, retentionDeletes, startTaskmanager, type Taskmanager } from '../../src/taskmanager/index.js';
import { fakeGuestHandlers } from '../support/fake-guest.js';
import { makeDataDir } from '../support/temp-dir.js';
import { eventually } from '../support/wait.js';

// Backup schedules run by the real taskmanager (its scheduler loop on a short interval, the real
// create_backup and delete_backup flows) and conductor, on a SQLite store and the in-process bus,
// with POST /backups' own admission (the API's scheduledBackupStarter) and a real local-directory
// storage. Fake guests take a backup as a guest does: report BUILDING, store an object, report
// COMPLETED; or hold it, as a long backup keeps its instance busy.

const day = 24 * 60 * 60_000;

let dir: Awaited<ReturnType<typeof makeDataDir>>;
let store: StateStore;
let transport: InProcessTransport;
let conductor: Conductor;
let taskmanager: Taskmanager;
let storage: LocalDirectoryStorage;
const guests: Subscription[] = [];
const held = new Map<string, () => Promise<void>>();
const hold = new Set<string>();
/** every verification the taskmanager's scheduler asked for, by backup */
const verificationsAsked: string[] = [];

const conductorClient = () => createRpcClient(transport, conductorContract, conductorTopic);

async function complete(instanceId: string, input: CreateBackupInput): Promise<void> {
  const stored = await storage.put(input.target.container, input.target.objectName, Readable.from([randomBytes(1024)]));
  await conductorClient().updateBackup(
    { instanceId, backupId: input.target.backupId, state: 'COMPLETED', bytes: stored.size, sha256: stored.sha256, facts: { lsn: input.target.backupId } },
    { requestId: 'r' },
  );
}

before(async () => {
  dir = await makeDataDir('coffer-schedules');
  store = await openStateStore(`sqlite:${join(dir.path, 'state.db')}`);
  transport = new InProcessTransport();
  await mkdir(join(dir.path, 'backups'));
  storage = new LocalDirectoryStorage(join(dir.path, 'backups'));
  conductor = await startConductor({ store, transport, logger: silentLogger() });
  taskmanager = await startTaskmanager({
    store,
    transport,
    logger: silentLogger(),
    leaseMs: 2_000,
    sweepIntervalMs: 20,
    statusPollMs: 10,
    backups: { storage, masterKey: MasterKey.generate() },
    backupStallMs: 5_000,
    backupSchedules: {
      startBackup: scheduledBackupStarter({ store, transport, logger: silentLogger(), backupStorage: storage, defaultBackupContainer: 'scheduled', maxBackupsPerTenant: 50 }),
      startVerification: async (request: ScheduledVerificationRequest, context) => {
        verificationsAsked.push(request.backupId);
        await scheduledVerificationStarter({ store, transport, logger: silentLogger(), backupStorage: storage })(request, context);
      },
      intervalMs: 20,
    },
  });
});

after(async () => {
  await taskmanager.stop();
  for (const g of guests) await g.close();
  await conductor.stop();
  await transport.close();
  await store.close();
  await storage.close();
  await dir.remove();
});

/** The rows of a running instance of `tenantId` in `into`, as a finished create leaves them. */
async function instanceRows(into: StateStore, tenantId: string, options: { incremental?: boolean; status?: 'HEALTHY' | 'FAILED' } = {}): Promise<string> {
  const manager = options.incremental === true ? 'mariadb' : 'postgresql';
  const datastore = await into.datastores.ensureDatastore(manager, randomUUID());
  const version = await into.datastores.upsertVersion({
    id: randomUUID(),
    datastoreId: datastore.id,
    name: `v-${randomUUID().slice(0, 8)}`,
    version: '1.0',
    manager,
    active: true,
    inactiveReason: null,
    updatedAt: new Date(),
    capabilities: { ...noEngineCapabilities, backup: true, incrementalBackup: options.incremental === true },
  });
  const id = randomUUID();
  const now = new Date();
  await into.instances.create({
    id,
    name: 'db',
    tenantId,
    flavorId: '1',
    volumeSizeGb: 1,
    datastoreVersionId: version.id,
    taskStatus: 'NONE',
    taskDescription: '',
    taskStartTime: null,
    access: null,
    createdAt: now,
    updatedAt: now,
  });
  await into.serviceStatuses.set({ instanceId: id, status: options.status ?? 'HEALTHY', updatedAt: now });
  return id;
}

/** A running instance of `tenantId` whose guest takes backups. */
async function instance(tenantId: string, options: { incremental?: boolean; status?: 'HEALTHY' | 'FAILED' } = {}): Promise<string> {
  const id = await instanceRows(store, tenantId, options);
  guests.push(
    await serveRpc(
      transport,
      guestContract,
      guestTopic(id),
      fakeGuestHandlers({
        createBackup: async (input) => {
          await conductorClient().updateBackup({ instanceId: id, backupId: input.target.backupId, state: 'BUILDING' }, { requestId: 'r' });
          if (hold.has(id)) held.set(id, () => complete(id, input));
          else await complete(id, input);
        },
      }),
    ),
  );
  return id;
}

function schedule(tenantId: string, instanceId: string, overrides: Partial<BackupScheduleSettings> = {}): BackupScheduleSettings {
  // due a second ago: the scheduler's next tick runs it
  return { tenantId, instanceId, name: 'nightly', pattern: '30 2 * * *', incremental: false, retainCount: 7, retainDays: null, nextRunAt: new Date(Date.now() - 1000), verify: false, ...overrides };
}

const ofSchedule = (scheduleId: string) => store.backups.listScheduled({ scheduleId });

describe('running schedules', () => {
  test('a schedule due now gets a backup as POST /backups makes one, named after it; its next run is the pattern’s next time', async () => {
    const tenant = `p-${randomUUID()}`;
    const id = await instance(tenant);
    const { id: scheduleId } = await store.backupSchedules.set(schedule(tenant, id), new Date());
    const [made] = await eventually('the scheduled backup completed', () => ofSchedule(scheduleId), (b) => b.length === 1 && b[0]!.state === 'COMPLETED');
    assert.match(made!.name, /^nightly-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(made!.backupType, 'full');
    assert.equal(made!.container, 'scheduled', 'the default container, as for a request');
    assert.ok(await storage.head(made!.container, made!.objectName));
    const after = (await store.backupSchedules.get(id))!;
    assert.equal(after.lastBackupId, made!.id);
    assert.equal(after.lastError, null);
    assert.deepEqual(after.nextRunAt, nextCronRun('30 2 * * *', after.lastRunAt!));
    assert.ok(after.nextRunAt.getTime() > Date.now(), 'not due again: no second backup until then');
  });

  test('a busy instance’s run is skipped with the reason, and its next run is the pattern’s next time, not a retry', async () => {
    const tenant = `p-${randomUUID()}`;
    const id = await instance(tenant);
    hold.add(id);
    const manual = await scheduledBackupStarter({ store, transport, logger: silentLogger(), backupStorage: storage, defaultBackupContainer: 'scheduled', maxBackupsPerTenant: 50 })(
      // a backup someone asked for (no schedule), still running
      { tenantId: tenant, instanceId: id, scheduleId: 'none', name: 'manual', incremental: false },
      { requestId: 'r' },
    );
    await eventually('the manual backup runs', () => held.get(id), (release) => release !== undefined);
    const { id: scheduleId } = await store.backupSchedules.set(schedule(tenant, id), new Date());
    const skipped = await eventually('the run recorded', () => store.backupSchedules.get(id), (s) => s?.lastRunAt !== null);
    assert.match(skipped!.lastError!, new RegExp(`^The backup due at .*Z was skipped: Instance ${id} is not currently available for an action to be performed \\(instance status was BACKUP\\)\\.$`));
    assert.equal(skipped!.lastBackupId, null);
    assert.ok(skipped!.nextRunAt.getTime() > Date.now());
    assert.deepEqual(await ofSchedule(scheduleId), []);
    await held.get(id)!();
    await eventually('the manual backup completed', () => store.backups.get(manual.id), (b) => b?.state === 'COMPLETED');
  });

  test('an instance that is not ACTIVE, or a project over its backups quota: skipped, saying why', async () => {
    const tenant = `p-${randomUUID()}`;
    const failed = await instance(tenant, { status: 'FAILED' });
    await store.backupSchedules.set(schedule(tenant, failed), new Date());
    const notActive = await eventually('the run recorded', () => store.backupSchedules.get(failed), (s) => s?.lastError !== null);
    assert.match(notActive!.lastError!, /is not currently available for an action to be performed \(instance status was ERROR\)/);

    const full = `p-${randomUUID()}`;
    await store.quotas.set({ tenantId: full, resource: 'backups', hardLimit: 0 });
    const id = await instance(full);
    await store.backupSchedules.set(schedule(full, id), new Date());
    const over = await eventually('the run recorded', () => store.backupSchedules.get(id), (s) => s?.lastError !== null);
    assert.match(over!.lastError!, /was skipped: Quota exceeded for resources: \['backups'\]/);
  });

  test('an incremental schedule builds on the newest backup until the chain is as long as it keeps, then takes a full one; whole old chains go', async () => {
    const tenant = `p-${randomUUID()}`;
    const id = await instance(tenant, { incremental: true });
    const settings = schedule(tenant, id, { incremental: true, retainCount: 3 });
    const { id: scheduleId } = await store.backupSchedules.set(settings, new Date());
    const made: BackupRow[] = [];
    for (let run = 1; run <= 6; run++) {
      if (run > 1) await store.backupSchedules.set({ ...settings, nextRunAt: new Date(Date.now() - 1000) }, new Date());
      const latest = await eventually(`run ${run} completed`, () => store.backupSchedules.get(id), (s) => s?.lastBackupId !== null && !made.some((b) => b.id === s?.lastBackupId));
      made.push((await eventually(`backup of run ${run}`, () => store.backups.get(latest!.lastBackupId!), (b) => b?.state === 'COMPLETED'))!);
    }
    assert.deepEqual(made.map((b) => b.backupType), ['full', 'incremental', 'incremental', 'full', 'incremental', 'incremental']);
    assert.deepEqual(made.map((b) => b.parentId), [null, made[0]!.id, made[1]!.id, null, made[3]!.id, made[4]!.id]);
    // after run 5 the newest three are runs 5, 4 and 3, and run 3 keeps its chain; run 6 leaves
    // none of the first chain among them, and it goes whole
    await eventually('the first chain deleted', () => ofSchedule(scheduleId), (b) => b.length === 3);
    assert.deepEqual((await ofSchedule(scheduleId)).map((b) => b.id), [made[5]!.id, made[4]!.id, made[3]!.id]);
    for (const b of made.slice(0, 3)) assert.equal(await storage.head(b.container, b.objectName), undefined, `${b.id} stored`);
  });
});

describe('retention', () => {
  test('keeps the newest retain_count, what they are built on, a project’s own backups and what is built on by them; deletes the rest with their objects', async () => {
    const tenant = `p-${randomUUID()}`;
    const id = await instance(tenant);
    const { id: scheduleId } = await store.backupSchedules.set(schedule(tenant, id, { retainCount: 2, nextRunAt: new Date('2099-01-01T02:30:00Z') }), new Date());
    const now = Date.now();
    const stored = async (name: string, daysAgo: number, extra: Partial<NewBackup> & { state?: 'COMPLETED' | 'FAILED' } = {}): Promise<BackupRow> => {
      const backupId = randomUUID();
      const at = new Date(now - daysAgo * day);
      const row: NewBackup = {
        id: backupId,
        tenantId: tenant,
        name,
        description: null,
        instanceId: id,
        parentId: null,
        datastoreVersionId: null,
        backupType: extra.parentId ? 'incremental' : 'full',
        state: 'COMPLETED',
        container: 'scheduled',
        objectName: `${backupId}.postgresql.zst.enc`,
        createdAt: at,
        updatedAt: at,
        scheduleId,
        ...extra,
      };
      await store.backups.create(row);
      if (row.state === 'COMPLETED') {
        const put = await storage.put(row.container, row.objectName, Readable.from([randomBytes(64)]));
        await store.backups.update(backupId, { sha256: put.sha256, sizeBytes: put.size, facts: {} });
      }
      return (await store.backups.get(backupId))!;
    };
    const f0 = await stored('f0', 12);
    const manualChild = await stored('manual incremental of f0', 11, { parentId: f0.id, scheduleId: null });
    const f1 = await stored('f1', 10);
    const manual = await stored('manual', 9, { scheduleId: null });
    const i1 = await stored('i1', 8, { parentId: f1.id });
    const f2 = await stored('f2', 7);
    const failed = await stored('failed run', 6, { state: 'FAILED' });
    const i2 = await stored('i2', 5, { parentId: f2.id });
    const i3 = await stored('i3', 3, { parentId: i2.id });

    const gone = [f1, i1, failed];
    await eventually('retention deleted f1 with i1, and the failed run', async () => Promise.all(gone.map((b) => store.backups.get(b.id))), (rows) => rows.every((r) => r === undefined));
    for (const b of [f1, i1]) assert.equal(await storage.head(b.container, b.objectName), undefined, `${b.name}'s object`);
    for (const b of [f0, manualChild, manual, f2, i2, i3]) {
      assert.equal((await store.backups.get(b.id))?.state, 'COMPLETED', `${b.name} kept`);
      assert.ok(await storage.head(b.container, b.objectName), `${b.name}'s object kept`);
    }
  });

  test('two schedulers on two connections claim a due run once', async () => {
    // a database of their own: every schedule in it is due only to these two
    const path = join(dir.path, 'claims.db');
    const stores = [await openStateStore(`sqlite:${path}`), await openStateStore(`sqlite:${path}`)];
    // nobody consumes the casts: the backups stay NEW, as admitted
    const quiet = new InProcessTransport();
    try {
      const tenant = `p-${randomUUID()}`;
      const id = await instanceRows(stores[0]!, tenant);
      const schedulers = stores.map(
        (s) =>
          new BackupScheduler({
            store: s,
            logger: silentLogger(),
            startBackup: scheduledBackupStarter({ store: s, transport: quiet, logger: silentLogger(), backupStorage: storage, defaultBackupContainer: 'scheduled', maxBackupsPerTenant: 50 }),
            startVerification: scheduledVerificationStarter({ store: s, transport: quiet, logger: silentLogger(), backupStorage: storage }),
            runTask: async () => {},
            intervalMs: 1_000,
          }),
      );
      const due = new Date('2098-01-01T00:00:00.000Z');
      const now = new Date('2098-01-01T00:00:00.500Z');
      let scheduleId = '';
      for (let round = 0; round < 5; round++) {
        ({ id: scheduleId } = await stores[0]!.backupSchedules.set(schedule(tenant, id, { nextRunAt: due }), new Date()));
        const ran = await Promise.all(schedulers.map((s) => s.tick(now)));
        assert.deepEqual(ran.flat(), [scheduleId], `round ${round}: ${JSON.stringify(ran)}`);
      }
      const runs = await stores[0]!.backups.listScheduled({ scheduleId });
      assert.equal(runs.length, 1, 'the first round’s backup; the later rounds found it running');
      assert.match((await stores[0]!.backupSchedules.get(id))!.lastError!, /instance status was BACKUP/);
    } finally {
      await quiet.close();
      for (const s of stores) await s.close();
    }
  });
});

describe('verifying scheduled backups', () => {
  test('with verify, the completed scheduled backup gets exactly one verification, as the verify action starts it; without, none', async () => {
    const tenant = `p-${randomUUID()}`;
    const verified = await instance(tenant);
    const plain = await instance(tenant);
    const { id: verifiedSchedule } = await store.backupSchedules.set(schedule(tenant, verified, { verify: true }), new Date());
    const { id: plainSchedule } = await store.backupSchedules.set(schedule(tenant, plain), new Date());
    const [made] = await eventually('the verified schedule’s backup completed', () => ofSchedule(verifiedSchedule), (b) => b.length === 1 && b[0]!.state === 'COMPLETED');
    const [other] = await eventually('the plain schedule’s backup completed', () => ofSchedule(plainSchedule), (b) => b.length === 1 && b[0]!.state === 'COMPLETED');
    const verification = await eventually('its verification was started', () => store.backupVerifications.get(made!.id), (v) => v !== undefined);
    assert.equal(verification!.tenantId, tenant);
    assert.equal((await store.backupSchedules.get(verified))!.lastVerifiedBackupId, made!.id);

    // a scheduler of its own ticks over every schedule again, as the loop keeps doing: nothing new starts
    const again = new BackupScheduler({
      store,
      logger: silentLogger(),
      startBackup: async () => assert.fail('no schedule is due'),
      startVerification: async (request) => assert.fail(`verification of ${request.backupId} asked again`),
      runTask: async () => {},
      intervalMs: 1_000,
    });
    await again.tick(new Date(Date.now() - 60_000));
    await again.tick(new Date(Date.now() - 60_000));
    assert.deepEqual(verificationsAsked.filter((id) => id === made!.id), [made!.id], 'asked once');
    assert.ok(!verificationsAsked.includes(other!.id), 'verify off: never asked');
    assert.equal(await store.backupVerifications.get(other!.id), undefined);
    assert.equal((await store.backupSchedules.get(plain))!.lastVerifiedBackupId, null);
  });

  test('a verification that cannot start is said in last_error once; retention leaves a backup alone while it is being verified', async () => {
    // a database of its own: no other scheduler looks at it
    const s = await openStateStore(`sqlite:${join(dir.path, 'verify-errors.db')}`);
    try {
      const tenant = `p-${randomUUID()}`;
      const id = await instanceRows(s, tenant);
      const row = await s.backupSchedules.set(schedule(tenant, id, { verify: true, retainCount: 1, nextRunAt: new Date('2099-01-01T00:00:00Z') }), new Date());
      const made = (name: string, createdAt: Date): NewBackup => ({
        id: randomUUID(), tenantId: tenant, name, description: null, instanceId: id, parentId: null, datastoreVersionId: null,
        backupType: 'full', state: 'COMPLETED', container: 'scheduled', objectName: name, createdAt, updatedAt: createdAt, scheduleId: row.id,
      });
      const older = made('older', new Date('2030-01-01T00:00:00Z'));
      const newer = made('newer', new Date('2030-01-02T00:00:00Z'));
      for (const b of [older, newer]) await s.backups.create(b);
      const runAt = new Date('2030-01-02T00:00:00Z');
      assert.ok(await s.backupSchedules.claimRun(row.id, row.nextRunAt, new Date('2099-01-02T00:00:00Z'), runAt));
      assert.ok(await s.backupSchedules.recordRun(row.id, runAt, { backupId: newer.id }));
      // the older one is being verified: retention (retain_count 1) wants it gone, but not now
      await s.backupVerifications.begin({ backupId: older.id, tenantId: tenant, message: 'restoring', startedAt: runAt });

      const asked: string[] = [];
      const scheduler = new BackupScheduler({
        store: s,
        logger: silentLogger(),
        startBackup: async () => assert.fail('no schedule is due'),
        startVerification: async (request) => {
          asked.push(request.backupId);
          throw new CofferError('UnprocessableEntity', 'a verification of another backup is running.');
        },
        runTask: async () => {},
        intervalMs: 1_000,
      });
      const now = new Date('2030-01-10T00:00:00Z');
      for (let round = 0; round < 3; round++) await scheduler.tick(now);
      assert.deepEqual(asked, [newer.id], 'tried once, not at every tick');
      const after3 = await s.backupSchedules.get(id);
      assert.equal(after3!.lastVerifiedBackupId, newer.id);
      assert.match(after3!.lastError!, new RegExp(`verification of backup ${newer.id} was not started: a verification of another backup is running`));
      assert.equal(await s.tasks.activeForInstance(older.id), undefined, 'no delete while it is verified');

      assert.ok(await s.backupVerifications.finish(older.id, { status: 'PASSED', message: null, finishedAt: now }));
      await scheduler.tick(now);
      assert.equal((await s.tasks.activeForInstance(older.id))?.kind, 'delete_backup', 'once verified, retention deletes it');
    } finally {
      await s.close();
    }
  });
});

describe('which backups retention picks', () => {
  const now = new Date('2030-06-01T00:00:00.000Z');
  const row = (name: string, daysAgo: number, extra: Partial<BackupRow> = {}): BackupRow => ({
    id: name,
    tenantId: 't',
    name,
    description: null,
    instanceId: 'i',
    parentId: null,
    datastoreVersionId: null,
    backupType: extra.parentId ? 'incremental' : 'full',
    state: 'COMPLETED',
    container: 'c',
    objectName: name,
    sizeBytes: 1,
    dataBytes: 1,
    sha256: null,
    facts: null,
    failReason: null,
    createdAt: new Date(now.getTime() - daysAgo * day),
    updatedAt: now,
    deleted: false,
    scheduleId: 's',
    ...extra,
  });
  const limits = (retainCount: number | null, retainDays: number | null) => ({
    id: 's', tenantId: 't', instanceId: 'i', name: null, pattern: '0 3 * * *', incremental: false, retainCount, retainDays,
    nextRunAt: now, lastRunAt: null, lastBackupId: null, lastError: null, createdAt: now, updatedAt: now, verify: false, lastVerifiedBackupId: null,
  });
  const pick = async (retainCount: number | null, retainDays: number | null, own: BackupRow[], others: BackupRow[] = []) => {
    const all = [...own, ...others];
    const deleted = await retentionDeletes(limits(retainCount, retainDays), own, async (id) => all.filter((b) => b.parentId === id), now);
    return deleted.map((b) => b.name).sort();
  };

  test('by age: older than retain_days goes, but never the newest completed one', async () => {
    assert.deepEqual(await pick(null, 5, [row('a', 10), row('b', 6), row('c', 1)]), ['a', 'b']);
    assert.deepEqual(await pick(null, 1, [row('a', 10), row('b', 8), row('running', 0, { state: 'BUILDING' })]), ['a']);
  });

  test('both limits apply: beyond the count or too old', async () => {
    assert.deepEqual(await pick(3, 2, [row('a', 4), row('b', 3), row('c', 1), row('d', 0.5)]), ['a', 'b']);
  });

  test('a backup something stays built on stays: a kept incremental, a running one, one someone asked for', async () => {
    const own = [row('f', 9), row('i', 8, { parentId: 'f' }), row('g', 7), row('h', 6), row('new', 1)];
    assert.deepEqual(await pick(1, null, own), ['f', 'g', 'h'], 'only the topmost of a chain is named: its deletion takes i first');
    assert.deepEqual(await pick(1, null, own, [row('manual', 5, { parentId: 'g', scheduleId: null })]), ['f', 'h']);
    assert.deepEqual(await pick(1, null, own, [row('running', 0, { parentId: 'h', state: 'NEW' })]), ['f', 'g']);
    assert.deepEqual(await pick(2, null, [row('f', 9), row('i1', 8, { parentId: 'f' }), row('i2', 7, { parentId: 'i1' }), row('i3', 6, { parentId: 'i2' })]), [], 'the whole chain of i2 stays');
  });

  test('a failed run goes once a later one completed; nothing goes without a completed one', async () => {
    assert.deepEqual(await pick(5, null, [row('x', 3, { state: 'FAILED' }), row('ok', 2), row('y', 1, { state: 'FAILED' })]), ['x']);
    assert.deepEqual(await pick(1, 1, [row('x', 3, { state: 'FAILED' }), row('y', 2, { state: 'FAILED' })]), []);
  });
});
