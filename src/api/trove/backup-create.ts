import type { CreateBackupTaskPayload, RequestContext } from '../../bus/index.js';
import { CofferError, errors, isCofferError, newUuid } from '../../common/index.js';
import type { BackupRow, InstanceRow, NewBackup } from '../../db/index.js';
import type { AuthContext } from '../auth-context.js';
import { enforce } from '../policy.js';
import { gateAction } from './action-gate.js';
import { containerName, type CreateBackupBody } from './backup-schemas.js';
import { enforceQuota } from './quota-enforcement.js';
import type { TroveDeps } from './trove-deps.js';
import { pendingTask } from './queue-instance-task.js';
import { wakeTaskmanager } from './wake-taskmanager.js';

// POST /backups (reference 2.9) in Trove's order: the instance, the action gate (422, also while
// another backup runs), the datastore's support (501), the parent, the container, the storage,
// the quota (413). The backup is written NEW with its create_backup task in one transaction.

const notSupported = (what: string) => new CofferError('NotImplemented', what);

export async function createBackup(deps: TroveDeps, auth: AuthContext, body: CreateBackupBody, context: RequestContext): Promise<BackupRow> {
  const input = body.backup;
  const { store } = deps;
  enforce(auth, 'backup:create', auth.projectId);
  if (input.restore_from !== undefined) throw notSupported('Importing a backup from another storage (restore_from) is not supported by Coffer yet.');
  if (input.instance === undefined) throw new CofferError('BadRequest', 'instance is missing.');
  const instance = await store.instances.get(input.instance, auth.isAdmin ? {} : { tenantId: auth.projectId });
  if (instance === undefined) throw errors.instanceNotFound(input.instance);
  await gateAction(store, instance, deps.heartbeatExpirySeconds);
  const version = await store.datastores.getVersion(instance.datastoreVersionId);
  if (version === undefined || !version.capabilities.backup) {
    throw notSupported(`Backups are not supported for datastore ${version?.manager ?? 'of this instance'}.`);
  }
  const parent = await parentOf(deps, auth, instance, input);
  if (parent !== undefined && !version.capabilities.incrementalBackup) {
    throw notSupported(`Incremental backups are not supported for datastore ${version.manager} yet: take a full backup (without incremental or parent_id).`);
  }
  const container = await containerFor(deps, instance, input.swift_container);
  await checkStorage(deps, container);

  const now = new Date();
  const backup: NewBackup = {
    id: newUuid(),
    tenantId: instance.tenantId,
    name: input.name,
    description: input.description ?? null,
    instanceId: instance.id,
    parentId: parent?.id ?? null,
    datastoreVersionId: version.id,
    backupType: parent === undefined ? 'full' : 'incremental',
    state: 'NEW',
    container,
    objectName: '',
    createdAt: now,
    updatedAt: now,
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
  return { ...backup, sizeBytes: null, dataBytes: null, sha256: null, facts: null, failReason: null, deleted: false };
}

/** `parent_id`, or with `incremental` the instance's newest completed backup (none: a full one). */
async function parentOf(
  deps: TroveDeps,
  auth: AuthContext,
  instance: InstanceRow,
  input: CreateBackupBody['backup'],
): Promise<BackupRow | undefined> {
  if (input.parent_id !== undefined) {
    const parent = await deps.store.backups.get(input.parent_id, auth.isAdmin ? {} : { tenantId: auth.projectId });
    if (parent === undefined) throw new CofferError('NotFound', `Backup ${input.parent_id} cannot be found.`);
    if (parent.instanceId !== instance.id) {
      throw new CofferError('BadRequest', `Backup ${parent.id} is a backup of another instance: an incremental backup follows a backup of its own instance.`);
    }
    if (parent.state !== 'COMPLETED') throw new CofferError('BadRequest', `Backup ${parent.id} is not completed (it is ${parent.state}): it cannot be a parent.`);
    return parent;
  }
  if (input.incremental === 1 || input.incremental === true) return deps.store.backups.latestCompleted(instance.id);
  return undefined;
}

/** The request's container, else the instance's strategy, else the project's, else the configured default. */
async function containerFor(deps: TroveDeps, instance: InstanceRow, requested: string | undefined): Promise<string> {
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
async function checkStorage(deps: TroveDeps, container: string): Promise<void> {
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
