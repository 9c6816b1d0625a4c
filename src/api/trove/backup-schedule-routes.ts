import type { FastifyInstance } from 'fastify';
import { CofferError, checkCronPattern, nextCronRun } from '../../common/index.js';
import type { InstanceRow } from '../../db/index.js';
import { parseTroveBody } from '../parse-body.js';
import { notAvailable } from './action-gate.js';
import { backupScheduleSchema, type BackupScheduleBody } from './backup-schemas.js';
import { backupScheduleView } from './backup-views.js';
import { loadTenantInstance } from './tenant-instance.js';
import type { TenantParams, TroveDeps } from './trove-deps.js';

// An instance's backup schedule (Coffer's extension, in Trove's style): PUT sets or changes it
// (with verify, each backup it makes is verified once completed), GET shows it with its next and
// last run, DELETE removes it and keeps the backups it made. The
// taskmanager runs it (src/taskmanager/backup-scheduler.ts). The instance is the caller's
// project's (404 otherwise, as every instance route answers); the schedule goes with it.

type InstanceParams = { Params: TenantParams & { instanceId: string } };

const noSchedule = (instanceId: string) => new CofferError('NotFound', `Instance ${instanceId} has no backup schedule.`);

/** What POST /backups would refuse for any backup of this instance, said now rather than at every run. */
async function checkBackupsPossible(deps: TroveDeps, instance: InstanceRow, input: BackupScheduleBody['backup_schedule']): Promise<void> {
  if (instance.taskStatus === 'DELETING') throw notAvailable(instance.id, 'task', 'DELETING');
  const version = await deps.store.datastores.getVersion(instance.datastoreVersionId);
  if (version === undefined || !version.capabilities.backup) {
    throw new CofferError('NotImplemented', `Backups are not supported for datastore ${version?.manager ?? 'of this instance'}.`);
  }
  if ((input.incremental === true || input.incremental === 1) && !version.capabilities.incrementalBackup) {
    throw new CofferError('NotImplemented', `Incremental backups are not supported for datastore ${version.manager} yet: schedule full backups (without incremental).`);
  }
  if (deps.backups.storage === undefined) {
    throw new CofferError('NotImplemented', 'Backups are not configured on this deployment: it has no backup storage.');
  }
}

export async function backupScheduleRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  const { store } = deps;

  app.put<InstanceParams>('/instances/:instanceId/backup_schedule', async (request) => {
    const instance = await loadTenantInstance(store, request, 'backup_schedule:update');
    const input = parseTroveBody(backupScheduleSchema, request.body).backup_schedule;
    checkCronPattern(input.pattern);
    await checkBackupsPossible(deps, instance, input);
    const now = new Date();
    const row = await store.backupSchedules.set(
      {
        tenantId: instance.tenantId,
        instanceId: instance.id,
        name: input.name ?? null,
        pattern: input.pattern.trim().split(/\s+/).join(' '),
        incremental: input.incremental === true || input.incremental === 1,
        retainCount: input.retain_count ?? null,
        retainDays: input.retain_days ?? null,
        nextRunAt: nextCronRun(input.pattern, now),
        verify: input.verify ?? false,
      },
      now,
    );
    return { backup_schedule: backupScheduleView(row) };
  });

  app.get<InstanceParams>('/instances/:instanceId/backup_schedule', async (request) => {
    const instance = await loadTenantInstance(store, request, 'backup_schedule:show');
    const row = await store.backupSchedules.get(instance.id);
    if (row === undefined) throw noSchedule(instance.id);
    return { backup_schedule: backupScheduleView(row) };
  });

  app.delete<InstanceParams>('/instances/:instanceId/backup_schedule', async (request, reply) => {
    const instance = await loadTenantInstance(store, request, 'backup_schedule:delete');
    if (!(await store.backupSchedules.delete(instance.id))) throw noSchedule(instance.id);
    reply.code(202).type('application/json').send();
  });
}
