import type { CreateBackupTaskPayload, RequestContext } from '../../bus/index.js';
import { CofferError, errors, isCofferError, newUuid, type ScheduledBackupRequest } from '../../common/index.js';
import type { BackupRow, InstanceRow, NewBackup } from '../../db/index.js';
import type { AuthContext } from '../auth-context.js';
import { enforce } from '../policy.js';
import { gateAction } from './action-gate.js';
import { importBackup } from './backup-import.js';
import { containerName, type CreateBackupBody } from './backup-schemas.js';
import { enforceQuota } from './quota-enforcement.js';
import type { TroveDeps } from './trove-deps.js';
import { pendingTask } from './queue-instance-task.js';
import { wakeTaskmanager } from './wake-taskmanager.js';

// POST /backups (reference 2.9) in Trove's order: the instance, the action gate (422, also while
// another backup runs), the datastore's support (501), the parent, the container, the storage,
// the quota (413). The backup is written NEW with its create_backup task in one transaction.
// Backup schedules start theirs through the same admission (startScheduledBackup), so a
// scheduled backup passes every check a requested one does.

const notSupported = (what: string) => new CofferError('NotImplemented', what);

/** What admitting a backup needs of the API's dependencies. */
export type BackupAdmissionDeps = Pick<TroveDeps, 'store' | 'transport' | 'logger' | 'heartbeatExpirySeconds' | 'quotaDefaults' | 'backups'>;

interface BackupAdmission {
  name: string;
  description: string | null;
  /** `parent_id`, looked up within `scope` */
  parentId?: string;
  /** `incremental` without a parent: since the instance's newest completed backup */
  incremental: boolean;
  swiftContainer?: string;
  /** the schedule that asks; absent for a request */
  scheduleId?: string;
  /** whose backups a parent may be: the caller's project, or any for an admin */
  scope: { tenantId?: string };
}

export async function createBackup(deps: TroveDeps, auth: AuthContext, body: CreateBackupBody, context: RequestContext): Promise<BackupRow> {
  const input = body.backup;
  enforce(auth, 'backup:create', auth.projectId);
  if (input.restore_from !== undefined) return importBackup(deps, auth, { ...input, restore_from: input.restore_from }, context);
  if (input.instance === undefined) throw new CofferError('BadRequest', 'instance is missing.');
  const scope = auth.isAdmin ? {} : { tenantId: auth.projectId };
  const instance = await deps.store.instances.get(input.instance, scope);
  if (instance === undefined) throw errors.instanceNotFound(input.instance);
  return admitBackup(
    deps,
    instance,
    {
      name: input.name,
      description: input.description ?? null,
      ...(input.parent_id === undefined ? {} : { parentId: input.parent_id }),
      incremental: input.incremental === 1 || input.incremental === true,
      ...(input.swift_container === undefined ? {} : { swiftContainer: input.swift_container }),
      scope,
    },
    context,
  );
}

/** Starts a schedule's backup with every check of POST /backups; throws the error the request would get. */
export async function startScheduledBackup(deps: BackupAdmissionDeps, request: ScheduledBackupRequest, context: RequestContext): Promise<BackupRow> {
  const instance = await deps.store.instances.get(request.instanceId, { tenantId: request.tenantId });
  if (instance === undefined) throw errors.instanceNotFound(request.instanceId);
  return admitBackup(
    deps,
    instance,
    { name: request.name, description: null, incremental: request.incremental, scheduleId: request.scheduleId, scope: { tenantId: request.tenantId } },
    { ...context, instanceId: instance.id },
  );
}

/**
 * The full backup an upgrade takes first (where backups are configured and the datastore has
 * them): admitted as a request would be, so a quota or storage problem refuses the upgrade.
 */
export async function startUpgradeBackup(deps: BackupAdmissionDeps, instance: InstanceRow, toVersion: string, context: RequestContext): Promise<BackupRow> {
  return admitBackup(
    deps,
    instance,
    { name: `Before the upgrade to ${toVersion}`, description: 'Taken by Coffer before upgrading the instance.', incremental: false, scope: { tenantId: instance.tenantId } },
    { ...context, instanceId: instance.id },
  );
}

