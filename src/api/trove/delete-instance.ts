import type { DeleteInstanceTaskPayload, RequestContext } from '../../bus/index.js';
import { CofferError } from '../../common/index.js';
import { runningBackupStates, type InstanceRow, type Repositories } from '../../db/index.js';
import { instanceStatus } from './instance-status.js';
import type { TroveDeps } from './trove-deps.js';
import { pendingTask } from './queue-instance-task.js';
import { wakeTaskmanager } from './wake-taskmanager.js';

/**
 * DELETE /instances/{id} (reference 2.2): refused (422) while the instance builds; otherwise the
 * task becomes DELETING, the configuration group is detached from the record (as Trove) and a
 * durable delete_instance task is queued. Deleting twice re-wakes the
 * pending delete instead of queueing another.
 */
export async function deleteInstance(deps: TroveDeps, instance: InstanceRow, context: RequestContext): Promise<void> {
  const service = await deps.store.serviceStatuses.get(instance.id);
  const status = instanceStatus(instance.taskStatus, service?.status);
  if (status === 'BUILD') {
    throw new CofferError('UnprocessableEntity', `Instance ${instance.id} is not ready. (Status is ${status}).`);
  }
  // as Trove: a source's replicas are detached (or deleted) first; checked again with the write
  const refuseSource = async (store: Repositories) => {
    if (((await store.instances.replicasOf([instance.id])).get(instance.id)?.length ?? 0) > 0) {
      throw new CofferError('ReplicaSourceDeleteForbidden', 'Detach replicas before deleting replica source.');
    }
  };
  await refuseSource(deps.store);
  const now = new Date();
  const taskId = await deps.store.transaction(async (tx) => {
    await refuseSource(tx);
    const active = await tx.tasks.activeForInstance(instance.id);
    // as Trove: a backup of a deleted instance cannot finish (its flow removes what it stored)
    for (const backup of await tx.backups.running(instance.id)) {
      await tx.backups.updateIfState(backup.id, runningBackupStates, { state: 'FAILED', failReason: 'The instance was deleted while the backup ran.' });
    }
    await tx.instances.update(instance.id, {
      taskStatus: 'DELETING',
      taskDescription: 'Deleting the instance.',
      taskStartTime: now,
      // as Trove: a group may be deleted once its instances are being deleted
      configurationId: null,
    });
    // no more backups of an instance that is going; those it has stay, as Trove keeps them
    await tx.backupSchedules.delete(instance.id);
    if (active?.kind === 'delete_instance') return active.id;
    const task = pendingTask('delete_instance', instance.id, { requestId: context.requestId } satisfies DeleteInstanceTaskPayload, now);
    await tx.tasks.create(task);
    return task.id;
  });
  await wakeTaskmanager(deps, taskId, context);
}
