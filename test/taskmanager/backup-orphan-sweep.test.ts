// test-lane: parallel (SQLite files and a backup directory in a temporary directory of its own, the in-process bus)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { LocalDirectoryStorage, MasterKey, type BackupStorage } from '../../src/backup/index.js';
import { InProcessTransport } from '../../src/bus/index.js';
import { CofferError, silentLogger } from '../../src/common/index.js';
import { openStateStore, type StateStore } from '../../src/db/index.js';
import { startTaskmanager, sweepBackupOrphans } from '../../src/taskmanager/index.js';
import { instance, uid } from '../db/state-store-fixtures.js';
import { makeDataDir } from '../support/temp-dir.js';
import { eventually } from '../support/wait.js';

// The orphan sweep on a real SQLite store and a real local-directory storage: objects are put
// as backups store them, rows say which backups and instances ended when, and the sweep must
// remove exactly what nothing will read again.

const hour = 60 * 60_000;
const grace = hour;
const container = 'backups';

let dir: Awaited<ReturnType<typeof makeDataDir>>;
let store: StateStore;
let storage: LocalDirectoryStorage;

before(async () => {
  dir = await makeDataDir('coffer-orphans');
  store = await openStateStore(`sqlite:${join(dir.path, 'state.db')}`);
  await mkdir(join(dir.path, 'objects'));
  storage = new LocalDirectoryStorage(join(dir.path, 'objects'));
});

after(async () => {
  await store.close();
  await dir.remove();
});

async function put(name: string, into = container): Promise<void> {
  await storage.ensureContainer(into);
  await storage.put(into, name, Readable.from([randomBytes(256)]));
}

async function newInstance(deletedAgoMs?: number): Promise<string> {
  const row = instance();
  await store.instances.create(row);
  if (deletedAgoMs !== undefined) await store.instances.markDeleted(row.id, new Date(Date.now() - deletedAgoMs));
  return row.id;
}

/** a backup row and, unless `stored` is false, its object; `endedAgoMs` back-dates its last change */
async function newBackup(
  instanceId: string,
  state: 'COMPLETED' | 'FAILED' | 'BUILDING',
  options: { endedAgoMs?: number; deleted?: boolean; rollsForward?: boolean; into?: string } = {},
): Promise<string> {
  const id = uid();
  const objectName = `${id}.postgresql.zst.enc`;
  const when = new Date(Date.now() - (options.endedAgoMs ?? 0));
  const into = options.into ?? container;
  await store.backups.create({
    id,
    tenantId: 'tenant',
    instanceId,
    name: 'b',
    description: null,
    datastoreVersionId: null,
    parentId: null,
    backupType: 'full',
    state,
    container: into,
    objectName,
    createdAt: when,
    updatedAt: when,
  });
  if (state === 'COMPLETED' && options.rollsForward === true) {
    await store.backups.update(id, { facts: { 'wal-container': into, 'wal-prefix': `${instanceId}/wal-15`, 'wal-start': '000000010000000000000001' } });
  }
  if (options.deleted === true) await store.backups.markDeleted(id, when);
  await put(objectName, into);
  return objectName;
}

async function names(into = container): Promise<string[]> {
  return (await storage.list(into)).map((o) => o.name).sort();
}

