import type {
  ReplicaSourceTaskPayload,
  RequestContext,
  ResizeFlavorTaskPayload,
  ResizeVolumeTaskPayload,
  RestartTaskPayload,
  StartTaskPayload,
  StopTaskPayload,
} from '../../bus/index.js';
import { CofferError, errors, primaryLeaseTimes } from '../../common/index.js';
import { runningBackupStates, type InstancePatch, type InstanceRow, type Repositories } from '../../db/index.js';
import { gateAction, gateWith, notAvailable, validateCanStart, validateCanStop } from './action-gate.js';
import { flavorIdOf } from './create-instance.js';
import type { InstanceAction } from './instance-action-schema.js';
import { taskAction } from './instance-status.js';
import { pendingTask, queueInstanceTask, queueInstanceTasks } from './queue-instance-task.js';
import { enforceQuota } from './quota-enforcement.js';
import type { TroveDeps } from './trove-deps.js';
import { wakeTaskmanager } from './wake-taskmanager.js';

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
      // A primary's replicas grow with it (Trove: RESIZING on each, one resize each), each
      // checked by the gate as well: a replica never holds less than its primary writes.
      const replicas: InstanceRow[] = [];
      for (const replicaId of instance.replicaIds ?? []) {
        const replica = await deps.store.instances.get(replicaId);
        if (replica === undefined || replica.volumeSizeGb >= sizeGb) continue;
        await gate(replica);
        replicas.push(replica);
      }
      const resize = (target: InstanceRow) => ({
        instance: target,
        request: {
          kind: 'resize_volume' as const,
          patch: { taskStatus: 'RESIZING' as const, taskDescription: 'Resizing the volume of the instance.', volumeSizeGb: sizeGb },
          payload: {
            ...payloadBase,
            resumeTask: target.taskStatus === 'RESTART_REQUIRED' ? ('RESTART_REQUIRED' as const) : ('NONE' as const),
            oldSizeGb: target.volumeSizeGb,
            newSizeGb: sizeGb,
          } satisfies ResizeVolumeTaskPayload,
          recheck: async (current: InstanceRow, tx: Repositories) => {
            await gate(current, tx);
            if (current.id === instance.id && sizeGb <= current.volumeSizeGb) {
              throw new CofferError('BadRequest', `The new volume 'size' must be larger than the current volume size of '${current.volumeSizeGb}'.`);
            }
            await enforceQuota(tx, current.tenantId, deps.quotaDefaults, { volumes: sizeGb - current.volumeSizeGb });
          },
        },
      });
      return queueInstanceTasks(deps, [resize(instance), ...replicas.map(resize)], context);
    }

    case 'reset_status':
      return resetStatus(deps, instance);

    case 'promote_to_replica_source':
      return promote(deps, instance, context);

    case 'eject_replica_source':
      return eject(deps, instance, context);

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
 * promote_to_replica_source (reference 2.2, 3.6 "Promote"): on a replica, the action gate on it
 * and on its primary (which is fenced first, so it must answer); PROMOTING on the whole group,
 * in one transaction, each conditional on the task status the gate saw.
 */
async function promote(deps: TroveDeps, instance: InstanceRow, context: RequestContext): Promise<void> {
  const gate = (current: InstanceRow, store: Repositories = deps.store) => gateAction(store, current, deps.heartbeatExpirySeconds);
  await gate(instance);
  const sourceId = instance.replicaOfId;
  if (sourceId == null) throw new CofferError('BadRequest', `Instance ${instance.id} is not a replica.`);
  const task = pendingTask('promote_to_replica_source', instance.id, {}, new Date());
  await deps.store.transaction(async (tx) => {
    const source = await tx.instances.get(sourceId);
    if (source === undefined) throw errors.instanceNotFound(sourceId);
    await gate(source, tx);
    const replicaIds = source.replicaIds ?? [];
    task.payload = { requestId: context.requestId, sourceId, replicaIds } satisfies ReplicaSourceTaskPayload;
    await claimGroup(tx, [instance.id, sourceId, ...replicaIds.filter((id) => id !== instance.id)], {
      taskStatus: 'PROMOTING',
      taskDescription: 'Promoting a replica to replica source.',
      taskStartTime: task.createdAt,
    });
    await tx.tasks.create(task);
  });
  await wakeTaskmanager(deps, task.id, context);
}

/**
 * eject_replica_source (reference 2.2, 3.6 "Eject"): on a primary with replicas that is lost. As
 * Trove, refused (400) while its heartbeat is current; Coffer also refuses while it holds its
 * primary lease (it would still take writes). The primary is fenced with the claim: should it
 * come back, it stays down until it rejoins as a replica.
 */
async function eject(deps: TroveDeps, instance: InstanceRow, context: RequestContext): Promise<void> {
  const replicaIds = instance.replicaIds ?? [];
  if (replicaIds.length === 0) throw new CofferError('BadRequest', `Instance ${instance.id} is not a replica source.`);
  const now = new Date();
  const heartbeat = await deps.store.serviceStatuses.get(instance.id);
  const heartbeatCurrent = heartbeat !== undefined && now.getTime() - heartbeat.updatedAt.getTime() < deps.heartbeatExpirySeconds * 1000;
  const leaseHeld = instance.leaseRenewedAt != null && now.getTime() - instance.leaseRenewedAt.getTime() < primaryLeaseTimes.failoverAfterMs;
  if (heartbeatCurrent || leaseHeld) {
    throw new CofferError('BadRequest', `Replica Source ${instance.id} cannot be ejected as it has a current heartbeat`);
  }
  const task = pendingTask('eject_replica_source', instance.id, { requestId: context.requestId, replicaIds } satisfies ReplicaSourceTaskPayload, now);
  await deps.store.transaction(async (tx) => {
    const current = await tx.instances.get(instance.id);
    if (current === undefined) throw errors.instanceNotFound(instance.id);
    await claimGroup(tx, [instance.id, ...replicaIds], { taskStatus: 'EJECTING', taskDescription: 'Ejecting the replica source.', taskStartTime: now });
    await tx.instances.update(instance.id, { fencedAt: now });
    await tx.tasks.create(task);
  });
  await wakeTaskmanager(deps, task.id, context);
}

/** Sets `patch` on each of `ids` whose task is NONE (or RESTART_REQUIRED); one that is busy refuses the whole action (422). */
async function claimGroup(tx: Repositories, ids: readonly string[], patch: InstancePatch): Promise<void> {
  for (const id of ids) {
    if (!(await tx.instances.updateIfTask(id, ['NONE', 'RESTART_REQUIRED'], patch))) {
      const current = await tx.instances.get(id);
      throw notAvailable(id, 'task', taskAction(current?.taskStatus ?? 'NONE'));
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
