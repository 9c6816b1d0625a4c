import type { RequestContext, VerifyBackupTaskPayload } from '../../bus/index.js';
import { CofferError, type ScheduledVerificationRequest } from '../../common/index.js';
import { backupChain, type BackupRow } from '../../db/index.js';
import { versionInactive } from './datastore-lookup.js';
import { pendingTask } from './queue-instance-task.js';
import type { TroveDeps } from './trove-deps.js';
import { wakeTaskmanager } from './wake-taskmanager.js';

// POST /backups/{id}/action {"verify": {}} (Coffer's): the checks a restore of the backup would
// meet, said now rather than as a FAILED verification later: a completed backup (409, as an
// instance create from it), whose chain is whole (409), of a datastore with backups (501) whose
// version runs somewhere (422), on a deployment with backup storage (501); one verification at a
// time (422). The verification is recorded RUNNING with its verify_backup task, whose subject is
// the backup, in one transaction under the project's lock, so two racing requests start one. A
// verification left RUNNING by a task that ended without recording it is started anew, and the
// new task deletes the scratch instance the old one left. A schedule with verify starts its
// backups' verifications here too (startScheduledVerification).

/** What starting a verification needs of the API's dependencies. */
export type VerificationAdmissionDeps = Pick<TroveDeps, 'store' | 'transport' | 'logger' | 'backups'>;

export async function verifyBackup(deps: VerificationAdmissionDeps, backup: BackupRow, context: RequestContext): Promise<void> {
  const { store } = deps;
  if (backup.state !== 'COMPLETED' && backup.state !== 'RESTORED') {
    throw new CofferError('Conflict', `Backup ${backup.id} cannot be verified because it is not completed. Actual state: ${backup.state}.`);
  }
  if (deps.backups.storage === undefined) throw new CofferError('NotImplemented', 'Backups are not configured on this deployment: it has no backup storage.');
  const version = backup.datastoreVersionId === null ? undefined : await store.datastores.getVersion(backup.datastoreVersionId);
  if (version === undefined || !version.capabilities.backup) {
    throw new CofferError('NotImplemented', `Verifying backups is not supported for datastore ${version?.manager ?? 'of this backup'}.`);
  }
  if (!version.active) throw versionInactive(version);
  await backupChain(store, backup);
  const now = new Date();
  const taskId = await store.transaction(async (tx) => {
    await tx.quotas.lockTenant(backup.tenantId, now);
    if ((await tx.backups.get(backup.id)) === undefined) throw new CofferError('NotFound', `Backup ${backup.id} cannot be found.`);
    const previous = await tx.backupVerifications.get(backup.id);
    const orphaned = previous?.status === 'RUNNING' && (await tx.tasks.activeForInstance(backup.id))?.kind !== 'verify_backup';
    const payload: VerifyBackupTaskPayload = {
      requestId: context.requestId,
      ...(orphaned && previous.scratchInstanceId !== null ? { leftoverScratchInstanceId: previous.scratchInstanceId } : {}),
    };
    const row = { backupId: backup.id, tenantId: backup.tenantId, message: 'waiting for a taskmanager', startedAt: now };
    if (!(await tx.backupVerifications.begin(row, { replaceRunning: orphaned }))) {
      throw new CofferError('UnprocessableEntity', `Backup ${backup.id} is already being verified: wait until its verification has PASSED or FAILED.`);
    }
    const task = pendingTask('verify_backup', backup.id, payload, now);
    await tx.tasks.create(task);
    return task.id;
  });
  await wakeTaskmanager(deps, taskId, context);
}

export async function startScheduledVerification(deps: VerificationAdmissionDeps, request: ScheduledVerificationRequest, context: RequestContext): Promise<void> {
  const backup = await deps.store.backups.get(request.backupId, { tenantId: request.tenantId });
  if (backup === undefined) throw new CofferError('NotFound', `Backup ${request.backupId} cannot be found.`);
  await verifyBackup(deps, backup, context);
}
