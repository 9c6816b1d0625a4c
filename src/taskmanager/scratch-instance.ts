import {
  createRpcClient,
  taskmanagerContract,
  taskmanagerTopic,
  type CreateInstanceTaskPayload,
  type DeleteInstanceTaskPayload,
  type RequestContext,
} from '../bus/index.js';
import { CofferError, newUuid } from '../common/index.js';
import type { BackupRow, FlavorRow, InstanceAccess, Repositories, TaskKind, TaskRow } from '../db/index.js';
import type { ActionFlowDeps } from './action-flow-support.js';

// A backup verification's scratch instance: an instance of the backup's project made by Coffer
// for itself and marked internal, so the project's lists, shows (404) and quotas leave it out.
// It is made and removed by the very create_instance and delete_instance tasks a tenant's
// instance goes through (the create restoring from the backup, as `restorePoint` does), so a
// restore verified is a restore as users run it. Its prepare names no database and no user, and
// where the engine enforces client ranges (PostgreSQL, MariaDB, MySQL) it admits clients from
// 0.0.0.0/32 only, an address no connection comes from: the accounts the backup brings (root is
// disabled on every restore) log in from nowhere, and only the guest's own login over the
// instance's socket works. Redis backups bring no users. Its address is never shown to the
// project, and it has the network wall every instance has.

const gib = 1024 ** 3;
/** the one client range a scratch instance admits: no TCP connection comes from 0.0.0.0 */
export const noClients: InstanceAccess = { allowedCidrs: ['0.0.0.0/32'] };

function task(kind: TaskKind, instanceId: string, payload: unknown, now: Date): TaskRow {
  return { id: newUuid(), instanceId, kind, step: 'start', state: 'pending', owner: null, leaseExpiresAt: null, payload, attempts: 0, createdAt: now, updatedAt: now };
}

/** The source's flavor while it exists (its memory settings suit the data), else the smallest. */
async function flavorFor(store: Repositories, sourceFlavorId: string | undefined): Promise<FlavorRow> {
  const own = sourceFlavorId === undefined ? undefined : await store.flavors.get(sourceFlavorId);
  const flavor = own ?? (await store.flavors.list())[0];
  if (flavor === undefined) throw new CofferError('FlavorNotFound', 'No flavor exists to give the scratch instance of a backup verification.');
  return flavor;
}

/**
 * Writes the scratch instance, its service status and its create_instance task (restoring
 * `backup`) in one transaction with the verification's record of it, and wakes a taskmanager
 * for it. Returns the instance's id; a verification that already has one gets it back.
 */
export async function createScratchInstance(deps: Pick<ActionFlowDeps, 'store' | 'transport' | 'logger'>, backup: BackupRow, context: RequestContext): Promise<string> {
  const { store } = deps;
  if (backup.datastoreVersionId === null) throw new CofferError('Conflict', `Backup ${backup.id} has no datastore version to restore it into.`);
  const source = await store.instances.get(backup.instanceId, { includeDeleted: true });
  const flavor = await flavorFor(store, source?.flavorId);
  const version = await store.datastores.getVersion(backup.datastoreVersionId);
  // an engine without client ranges refuses any (Redis: its backups hold no users)
  const access = version?.capabilities.accessRules === true ? noClients : null;
  const now = new Date();
  const id = newUuid();
  const payload: CreateInstanceTaskPayload = { databases: [], users: [], access, requestId: context.requestId, restoreBackupId: backup.id };
  const create = task('create_instance', id, payload, now);
  const made = await store.transaction(async (tx) => {
    const verification = await tx.backupVerifications.get(backup.id);
    // a resumed flow finds the instance it made before it could record the step
    if (verification?.scratchInstanceId != null) return verification.scratchInstanceId;
    if (verification?.status !== 'RUNNING') throw new CofferError('Conflict', `The verification of backup ${backup.id} no longer runs.`);
    await tx.instances.create({
      id,
      name: `verify-${backup.id.slice(0, 8)}`,
      tenantId: backup.tenantId,
      flavorId: flavor.id,
      // the source's volume holds the data; without the source, room for what the backup holds
      volumeSizeGb: source?.volumeSizeGb ?? Math.max(1, Math.ceil((backup.dataBytes ?? 0) / gib)),
      datastoreVersionId: backup.datastoreVersionId!,
      taskStatus: 'BUILDING',
      taskDescription: 'Building the initial instance.',
      taskStartTime: now,
      access,
      configurationId: null,
      createdAt: now,
      updatedAt: now,
      internal: true,
    });
    await tx.serviceStatuses.set({ instanceId: id, status: 'NEW', updatedAt: now });
    await tx.tasks.create(create);
    await tx.backupVerifications.update(backup.id, { scratchInstanceId: id });
    return id;
  });
  if (made === id) await wake(deps, create.id, { ...context, instanceId: id });
  return made;
}

/**
 * Queues the scratch instance's delete_instance task, as a DELETE of an instance does (the
 * instance shows DELETING), unless one is queued already or the instance is gone. A create
 * still running stops at its next step: it builds only while the instance is BUILDING.
 */
export async function deleteScratchInstance(deps: Pick<ActionFlowDeps, 'store' | 'transport' | 'logger'>, instanceId: string, context: RequestContext): Promise<void> {
  const now = new Date();
  const taskId = await deps.store.transaction(async (tx) => {
    const instance = await tx.instances.get(instanceId);
    if (instance === undefined) return undefined;
    const active = await tx.tasks.activeForInstance(instanceId);
    await tx.instances.update(instanceId, { taskStatus: 'DELETING', taskDescription: 'Deleting the instance.', taskStartTime: now });
    if (active?.kind === 'delete_instance') return active.id;
    const remove = task('delete_instance', instanceId, { requestId: context.requestId } satisfies DeleteInstanceTaskPayload, now);
    await tx.tasks.create(remove);
    return remove.id;
  });
  if (taskId !== undefined) await wake(deps, taskId, { ...context, instanceId });
}

/** The task row is what counts; a lost wake-up only waits for the next sweep. */
async function wake(deps: Pick<ActionFlowDeps, 'transport' | 'logger'>, taskId: string, context: RequestContext): Promise<void> {
  try {
    await createRpcClient(deps.transport, taskmanagerContract, taskmanagerTopic).runTask({ taskId }, context);
  } catch (err) {
    deps.logger.warn({ err, taskId, instanceId: context.instanceId }, 'taskmanager cast failed; the task waits for the next sweep');
  }
}
