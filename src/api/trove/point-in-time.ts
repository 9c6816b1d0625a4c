import { CofferError, errors } from '../../common/index.js';
import type { BackupRow, DatastoreVersionRow, InstanceRow, Repositories } from '../../db/index.js';

// Coffer's point in time (docs/trove-api.md, "Point-in-time restore"): a full backup taken while
// its instance's log was archived (its guest records `wal-prefix` and `completed-at` with it) can
// be rolled forward to any moment from its completion up to how far the archive reaches (the
// instance's walArchivedUntil, reported by its guest). The recoverable window of an instance runs
// from its oldest such backup to that point.

/** The most backups of one instance looked through for a base; an instance keeps far fewer. */
const maxBackupsScanned = 10_000;

export interface RecoverableWindow {
  earliest: Date;
  latest: Date;
}

/** When a base backup's data is consistent: a moment before this is not in it. */
function completedAt(backup: BackupRow): Date | undefined {
  const at = backup.facts?.['completed-at'];
  return at === undefined ? undefined : new Date(at);
}

/** The instance's completed full backups that its archived log can roll forward, oldest first. */
async function pointInTimeBases(store: Repositories, instanceId: string): Promise<{ backup: BackupRow; completed: Date }[]> {
  return basesAmong(await store.backups.list({ instanceId, limit: maxBackupsScanned, offset: 0 }));
}

/** Those of `backups` that an archived log can roll forward, oldest first. */
function basesAmong(backups: readonly BackupRow[]): { backup: BackupRow; completed: Date }[] {
  return backups
    .filter((b) => b.state === 'COMPLETED' && b.backupType === 'full' && b.facts?.['wal-prefix'] !== undefined)
    .flatMap((backup) => {
      const completed = completedAt(backup);
      return completed === undefined || Number.isNaN(completed.getTime()) ? [] : [{ backup, completed }];
    })
    .sort((a, b) => a.completed.getTime() - b.completed.getTime());
}

/** The instance's recoverable window, when its log is archived and a backup can be rolled forward. */
export async function recoverableWindow(store: Repositories, instance: InstanceRow): Promise<RecoverableWindow | undefined> {
  const latest = instance.walArchivedUntil;
  if (latest === null) return undefined;
  const [first] = await pointInTimeBases(store, instance.id);
  if (first === undefined || first.completed > latest) return undefined;
  return { earliest: first.completed, latest };
}

/**
 * The recoverable windows of those of `instances` that have one, by instance id: the base
 * backups of all of them read in one statement, so that a page of views costs the same
 * whatever number of its instances archive their log.
 */
export async function recoverableWindows(store: Repositories, instances: readonly InstanceRow[]): Promise<Map<string, RecoverableWindow>> {
  const archived = instances.filter((i) => i.walArchivedUntil !== null);
  const windows = new Map<string, RecoverableWindow>();
  if (archived.length === 0) return windows;
  const byInstance = new Map<string, BackupRow[]>();
  for (const backup of await store.backups.completedFullOf(archived.map((i) => i.id))) {
    byInstance.set(backup.instanceId, [...(byInstance.get(backup.instanceId) ?? []), backup]);
  }
  for (const instance of archived) {
    const [first] = basesAmong(byInstance.get(instance.id) ?? []);
    const latest = instance.walArchivedUntil!;
    if (first !== undefined && first.completed <= latest) windows.set(instance.id, { earliest: first.completed, latest });
  }
  return windows;
}

const windowText = (window: RecoverableWindow | undefined) =>
  window === undefined ? 'it has no recoverable window yet (take a full backup first)' : `its recoverable window is ${window.earliest.toISOString()} to ${window.latest.toISOString()}`;

/** `restore_time` as a moment: ISO 8601, UTC when it names no offset. */
export function parseRestoreTime(text: string): Date {
  const iso = /^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d{1,6})?)?(Z|[+-]\d\d:?\d\d)?$/.exec(text.trim());
  const time = iso === null ? Number.NaN : Date.parse(iso[3] === undefined ? `${text.trim().replace(' ', 'T')}Z` : text.trim().replace(' ', 'T'));
  if (Number.isNaN(time)) {
    throw new CofferError('BadRequest', `restore_time ${JSON.stringify(text)} is not a time: give an ISO 8601 time such as 2026-12-03T18:00:00Z.`);
  }
  return new Date(time);
}

/**
 * The backup a restore to `time` starts from: `backupRef` when given (it must be one its
 * instance's log rolls forward, completed before `time`), else the newest such backup of
 * `instance_id` completed before it. The moment must lie inside the source instance's window.
 */
export async function pointInTimeBase(
  store: Repositories,
  scope: { tenantId?: string },
  version: DatastoreVersionRow,
  point: { backup?: BackupRow; instanceId?: string; time: Date },
): Promise<BackupRow> {
  if (!version.capabilities.pointInTimeRecovery) {
    throw new CofferError('NotImplemented', `Point-in-time restore (restorePoint.restore_time) is not supported for datastore ${version.manager} yet.`);
  }
  if (point.backup?.instanceId === '') {
    throw new CofferError('Conflict', `Backup ${point.backup.id} was imported (restore_from): no instance's archived log follows it, so it restores only as it is, without restore_time.`);
  }
  const sourceId = point.backup?.instanceId ?? point.instanceId;
  if (sourceId === undefined) throw new CofferError('BadRequest', 'restorePoint needs backupRef or instance_id with restore_time.');
  const source = await store.instances.get(sourceId, { ...scope, includeDeleted: true });
  if (source === undefined) throw errors.instanceNotFound(sourceId);
  if (point.backup !== undefined && point.instanceId !== undefined && point.instanceId !== source.id) {
    throw new CofferError('BadRequest', `Backup ${point.backup.id} is not a backup of instance ${point.instanceId}.`);
  }
  const bases = await pointInTimeBases(store, source.id);
  const window = await recoverableWindow(store, source);
  const time = point.time.toISOString();
  if (window === undefined || point.time > window.latest || point.time < window.earliest) {
    throw new CofferError('BadRequest', `restore_time ${time} is outside what instance ${source.id} can be restored to: ${windowText(window)}.`);
  }
  if (point.backup !== undefined) {
    const base = bases.find((b) => b.backup.id === point.backup!.id);
    if (base === undefined) {
      throw new CofferError(
        'BadRequest',
        `Backup ${point.backup.id} cannot be rolled forward to a moment: it is not a full backup taken while its instance's log was archived. Restore it without restore_time, or give instance_id instead.`,
      );
    }
    if (point.time < base.completed) {
      throw new CofferError('BadRequest', `Backup ${point.backup.id} completed at ${base.completed.toISOString()}: it restores to ${time} or later only.`);
    }
    return base.backup;
  }
  const base = bases.filter((b) => b.completed <= point.time).at(-1);
  if (base === undefined) throw new CofferError('BadRequest', `No backup of instance ${source.id} completed before ${time}: ${windowText(window)}.`);
  return base.backup;
}