async function admitBackup(deps: BackupAdmissionDeps, instance: InstanceRow, input: BackupAdmission, context: RequestContext): Promise<BackupRow> {
  const { store } = deps;
  await gateAction(store, instance, deps.heartbeatExpirySeconds);
  const version = await store.datastores.getVersion(instance.datastoreVersionId);
  if (version === undefined || !version.capabilities.backup) {
    throw notSupported(`Backups are not supported for datastore ${version?.manager ?? 'of this instance'}.`);
  }
  const parent = await parentOf(deps, instance, input);
  if (parent !== undefined && !version.capabilities.incrementalBackup) {
    throw notSupported(`Incremental backups are not supported for datastore ${version.manager} yet: take a full backup (without incremental or parent_id).`);
  }
  const container = await containerFor(deps, instance, input.swiftContainer);
  await checkStorage(deps, container);

  const now = new Date();
  const backup: NewBackup = {
    id: newUuid(),
    tenantId: instance.tenantId,
    name: input.name,
    description: input.description,
    instanceId: instance.id,
    parentId: parent?.id ?? null,
    datastoreVersionId: version.id,
    backupType: parent === undefined ? 'full' : 'incremental',
    state: 'NEW',
    container,
    objectName: '',
    createdAt: now,
    updatedAt: now,
    scheduleId: input.scheduleId ?? null,
  };
  backup.objectName = `${backup.id}.${version.manager}.zst.enc`;
  const task = pendingTask('create_backup', instance.id, { requestId: context.requestId, backupId: backup.id } satisfies CreateBackupTaskPayload, now);
  await store.transaction(async (tx) => {
    await enforceQuota(tx, instance.tenantId, deps.quotaDefaults, { backups: 1 });
    // of two racing requests, one backup runs: the other sees it here, under the project's lock
    if ((await tx.backups.running(instance.id)).length > 0) {
      throw new CofferError('UnprocessableEntity', `Instance ${instance.id} is not currently available for an action to be performed (instance status was BACKUP).`);
    }
    await tx.backups.create(backup);
    await tx.tasks.create(task);
  });
  await wakeTaskmanager(deps, task.id, { ...context, instanceId: instance.id });
  return { ...backup, scheduleId: backup.scheduleId ?? null, sizeBytes: null, dataBytes: null, sha256: null, facts: null, failReason: null, deleted: false };
}

/** `parent_id`, or with `incremental` the instance's newest completed backup (none: a full one). */
async function parentOf(deps: BackupAdmissionDeps, instance: InstanceRow, input: BackupAdmission): Promise<BackupRow | undefined> {
  if (input.parentId !== undefined) {
    const parent = await deps.store.backups.get(input.parentId, input.scope);
    if (parent === undefined) throw new CofferError('NotFound', `Backup ${input.parentId} cannot be found.`);
    if (parent.instanceId !== instance.id) {
      throw new CofferError('BadRequest', `Backup ${parent.id} is a backup of another instance: an incremental backup follows a backup of its own instance.`);
    }
    if (parent.state !== 'COMPLETED') throw new CofferError('BadRequest', `Backup ${parent.id} is not completed (it is ${parent.state}): it cannot be a parent.`);
    if (parent.datastoreVersionId !== instance.datastoreVersionId) {
      throw new CofferError('BadRequest', `Backup ${parent.id} was taken before the instance's upgrade: an incremental backup follows a backup of the version the instance runs. Take a full backup.`);
    }
    return parent;
  }
  if (!input.incremental) return undefined;
  // a backup of the version before an upgrade holds another cluster: the first after it is full
  const latest = await deps.store.backups.latestCompleted(instance.id);
  return latest?.datastoreVersionId === instance.datastoreVersionId ? latest : undefined;
}

/** The request's container, else the instance's strategy, else the project's, else the configured default. */
async function containerFor(deps: BackupAdmissionDeps, instance: InstanceRow, requested: string | undefined): Promise<string> {
  if (requested !== undefined) {
    const checked = containerName.safeParse(requested);
    if (!checked.success) throw new CofferError('BadRequest', `Invalid swift_container name ${JSON.stringify(requested)}: it ${checked.error.issues[0]?.message ?? 'is not valid'}.`);
    return requested;
  }
  const strategies = await deps.store.backupStrategies.list({ tenantId: instance.tenantId });
  return (
    strategies.find((s) => s.instanceId === instance.id)?.container ??
    strategies.find((s) => s.instanceId === '')?.container ??
    deps.backups.defaultContainer
  );
}

/** The storage must take the backup before it is accepted: a refusal now is a clear error, not a FAILED backup later. */
async function checkStorage(deps: BackupAdmissionDeps, container: string): Promise<void> {
  const storage = deps.backups.storage;
  if (storage === undefined) throw notSupported('Backups are not configured on this deployment: it has no backup storage.');
  try {
    await storage.ensureContainer(container);
  } catch (err) {
    // the storage's own errors say what to check; the operator's credentials are not the caller's
    if (isCofferError(err) && err.code === 'Unauthorized') {
      throw new CofferError('BackupStorageUnavailable', `The backup storage refused Coffer's credentials for container ${container}: ask the operator to check them.`, { cause: err });
    }
    throw err;
  }
}
