import type { BackupStorage } from '../../backup/index.js';
import { troveTimestamp } from '../../common/index.js';
import type { BackupRow, BackupScheduleRow, BackupStrategyRow, BackupVerificationRow, DatastoreRow, DatastoreVersionRow, Repositories } from '../../db/index.js';
import { runningBackupStates } from '../../db/index.js';
import { toGb } from './instance-views.js';

// Trove's backup view (reference 2.9): `size` in GB (the stored object), `locationRef` once the
// object is stored, the datastore while its version exists. Coffer adds `fail_reason` to a failed
// backup, since a backup that failed without saying why is what users of other tools complain of,
// and `verification`: how the backup's latest verification went (null: never verified).

export interface BackupViewData {
  backup: BackupRow;
  datastore: DatastoreRow | undefined;
  version: DatastoreVersionRow | undefined;
  verification: BackupVerificationRow | undefined;
}

/** Coffer's: the latest verification; `message` is its current step while RUNNING, what it found after. */
export function verificationView(row: BackupVerificationRow | undefined) {
  if (row === undefined) return null;
  return {
    status: row.status,
    started: troveTimestamp(row.startedAt),
    finished: row.finishedAt === null ? null : troveTimestamp(row.finishedAt),
    message: row.message,
    checks: row.checks ?? {},
  };
}

export function backupView(data: BackupViewData, storage: BackupStorage | undefined) {
  const { backup, datastore, version, verification } = data;
  const stored = backup.state === 'COMPLETED' || backup.state === 'RESTORED';
  return {
    id: backup.id,
    name: backup.name,
    description: backup.description,
    locationRef: stored && storage !== undefined ? storage.locationOf(backup.container, backup.objectName) : null,
    // an imported backup (restore_from) has no instance, as in Trove
    instance_id: backup.instanceId === '' ? null : backup.instanceId,
    created: troveTimestamp(backup.createdAt),
    updated: troveTimestamp(backup.updatedAt),
    size: stored && backup.sizeBytes !== null ? toGb(backup.sizeBytes) : null,
    status: backup.state,
    parent_id: backup.parentId,
    project_id: backup.tenantId,
    ...(datastore !== undefined && version !== undefined ? { datastore: { type: datastore.name, version: version.name, version_id: version.id } } : {}),
    ...(backup.failReason !== null && (backup.state === 'FAILED' || backup.state === 'DELETE_FAILED') ? { fail_reason: backup.failReason } : {}),
    // Coffer's, while it runs: the bytes stored so far (compressed), as its guest last reported them
    ...(runningBackupStates.includes(backup.state) && backup.sizeBytes !== null ? { stored_bytes: backup.sizeBytes } : {}),
    verification: verificationView(verification),
  };
}

/** Loads the datastore of each backup, once per version for a page. */
export class BackupViewLoader {
  private readonly versions = new Map<string, Promise<{ version: DatastoreVersionRow | undefined; datastore: DatastoreRow | undefined }>>();

  constructor(private readonly store: Repositories) {}

  async load(backup: BackupRow): Promise<BackupViewData> {
    const verification = await this.store.backupVerifications.get(backup.id);
    if (backup.datastoreVersionId === null) return { backup, datastore: undefined, version: undefined, verification };
    let found = this.versions.get(backup.datastoreVersionId);
    if (found === undefined) {
      found = this.store.datastores.getVersion(backup.datastoreVersionId).then(async (version) => ({
        version,
        datastore: version === undefined ? undefined : await this.store.datastores.getDatastore(version.datastoreId),
      }));
      this.versions.set(backup.datastoreVersionId, found);
    }
    return { backup, ...(await found), verification };
  }
}

export function backupStrategyView(row: BackupStrategyRow) {
  return { project_id: row.tenantId, instance_id: row.instanceId, backend: row.backend, swift_container: row.container };
}

/** Coffer's backup schedule: times in Trove's naive UTC, as every other view's. */
export function backupScheduleView(row: BackupScheduleRow) {
  return {
    id: row.id,
    instance_id: row.instanceId,
    project_id: row.tenantId,
    name: row.name,
    pattern: row.pattern,
    incremental: row.incremental,
    retain_count: row.retainCount,
    retain_days: row.retainDays,
    verify: row.verify,
    last_verified_backup_id: row.lastVerifiedBackupId,
    next_run: troveTimestamp(row.nextRunAt),
    last_run: row.lastRunAt === null ? null : troveTimestamp(row.lastRunAt),
    last_backup_id: row.lastBackupId,
    last_error: row.lastError,
    created: troveTimestamp(row.createdAt),
    updated: troveTimestamp(row.updatedAt),
  };
}
