import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BackupScheduleSettings, NewBackup, StateStore } from '../../src/db/index.js';
import { at, uid } from './state-store-fixtures.js';

// Backup schedules and the backups they made, part of the state-store suite: every engine must
// store the times to the millisecond, since a run is claimed by comparing the time it read.

function settings(overrides: Partial<BackupScheduleSettings> = {}): BackupScheduleSettings {
  return {
    tenantId: `tenant-${uid()}`,
    instanceId: uid(),
    name: 'nightly',
    pattern: '30 2 * * *',
    incremental: false,
    retainCount: 7,
    retainDays: null,
    nextRunAt: at.dstSwitch,
    verify: false,
    ...overrides,
  };
}

function backup(overrides: Partial<NewBackup> = {}): NewBackup {
  const id = uid();
  return {
    id,
    tenantId: `tenant-${uid()}`,
    name: 'b',
    description: null,
    instanceId: uid(),
    parentId: null,
    datastoreVersionId: null,
    backupType: 'full',
    state: 'COMPLETED',
    container: 'database_backups',
    objectName: `${id}.postgresql.zst.enc`,
    createdAt: at.leapDay,
    updatedAt: at.leapDay,
    ...overrides,
  };
}

export function backupScheduleStoreTests(store: () => StateStore): void {
  describe('backup schedules', () => {
    it('set creates the schedule; set again changes its settings and keeps its id, creation and last run', async () => {
      const s = settings();
      const created = await store().backupSchedules.set(s, at.oneMs);
      assert.deepEqual(created, {
        ...s,
        id: created.id,
        lastRunAt: null,
        lastBackupId: null,
        lastError: null,
        lastVerifiedBackupId: null,
        createdAt: at.oneMs,
        updatedAt: at.oneMs,
      });
      assert.deepEqual(await store().backupSchedules.get(s.instanceId), created);
      assert.deepEqual(await store().backupSchedules.get(s.instanceId, { tenantId: s.tenantId }), created);
      assert.equal(await store().backupSchedules.get(s.instanceId, { tenantId: 'another' }), undefined);

      assert.ok(await store().backupSchedules.claimRun(created.id, s.nextRunAt, at.past2038, at.leapDay));
      assert.ok(await store().backupSchedules.recordRun(created.id, at.leapDay, { backupId: 'b-1' }));
      const changed = await store().backupSchedules.set(
        { ...s, name: null, pattern: '0 * * * *', incremental: true, retainCount: null, retainDays: 3650, nextRunAt: at.oneMs, verify: true },
        at.dstSwitch,
      );
      assert.deepEqual(changed, {
        ...s,
        id: created.id,
        name: null,
        pattern: '0 * * * *',
        incremental: true,
        retainCount: null,
        retainDays: 3650,
        nextRunAt: at.oneMs,
        verify: true,
        lastRunAt: at.leapDay,
        lastBackupId: 'b-1',
        lastError: null,
        lastVerifiedBackupId: null,
        createdAt: at.oneMs,
        updatedAt: at.dstSwitch,
      });
      assert.ok((await store().backupSchedules.list()).some((row) => row.id === created.id));
    });

    it('delete removes it, once', async () => {
      const s = settings();
      await store().backupSchedules.set(s, at.oneMs);
      assert.equal(await store().backupSchedules.delete(s.instanceId), true);
      assert.equal(await store().backupSchedules.get(s.instanceId), undefined);
      assert.equal(await store().backupSchedules.delete(s.instanceId), false);
    });

    it('listDue: due at or before now, the longest due first, up to the limit', async () => {
      // long before any other test's schedules, so the first page is this test's
      const now = new Date('1971-06-01T00:00:00.000Z');
      const older = await store().backupSchedules.set(settings({ nextRunAt: new Date('1971-01-01T00:00:00.001Z') }), now);
      const onTime = await store().backupSchedules.set(settings({ nextRunAt: now }), now);
      const later = await store().backupSchedules.set(settings({ nextRunAt: new Date(now.getTime() + 1) }), now);
      assert.deepEqual((await store().backupSchedules.listDue(now, 2)).map((r) => r.id), [older.id, onTime.id]);
      assert.deepEqual((await store().backupSchedules.listDue(now, 1)).map((r) => r.id), [older.id]);
      assert.ok(!(await store().backupSchedules.listDue(now, 1000)).some((r) => r.id === later.id));
    });

    it('of ten concurrent claims of one run exactly one wins; the run moves on and a stale claim fails', async () => {
      const s = settings({ nextRunAt: at.dstSwitch });
      const row = await store().backupSchedules.set(s, at.oneMs);
      const next = new Date(at.dstSwitch.getTime() + 86_400_000);
      const now = new Date('2024-03-31T01:30:01.250Z');
      const results = await Promise.all(Array.from({ length: 10 }, () => store().backupSchedules.claimRun(row.id, s.nextRunAt, next, now)));
      assert.equal(results.filter(Boolean).length, 1);
      const claimed = await store().backupSchedules.get(s.instanceId);
      assert.deepEqual(claimed?.nextRunAt, next);
      assert.deepEqual(claimed?.lastRunAt, now);
      assert.equal(await store().backupSchedules.claimRun(row.id, s.nextRunAt, next, now), false, 'the old due time is gone');
      assert.equal(await store().backupSchedules.claimRun(row.id, new Date(next.getTime() + 1), next, now), false, 'a millisecond off is another time');
    });

    it('recordRun: a backup clears the last error, a skip keeps the last backup; a later claim wins', async () => {
      const s = settings();
      const row = await store().backupSchedules.set(s, at.oneMs);
      const first = new Date('2030-01-01T02:30:00.123Z');
      assert.ok(await store().backupSchedules.claimRun(row.id, s.nextRunAt, at.past2038, first));
      assert.equal(await store().backupSchedules.recordRun(row.id, first, { error: 'over quota' }), true);
      assert.ok(await store().backupSchedules.recordRun(row.id, first, { backupId: 'b-1' }));
      let got = await store().backupSchedules.get(s.instanceId);
      assert.deepEqual([got?.lastBackupId, got?.lastError], ['b-1', null]);
      const second = new Date('2030-01-02T02:30:00.456Z');
      assert.ok(await store().backupSchedules.claimRun(row.id, at.past2038, new Date('2040-01-01T00:00:00Z'), second));
      assert.ok(await store().backupSchedules.recordRun(row.id, second, { error: 'Instance is busy' }));
      got = await store().backupSchedules.get(s.instanceId);
      assert.deepEqual([got?.lastBackupId, got?.lastError], ['b-1', 'Instance is busy']);
      assert.equal(await store().backupSchedules.recordRun(row.id, first, { backupId: 'late' }), false, 'the first run is no longer the last');
      assert.equal((await store().backupSchedules.get(s.instanceId))?.lastBackupId, 'b-1');
    });

    it('claimVerification: of ten concurrent claims of the last backup one wins, once; its error is recorded; a later backup moves it on', async () => {
      const s = settings({ verify: true });
      const row = await store().backupSchedules.set(s, at.oneMs);
      assert.equal(await store().backupSchedules.claimVerification(row.id, 'b-1'), false, 'not the last backup (there is none yet)');
      const first = new Date('2030-01-01T02:30:00.123Z');
      assert.ok(await store().backupSchedules.claimRun(row.id, s.nextRunAt, at.past2038, first));
      assert.ok(await store().backupSchedules.recordRun(row.id, first, { backupId: 'b-1' }));
      const results = await Promise.all(Array.from({ length: 10 }, () => store().backupSchedules.claimVerification(row.id, 'b-1')));
      assert.equal(results.filter(Boolean).length, 1);
      assert.equal(await store().backupSchedules.claimVerification(row.id, 'b-1'), false, 'taken on already');
      assert.ok(await store().backupSchedules.recordVerificationError(row.id, 'b-1', 'already being verified'));
      let got = await store().backupSchedules.get(s.instanceId);
      assert.deepEqual([got?.verify, got?.lastVerifiedBackupId, got?.lastError], [true, 'b-1', 'already being verified']);

      const second = new Date('2030-01-02T02:30:00.456Z');
      assert.ok(await store().backupSchedules.claimRun(row.id, at.past2038, new Date('2040-01-01T00:00:00Z'), second));
      assert.ok(await store().backupSchedules.recordRun(row.id, second, { backupId: 'b-2' }));
      assert.equal(await store().backupSchedules.recordVerificationError(row.id, 'b-1', 'late'), false, 'b-1 is no longer the last backup');
      assert.equal(await store().backupSchedules.claimVerification(row.id, 'b-1'), false, 'a stale claim of an older backup fails');
      assert.ok(await store().backupSchedules.claimVerification(row.id, 'b-2'));
      got = await store().backupSchedules.get(s.instanceId);
      assert.deepEqual([got?.lastBackupId, got?.lastVerifiedBackupId, got?.lastError], ['b-2', 'b-2', null]);
    });

    it('a backup keeps the schedule that made it; listScheduled lists the live ones, newest first', async () => {
      const scheduleId = uid();
      const manual = backup();
      const older = backup({ scheduleId, createdAt: at.oneMs });
      const newer = backup({ scheduleId, createdAt: at.leapDay, state: 'FAILED' });
      const gone = backup({ scheduleId });
      const other = backup({ scheduleId: uid() });
      for (const b of [manual, older, newer, gone, other]) await store().backups.create(b);
      await store().backups.markDeleted(gone.id, at.past2038);
      assert.equal((await store().backups.get(manual.id))?.scheduleId, null);
      assert.equal((await store().backups.get(older.id))?.scheduleId, scheduleId);
      assert.deepEqual((await store().backups.listScheduled({ scheduleId })).map((b) => b.id), [newer.id, older.id]);
      const all = (await store().backups.listScheduled()).map((b) => b.id);
      assert.ok(all.includes(older.id) && all.includes(other.id));
      assert.ok(!all.includes(manual.id) && !all.includes(gone.id));
    });
  });
}
