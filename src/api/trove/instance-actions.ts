import type {
  RequestContext,
  ResizeFlavorTaskPayload,
  ResizeVolumeTaskPayload,
  RestartTaskPayload,
  StartTaskPayload,
  StopTaskPayload,
} from '../../bus/index.js';
import { CofferError } from '../../common/index.js';
import { runningBackupStates, type InstanceRow, type Repositories } from '../../db/index.js';
import { gateAction, gateWith, validateCanStart, validateCanStop } from './action-gate.js';
import { flavorIdOf } from './create-instance.js';
import type { InstanceAction } from './instance-action-schema.js';
import { queueInstanceTask } from './queue-instance-task.js';
import { enforceQuota } from './quota-enforcement.js';
import type { TroveDeps } from './trove-deps.js';

// POST /instances/{id}/action (reference 2.2): each action's checks in Trove's order, then the
// task status and a durable task for the taskmanager; reset_status is answered here at once.

/** The policy rule of each action; reset_status with force_delete is the owner's to use. */
export function actionPolicy(action: InstanceAction): string {
  switch (action.kind) {
    case 'reset_status':
      return action.forceDelete ? 'instance:force_delete' : 'instance:reset_status';
    default:
      return `instance:${action.kind}`;
  }
}

export async function performInstanceAction(
  deps: TroveDeps,
  instance: InstanceRow,
  action: InstanceAction,
  context: RequestContext,
): Promise<void> {
  const gate = (current: InstanceRow, store: Repositories = deps.store) => gateAction(store, current, deps.heartbeatExpirySeconds);
  const payloadBase = { requestId: context.requestId };
  // a restart a configuration group asked for stays owed after a resize (see resumed() in the taskmanager)
  const resumeTask = instance.taskStatus === 'RESTART_REQUIRED' ? ('RESTART_REQUIRED' as const) : ('NONE' as const);

  switch (action.kind) {
    case 'restart':
      await gate(instance);
      return queueInstanceTask(
        deps,
        instance,
        {
          kind: 'restart',
          patch: { taskStatus: 'REBOOTING', taskDescription: 'Restarting the datastore.' },
          serviceStatus: 'RESTARTING',
          payload: payloadBase satisfies RestartTaskPayload,
          recheck: gate,
        },
        context,
      );

    case 'resize_flavor': {
      await gate(instance);
      const flavorId = flavorIdOf(action.flavorRef);
      if (flavorId === instance.flavorId) {
        throw new CofferError('BadRequest', `The new flavor id must be different than the current flavor id of '${instance.flavorId}'.`);
      }
      const flavor = await deps.store.flavors.get(flavorId);
      if (flavor === undefined) throw new CofferError('FlavorNotFound', `Resource ${flavorId} cannot be found.`);
      await checkReplicaMemory(deps, instance, flavor.ramMb);
      // Quotas count RAM from the instance's flavor, which changes only once the engine runs with
      // the new one: the delta is checked here, as Trove reserves it at the request.
      const oldRamMb = (await deps.store.flavors.get(instance.flavorId))?.ramMb ?? 0;
      return queueInstanceTask(
        deps,
        instance,
        {
          kind: 'resize_flavor',
          patch: { taskStatus: 'RESIZING', taskDescription: 'Resizing the instance to a new flavor.' },
          payload: { ...payloadBase, resumeTask, oldFlavorId: instance.flavorId, newFlavorId: flavor.id } satisfies ResizeFlavorTaskPayload,
          recheck: async (current, tx) => {
            await gate(current, tx);
            await enforceQuota(tx, current.tenantId, deps.quotaDefaults, { ram: flavor.ramMb - oldRamMb });
          },
        },
        context,
      );
    }

    case 'resize_volume': {
      const sizeGb = action.sizeGb;
      if (sizeGb > deps.maxVolumeSizeGb) {
        throw new CofferError('OverLimit', `Volume 'size' cannot exceed maximum of ${deps.maxVolumeSizeGb} GB, ${sizeGb} cannot be accepted.`);
      }
      await gate(instance);
      if (sizeGb <= instance.volumeSizeGb) {
        throw new CofferError('BadRequest', `The new volume 'size' must be larger than the current volume size of '${instance.volumeSizeGb}'.`);
      }
      // The new size is written with the task, in the transaction, so that quotas (counted from
      // the instance rows) count it from now on; a resize that fails gives the old size back.
      return queueInstanceTask(
        deps,
        instance,
        {
          kind: 'resize_volume',
          patch: { taskStatus: 'RESIZING', taskDescription: 'Resizing the volume of the instance.', volumeSizeGb: sizeGb },
          payload: { ...payloadBase, resumeTask, oldSizeGb: instance.volumeSizeGb, newSizeGb: sizeGb } satisfies ResizeVolumeTaskPayload,
          recheck: async (current, tx) => {
            await gate(current, tx);
            if (sizeGb <= current.volumeSizeGb) {
              throw new CofferError('BadRequest', `The new volume 'size' must be larger than the current volume size of '${current.volumeSizeGb}'.`);
            }
            await enforceQuota(tx, current.tenantId, deps.quotaDefaults, { volumes: sizeGb - current.volumeSizeGb });
          },
        },
        context,
      );
    }

    case 'reset_status':
      return resetStatus(deps, instance);

    case 'promote_to_replica_source':
      await gate(instance);
      if (instance.replicaOfId == null) throw new CofferError('BadRequest', `Instance ${instance.id} is not a replica.`);
      throw new CofferError('NotImplemented', 'Promoting a replica to replica source is not supported by Coffer yet: detach it (PUT replica_of: null).');

    case 'eject_replica_source':
      if (((await deps.store.instances.replicasOf([instance.id])).get(instance.id)?.length ?? 0) === 0) {
        throw new CofferError('BadRequest', `Instance ${instance.id} is not a replica source.`);
      }
      throw new CofferError('NotImplemented', 'Ejecting a replica source is not supported by Coffer yet.');

    // Coffer's stop and start: the instance keeps its directory, data, address and quota (its
    // row stays as it is), only its engine stops; STOPPED keeps every other action off it.
    case 'stop': {
      const check = (current: InstanceRow, store: Repositories = deps.store) => gateWith(store, current, deps.heartbeatExpirySeconds, validateCanStop);
      await check(instance);
      return queueInstanceTask(
        deps,
        instance,
        {
          kind: 'stop',
          patch: { taskStatus: 'STOPPING', taskDescription: 'Stopping the instance.' },
          payload: { ...payloadBase, resumeTask } satisfies StopTaskPayload,
          recheck: check,
        },
        context,
      );
    }

    case 'start': {
      const check = (current: InstanceRow, store: Repositories = deps.store) => gateWith(store, current, deps.heartbeatExpirySeconds, validateCanStart);
      await check(instance);
      return queueInstanceTask(
        deps,
        instance,
        {
          kind: 'start',
          patch: { taskStatus: 'STARTING', taskDescription: 'Starting the instance.' },
          payload: payloadBase satisfies StartTaskPayload,
          recheck: check,
        },
        context,
      );
    }
  }
}

