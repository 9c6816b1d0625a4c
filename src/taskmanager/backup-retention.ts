import { newUuid, type Logger } from '../common/index.js';
import { runningBackupStates, type BackupRow, type BackupScheduleRow, type Repositories, type StateStore } from '../db/index.js';

// Retention of a backup schedule: which of the backups it made go. Both limits apply: at most
// retain_count completed backups (the newest), none older than retain_days. Three things are
// never deleted: the schedule's newest completed backup, a backup someone asked for (only those
// with the schedule's id are looked at), and any backup another one that stays is built on (an
// incremental needs its whole chain). A backup being verified (or with an incremental being
// verified) waits until the verification ended. A failed run's backup holds no data; it goes once
// a later run's backup completed. Deleting goes through delete_backup, which takes a backup's
// incrementals first.

const dayMs = 24 * 60 * 60_000;

/** The live backups built directly on `id`, of any kind. */
export type ChildrenOf = (id: string) => Promise<BackupRow[]>;

/**
 * The schedule's backups retention deletes, topmost first: each stands for itself and everything
 * built on it (all of which is deleted too). `own`: the schedule's live backups.
 */
export async function retentionDeletes(schedule: BackupScheduleRow, own: readonly BackupRow[], childrenOf: ChildrenOf, now: Date): Promise<BackupRow[]> {
  const byNewest = [...own].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || b.id.localeCompare(a.id));
  const completed = byNewest.filter((b) => b.state === 'COMPLETED');
  const newest = completed[0];
  if (newest === undefined) return [];
  const doomed = new Map<string, BackupRow>();
  completed.forEach((backup, index) => {
    if (backup === newest) return;
    const beyondCount = schedule.retainCount !== null && index >= schedule.retainCount;
    const tooOld = schedule.retainDays !== null && now.getTime() - backup.createdAt.getTime() > schedule.retainDays * dayMs;
    if (beyondCount || tooOld) doomed.set(backup.id, backup);
  });
  for (const backup of byNewest) {
    if (backup.state === 'FAILED' && backup.createdAt.getTime() < newest.createdAt.getTime()) doomed.set(backup.id, backup);
  }
  // A backup goes only with everything built on it, so one with a child that stays stays too,
  // and then so does its own parent: repeat until nothing changes.
  const children = new Map<string, BackupRow[]>();
  const childrenOfCached = async (id: string) => {
    let found = children.get(id);
    if (found === undefined) children.set(id, (found = await childrenOf(id)));
    return found;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (const backup of [...doomed.values()]) {
      if ((await childrenOfCached(backup.id)).some((child) => !doomed.has(child.id))) {
        doomed.delete(backup.id);
        changed = true;
      }
    }
  }
  return [...doomed.values()].filter((b) => b.parentId === null || !doomed.has(b.parentId));
}

export interface RetentionDeps {
  store: StateStore;
  logger: Logger;
  /** runs a task now (it waits for the next sweep otherwise) */
  runTask(taskId: string): Promise<void>;
}

/**
 * Applies every schedule's retention: a delete_backup task for each backup it deletes, unless one
 * is already under way. Answers the backups whose deletion it asked for.
 */
export async function applyRetention(deps: RetentionDeps, now: Date): Promise<string[]> {
  const { store } = deps;
  const scheduled = await store.backups.listScheduled();
  if (scheduled.length === 0) return [];
  const bySchedule = new Map<string, BackupRow[]>();
  for (const backup of scheduled) {
    const list = bySchedule.get(backup.scheduleId!) ?? [];
    list.push(backup);
    bySchedule.set(backup.scheduleId!, list);
  }
  const asked: string[] = [];
  for (const schedule of await store.backupSchedules.list()) {
    const own = bySchedule.get(schedule.id);
    if (own === undefined) continue;
    const deletes = await retentionDeletes(schedule, own, (id) => store.backups.children(id), now);
    for (const backup of deletes) {
      const log = deps.logger.child({ instanceId: schedule.instanceId, scheduleId: schedule.id, backupId: backup.id });
      const taskId = await queueDelete(store, backup, new Set(own.map((b) => b.id)), now);
      if (taskId === undefined) continue;
      log.info({ created: backup.createdAt.toISOString(), state: backup.state }, 'backup schedule retention deletes a backup');
      asked.push(backup.id);
      await deps.runTask(taskId);
    }
  }
  return asked;
}

/**
 * The delete task of `backup` and what is built on it, checked again inside the transaction: a
 * running backup, one being verified, one not the schedule's (made since the retention was worked
 * out) or a delete already under way leaves it for the next pass.
 */
async function queueDelete(store: StateStore, backup: BackupRow, own: ReadonlySet<string>, now: Date): Promise<string | undefined> {
  return store.transaction(async (tx: Repositories) => {
    for (let level = [backup]; level.length > 0; ) {
      const next: BackupRow[] = [];
      for (const b of level) {
        if (!own.has(b.id) || runningBackupStates.includes(b.state)) return undefined;
        // DELETE /backups/{id} refuses it (422) too: a verification reads the backup and its parents
        if ((await tx.backupVerifications.get(b.id))?.status === 'RUNNING') return undefined;
        next.push(...(await tx.backups.children(b.id)));
      }
      level = next;
    }
    if ((await tx.tasks.activeForInstance(backup.id)) !== undefined) return undefined;
    const id = newUuid();
    // a backup deletion's subject is the backup, as DELETE /backups/{id} queues it
    await tx.tasks.create({ id, instanceId: backup.id, kind: 'delete_backup', step: 'start', state: 'pending', owner: null, leaseExpiresAt: null, payload: {}, attempts: 0, createdAt: now, updatedAt: now });
    return id;
  });
}
