import { deleteBackupTaskPayload } from '../bus/index.js';
import type { BackupRow } from '../db/index.js';
import { messageOf } from './action-flow-support.js';
import { isFailedImport, storageOf, type BackupFlowDeps } from './backup-flow-deps.js';
import type { TaskHandle } from './task-runner.js';
import { pruneWalArchive } from './wal-archive-retention.js';

/**
 * delete_backup (reference 2.9): the task's subject is the backup. Its incrementals go first
 * (each needs it), then its object, then its row. A storage that fails leaves the backup
 * DELETE_FAILED with the reason, and a DELETE asked again tries again; a missing object is
 * already deleted.
 */
export function deleteBackupFlow(deps: BackupFlowDeps) {
  return async (handle: TaskHandle): Promise<void> => {
    const payload = deleteBackupTaskPayload.parse(handle.task.payload ?? {});
    const log = deps.logger.child({ backupId: handle.task.instanceId, taskId: handle.task.id, ...(payload.requestId === undefined ? {} : { requestId: payload.requestId }) });
    const backup = await deps.store.backups.get(handle.task.instanceId);
    if (backup === undefined) {
      log.info('backup already deleted');
      return;
    }
    await deleteWithChildren(deps, backup, log);
  };
}

async function deleteWithChildren(deps: BackupFlowDeps, backup: BackupRow, log: BackupFlowDeps['logger']): Promise<void> {
  for (const child of await deps.store.backups.children(backup.id)) await deleteWithChildren(deps, child, log);
  try {
    // an import that failed never took the object on: it stays as it was before the import
    if (!isFailedImport(backup)) await storageOf(deps).delete(backup.container, backup.objectName);
  } catch (err) {
    log.error({ err }, 'could not delete the backup object');
    await deps.store.backups.update(backup.id, { state: 'DELETE_FAILED', failReason: `Delete failed: ${messageOf(err)}`.slice(0, 1000) });
    throw err;
  }
  await deps.store.backups.markDeleted(backup.id, new Date());
  log.info('backup deleted');
  // an imported backup has no instance, and no archived log of one
  if (backup.instanceId !== '') await pruneWalArchive(deps, backup, log);
}