/**
 * reset_status (reference 3.6): no task, and a service status of UNKNOWN (operating_status
 * ERROR) until the next heartbeat says what the engine is doing. It rescues an instance stuck in
 * a failed or hung task; a flow still running for it finds the instance no longer its own and
 * leaves it alone.
 */
async function resetStatus(deps: TroveDeps, instance: InstanceRow): Promise<void> {
  const now = new Date();
  await deps.store.transaction(async (tx) => {
    await tx.instances.update(instance.id, { taskStatus: 'NONE', taskDescription: 'No tasks for the instance.', taskStartTime: null });
    await tx.serviceStatuses.set({ instanceId: instance.id, status: 'UNKNOWN', updatedAt: now });
    await tx.instanceEvents.record({ instanceId: instance.id, type: 'status', name: 'UNKNOWN', message: 'Status reset; the next heartbeat tells the engine’s.', createdAt: now });
    // as Trove: a reset ends the instance's running backups (their flows remove what they stored)
    for (const backup of await tx.backups.running(instance.id)) {
      await tx.backups.updateIfState(backup.id, runningBackupStates, { state: 'FAILED', failReason: 'An administrator reset the instance status while the backup ran.' });
    }
  });
}

/**
 * A PostgreSQL hot standby refuses to run with fewer connections (and other memory-derived
 * settings) than its primary, and Coffer derives them from the flavor's memory: a replica may not
 * have less memory than its source, so a replica grows first and a source shrinks last.
 */
async function checkReplicaMemory(deps: TroveDeps, instance: InstanceRow, ramMb: number): Promise<void> {
  const ramOf = async (id: string) => {
    const row = await deps.store.instances.get(id);
    return row === undefined ? undefined : (await deps.store.flavors.get(row.flavorId))?.ramMb;
  };
  if (instance.replicaOfId != null) {
    const sourceRam = await ramOf(instance.replicaOfId);
    if (sourceRam !== undefined && ramMb < sourceRam) {
      throw new CofferError('BadRequest', `Instance ${instance.id} is a replica of ${instance.replicaOfId}, which has ${sourceRam} MB of RAM: a replica needs at least as much as its source.`);
    }
  }
  for (const replicaId of instance.replicaIds ?? []) {
    const replicaRam = await ramOf(replicaId);
    if (replicaRam !== undefined && ramMb > replicaRam) {
      throw new CofferError('BadRequest', `Instance ${instance.id} has replica ${replicaId} with ${replicaRam} MB of RAM: resize its replicas to at least ${ramMb} MB first.`);
    }
  }
}
