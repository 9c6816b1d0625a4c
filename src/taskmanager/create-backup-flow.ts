import { createBackupTaskPayload, type RequestContext } from '../bus/index.js';
import { CofferError, newUuid } from '../common/index.js';
import type { BackupRow } from '../db/index.js';
import { callGuest, messageOf } from './action-flow-support.js';
import { storageOf, type BackupFlowDeps } from './backup-flow-deps.js';
import { runSteps } from './flow-steps.js';
import type { TaskHandle } from './task-runner.js';
import { createRpcClient, guestContract, guestTopic } from '../bus/index.js';

/**
 * create_backup (reference 2.9, 6): the API recorded the backup (NEW) and this task for its
 * instance. The flow asks the instance's guest to take it, then waits for the conductor to record
 * its end. The guest reports as it goes; a backup whose guest falls silent (its host died, the
 * agent restarted) is failed once `backupStallMs` passes without a report, and a failed backup's
 * object is removed, so nothing that looks complete is left behind. The instance keeps serving
 * and keeps its task status: it shows BACKUP because a backup of it runs.
 */
export function createBackupFlow(deps: BackupFlowDeps) {
  return async (handle: TaskHandle): Promise<void> => {
    const payload = createBackupTaskPayload.parse(handle.task.payload ?? {});
    const instanceId = handle.task.instanceId;
    const log = deps.logger.child({ instanceId, backupId: payload.backupId, taskId: handle.task.id, ...(payload.requestId === undefined ? {} : { requestId: payload.requestId }) });
    const context: RequestContext = { requestId: payload.requestId ?? `req-${newUuid()}`, instanceId };
    const backup = await deps.store.backups.get(payload.backupId);
    if (backup === undefined || !['NEW', 'BUILDING', 'SAVING'].includes(backup.state)) {
      log.info({ state: backup?.state }, 'backup no longer running; nothing to do');
      return;
    }
    try {
      await runSteps(handle, [
        {
          name: 'sent',
          run: async () => {
            const input = {
              target: { backupId: backup.id, container: backup.container, objectName: backup.objectName, wrappedKey: await deps.wrappedProjectKey(backup.tenantId) },
              kind: backup.backupType,
              projectId: backup.tenantId,
              ...(backup.parentId === null ? {} : { parentFacts: await parentFacts(deps, backup) }),
              // from a full backup on, an engine that archives its log ships it beside the backup (point in time)
              ...(backup.backupType === 'full' ? { walArchive: { container: backup.container, prefix: await walPrefixOf(deps, backup) } } : {}),
            };
            await storageOf(deps).ensureContainer(backup.container);
            log.info({ kind: backup.backupType }, 'asking the guest for a backup');
            const guest = createRpcClient(deps.transport, guestContract, guestTopic(instanceId));
            await callGuest(deps, handle, 'createBackup', log, () => guest.createBackup(input, context));
          },
        },
        { name: 'ended', repeatable: true, run: async () => waitForEnd(deps, handle, backup, log) },
      ]);
    } catch (err) {
      if (handle.signal.aborted) throw err;
      log.error({ err }, 'backup failed');
      await failBackup(deps, backup, `Backup failed: ${messageOf(err)}`);
      throw err;
    }
  };
}

/** Where an instance's archived log lives in its backups' container: beside the backup objects, named by the instance. */
/**
 * Where an instance's archived log goes, one place per version: an upgraded instance runs a new
 * cluster, whose log files take the names the old one's had (PostgreSQL's after a logical copy).
 */
export const walArchivePrefix = (instanceId: string, versionName: string): string => `${instanceId}/wal-${versionName}`;

async function walPrefixOf(deps: BackupFlowDeps, backup: BackupRow): Promise<string> {
  const version = backup.datastoreVersionId === null ? undefined : await deps.store.datastores.getVersion(backup.datastoreVersionId);
  if (version === undefined) throw new CofferError('DatastoreVersionNotFound', `Datastore version ${backup.datastoreVersionId} no longer exists.`);
  return walArchivePrefix(backup.instanceId, version.name);
}

async function parentFacts(deps: BackupFlowDeps, backup: BackupRow): Promise<Record<string, string>> {
  const parent = await deps.store.backups.get(backup.parentId!);
  if (parent === undefined || parent.state !== 'COMPLETED' || parent.facts === null) {
    throw new CofferError('Conflict', `The parent backup ${backup.parentId} is no longer completed.`);
  }
  return parent.facts;
}

async function waitForEnd(deps: BackupFlowDeps, handle: TaskHandle, backup: BackupRow, log: BackupFlowDeps['logger']): Promise<void> {
  const deadline = backup.createdAt.getTime() + deps.backupTimeoutMs;
  for (;;) {
    const outcome = await deps.waiter.waitFor(
      [backup.instanceId],
      async () => {
        const row = await deps.store.backups.get(backup.id);
        if (row === undefined) return 'deleted';
        if (row.state === 'COMPLETED' || row.state === 'FAILED') return row.state;
        if (Date.now() - row.updatedAt.getTime() > deps.backupStallMs) return 'stalled';
        return undefined;
      },
      { timeoutMs: Math.max(0, Math.min(deps.backupStallMs, deadline - Date.now())), signal: handle.signal },
    );
    if (outcome === 'COMPLETED') {
      log.info('backup completed');
      return;
    }
    if (outcome === 'FAILED' || outcome === 'deleted') {
      // the guest said why (the conductor recorded it); its object, if any part of it remains, goes
      await removeObject(deps, backup, log);
      return;
    }
    if (outcome === 'stalled') {
      throw new CofferError('GuestTimeout', `the guest stopped reporting on it for ${Math.round(deps.backupStallMs / 1000)} s (its host may have restarted).`);
    }
    if (Date.now() >= deadline) throw new CofferError('GuestTimeout', `it did not end within ${Math.round(deps.backupTimeoutMs / 60_000)} minutes.`);
  }
}

/** FAILED with `reason`, unless the backup ended meanwhile; then its object is removed. */
async function failBackup(deps: BackupFlowDeps, backup: BackupRow, reason: string): Promise<void> {
  const failed = await deps.store.transaction(async (tx) => {
    if (!(await tx.backups.updateIfState(backup.id, ['NEW', 'BUILDING', 'SAVING'], { state: 'FAILED', failReason: reason.slice(0, 1000) }))) return false;
    // as the conductor records a failure its guest reports
    await tx.instanceEvents.record({ instanceId: backup.instanceId, type: 'backup.failed', name: backup.id, message: reason.slice(0, 1000), createdAt: new Date() });
    return true;
  });
  if (failed) await removeObject(deps, backup, deps.logger);
}

async function removeObject(deps: BackupFlowDeps, backup: BackupRow, log: BackupFlowDeps['logger']): Promise<void> {
  try {
    await storageOf(deps).delete(backup.container, backup.objectName);
  } catch (err) {
    // nothing under the name is complete (puts are atomic); this is only tidying up
    log.warn({ err, backupId: backup.id }, 'could not remove what a failed backup stored');
  }
}