test('the sweep removes failed and deleted backups’ objects and dead instances’ logs once their grace passed, and nothing else', async () => {
  const live = await newInstance();
  const kept = await newBackup(live, 'COMPLETED', { endedAgoMs: 5 * hour, rollsForward: true });
  const running = await newBackup(live, 'BUILDING', { endedAgoMs: 5 * hour });
  const lateWriter = await newBackup(live, 'FAILED', { endedAgoMs: 2 * hour });
  const justFailed = await newBackup(live, 'FAILED', { endedAgoMs: grace / 2 });
  const deletedLongAgo = await newBackup(live, 'COMPLETED', { endedAgoMs: 3 * hour, deleted: true });
  const deletedJustNow = await newBackup(live, 'COMPLETED', { endedAgoMs: 0, deleted: true });
  await put(`${live}/wal/000000010000000000000001`);

  // deleted long ago, and a backup that outlived it still rolls forward from its log
  const servesBackup = await newInstance(5 * hour);
  await newBackup(servesBackup, 'COMPLETED', { endedAgoMs: 6 * hour, rollsForward: true });
  await put(`${servesBackup}/wal/000000010000000000000001`);
  // deleted long ago with only deleted or failed backups: its log serves nothing
  const dead = await newInstance(5 * hour);
  const deadFailed = await newBackup(dead, 'FAILED', { endedAgoMs: grace / 2 });
  const deadDeleted = await newBackup(dead, 'COMPLETED', { endedAgoMs: 6 * hour, deleted: true });
  await put(`${dead}/wal/000000010000000000000001`);
  await put(`${dead}/wal/000000010000000000000002`);
  // an upgraded instance archived each version in a place of its own
  await put(`${dead}/wal-16/000000010000000000000001`);
  // deleted a moment ago: a guest may still be shipping its last file
  const recent = await newInstance(grace / 2);
  await put(`${recent}/wal/000000010000000000000001`);

  // not Coffer's to judge: a backup-like name no row knows, another name, an unknown instance's log
  const stranger = `${uid()}.postgresql.zst.enc`;
  await put(stranger);
  await put('operator-notes');
  const unknownInstance = uid();
  await put(`${unknownInstance}/wal/000000010000000000000001`);

  const before = await names();
  const result = await sweepBackupOrphans({ store, storage, logger: silentLogger(), graceMs: grace }, new Date());
  const gone = [lateWriter, deletedLongAgo, deadDeleted, `${dead}/wal/000000010000000000000001`, `${dead}/wal/000000010000000000000002`, `${dead}/wal-16/000000010000000000000001`];
  assert.deepEqual(result.removed.sort(), gone.map((name) => `${container}/${name}`).sort());
  assert.deepEqual(await names(), before.filter((name) => !gone.includes(name)));
  for (const name of [kept, running, justFailed, deletedJustNow, stranger, 'operator-notes']) assert.ok((await names()).includes(name), name);

  // a second pass finds nothing more
  assert.deepEqual((await sweepBackupOrphans({ store, storage, logger: silentLogger(), graceMs: grace }, new Date())).removed, []);
  // an hour later the grace of the recent ones has passed too
  const later = await sweepBackupOrphans({ store, storage, logger: silentLogger(), graceMs: grace }, new Date(Date.now() + hour));
  assert.deepEqual(later.removed.sort(), [justFailed, deletedJustNow, deadFailed, `${recent}/wal/000000010000000000000001`].map((name) => `${container}/${name}`).sort());
});

test('a container the storage cannot list or an object it cannot delete is left for the next pass; the others are swept', async () => {
  const live = await newInstance();
  const unlistable = await newBackup(live, 'FAILED', { endedAgoMs: 2 * hour, into: 'unlistable' });
  const stuck = await newBackup(live, 'FAILED', { endedAgoMs: 2 * hour, into: 'stuck' });
  const swept = await newBackup(live, 'FAILED', { endedAgoMs: 2 * hour, into: 'fine' });
  const flaky: BackupStorage = Object.assign(Object.create(storage) as BackupStorage, {
    list: async (into: string, prefix?: string) => {
      if (into === 'unlistable') throw new CofferError('BackupStorageUnavailable', 'The backup storage did not answer.');
      return storage.list(into, prefix);
    },
    delete: async (into: string, name: string) => {
      if (into === 'stuck') throw new CofferError('BackupStorageUnavailable', 'The backup storage did not answer.');
      return storage.delete(into, name);
    },
  });
  const result = await sweepBackupOrphans({ store, storage: flaky, logger: silentLogger(), graceMs: grace }, new Date());
  assert.ok(result.removed.includes(`fine/${swept}`));
  assert.ok(!result.removed.some((name) => name.startsWith('unlistable/') || name.startsWith('stuck/')));
  assert.deepEqual(await names('unlistable'), [unlistable]);
  assert.deepEqual(await names('stuck'), [stuck]);
  assert.deepEqual(await names('fine'), []);
});

test('a taskmanager with backup storage sweeps on its own', async () => {
  const live = await newInstance();
  await newBackup(live, 'FAILED', { endedAgoMs: 2 * hour, into: 'by-taskmanager' });
  assert.equal((await names('by-taskmanager')).length, 1);
  const taskmanager = await startTaskmanager({
    store,
    transport: new InProcessTransport(),
    logger: silentLogger(),
    sweepIntervalMs: 50,
    backups: { storage, masterKey: MasterKey.generate() },
    backupOrphanSweep: { intervalMs: 50, graceMs: grace },
  });
  try {
    await eventually('the sweep of a failed backup’s object', () => names('by-taskmanager'), (left) => left.length === 0);
  } finally {
    await taskmanager.stop();
  }
});
