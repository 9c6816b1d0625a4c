import type { CreateInstanceTaskPayload, RequestContext } from '../../bus/index.js';
import { CofferError } from '../../common/index.js';
import {
  backupChain,
  type BackupRow,
  type DatastoreRow,
  type DatastoreVersionRow,
  type InstanceAccess,
} from '../../db/index.js';
import type { AuthContext } from '../auth-context.js';
import { checkPasswordPolicy } from '../password-policy.js';
import { enforce } from '../policy.js';
import { defaultVersionNotFound, findDatastore, findVersionOf, versionInactive, versionNotFound } from './datastore-lookup.js';
import { configurationNotFound, groupForCreate } from './configuration-apply.js';
import { createReplicas } from './create-replica.js';
import { validateDatabases, validateUsers } from './database-user-rules.js';
import type { CreateInstanceBody } from './instance-create-schema.js';
import { enforceQuota } from './quota-enforcement.js';
import type { InstanceViewData } from './instance-views.js';
import { parseRestoreTime, pointInTimeBase } from './point-in-time.js';
import type { TroveDeps } from './trove-deps.js';
import { localVolumeType } from './volume-types.js';
import { wakeTaskmanager } from './wake-taskmanager.js';
import { buildingInstanceRows } from './building-instance.js';

// POST /instances, in Trove's validation order (reference 2.2): policy, unsupported features,
// datastore and version, databases and users, flavor, volume. Nothing is written until every
// check has passed; then the instance, its service status and its durable task row are written
// in one transaction and the taskmanager is woken with a cast.


type InstanceInput = CreateInstanceBody['instance'];

function notSupportedYet(what: string): CofferError {
  return new CofferError('NotImplemented', `${what} is not supported by Coffer yet.`);
}

function rejectUnsupported(input: InstanceInput): void {
  if (input.replica_of === undefined && input.replica_count !== undefined && input.replica_count > 1) {
    throw new CofferError('BadRequest', 'replica_count can only be set when creating replicas.');
  }
  if (input.modules !== undefined && input.modules.length > 0) throw notSupportedYet('Applying modules');
}

/**
 * restorePoint (reference 2.2 step 8): a backup the caller sees (404), restorable with its whole
 * chain (409), of the same datastore (400) and version (a physical backup runs only on the
 * version that took it: 400), that fits the volume asked for (403).
 */
async function restorableBackup(
  deps: TroveDeps,
  auth: AuthContext,
  backupId: string,
  datastore: DatastoreRow,
  version: DatastoreVersionRow,
  sizeGb: number,
): Promise<BackupRow> {
  const backup = await deps.store.backups.get(backupId, auth.isAdmin ? {} : { tenantId: auth.projectId });
  if (backup === undefined) throw new CofferError('NotFound', `Backup ${backupId} cannot be found.`);
  if (backup.state !== 'COMPLETED' && backup.state !== 'RESTORED') {
    throw new CofferError('Conflict', `Unable to create instance because backup ${backup.id} is not completed. Actual state: ${backup.state}.`);
  }
  await backupChain(deps.store, backup);
  const source = backup.datastoreVersionId === null ? undefined : await deps.store.datastores.getVersion(backup.datastoreVersionId);
  if (source === undefined || source.datastoreId !== datastore.id) {
    throw new CofferError(
      'BadRequest',
      `The datastore from which the backup was taken, ${source?.manager ?? 'unknown'}, does not match the destination datastore of ${datastore.name}.`,
    );
  }
  if (source.id !== version.id && source.name !== version.name) {
    throw new CofferError('BadRequest', `Backup ${backup.id} was taken from ${datastore.name} ${source.name}; restore it into version ${source.name}, not ${version.name}.`);
  }
  const needGb = (backup.dataBytes ?? 0) / 1024 ** 3;
  if (needGb > sizeGb) {
    throw new CofferError(
      'BackupTooLarge',
      `Backup is too large for given flavor or volume. Backup size: ${Math.ceil(needGb * 100) / 100} GBs. Available size: ${sizeGb} GBs.`,
    );
  }
  return backup;
}

/**
 * Trove's restorePoint `{backupRef}`, or Coffer's point in time: `{backupRef, restore_time}` or
 * `{instance_id, restore_time}` (point-in-time.ts), whose base backup then goes through Trove's
 * checks as a backupRef would.
 */
async function restorePointOf(
  deps: TroveDeps,
  auth: AuthContext,
  point: NonNullable<InstanceInput['restorePoint']>,
  datastore: DatastoreRow,
  version: DatastoreVersionRow,
  sizeGb: number,
): Promise<{ backup: BackupRow; time?: Date }> {
  if (point.restore_time === undefined) {
    if (point.backupRef === undefined) throw new CofferError('BadRequest', 'restorePoint.instance_id restores to a moment: give restore_time too.');
    return { backup: await restorableBackup(deps, auth, point.backupRef, datastore, version, sizeGb) };
  }
  const time = parseRestoreTime(point.restore_time);
  const scope = auth.isAdmin ? {} : { tenantId: auth.projectId };
  const named = point.backupRef === undefined ? undefined : await restorableBackup(deps, auth, point.backupRef, datastore, version, sizeGb);
  const base = await pointInTimeBase(deps.store, scope, version, {
    ...(named === undefined ? {} : { backup: named }),
    ...(point.instance_id === undefined ? {} : { instanceId: point.instance_id }),
    time,
  });
  return { backup: named ?? (await restorableBackup(deps, auth, base.id, datastore, version, sizeGb)), time };
}

/** Trove's get_datastore_version for a request's `datastore` (instance and configuration-group create). */
export async function resolveVersion(
  deps: TroveDeps,
  input: { datastore?: { type?: string | undefined; version?: string | undefined; version_number?: string | undefined } | undefined },
): Promise<{ datastore: DatastoreRow; version: DatastoreVersionRow }> {
  const { store } = deps;
  const type = input.datastore?.type;
  if (type === undefined) throw new CofferError('BadRequest', 'Please specify datastore. No default datastore is defined.');
  const datastore = await findDatastore(store, type);
  const requested = input.datastore?.version;
  const versionNumber = input.datastore?.version_number;
  let version: DatastoreVersionRow | undefined;
  if (requested !== undefined) {
    version = await findVersionOf(store, datastore, requested);
    if (version === undefined || (versionNumber !== undefined && version.version !== versionNumber)) {
      throw versionNotFound(requested);
    }
  } else if (versionNumber !== undefined) {
    const matches = (await store.datastores.listVersions(datastore.id)).filter((v) => v.version === versionNumber);
    if (matches.length > 1) {
      throw new CofferError('BadRequest', `Multiple matches found for '${versionNumber}', use an UUID to be more specific.`);
    }
    version = matches[0];
    if (version === undefined) throw versionNotFound(versionNumber);
  } else {
    version = datastore.defaultVersionId === null ? undefined : await store.datastores.getVersion(datastore.defaultVersionId);
    if (version === undefined) throw await defaultVersionNotFound(store, datastore);
  }
  if (!version.active) throw versionInactive(version);
  return { datastore, version };
}

/** flavorRef may be an id, a number, or an href whose last path segment is the id. */
export function flavorIdOf(ref: string | number): string {
  const text = String(ref).replace(/\/+$/, '');
  return text.slice(text.lastIndexOf('/') + 1);
}

function accessOf(input: InstanceInput): InstanceAccess | null {
  if (input.access === undefined) return null;
  const access: InstanceAccess = {};
  if (input.access.is_public !== undefined) access.isPublic = input.access.is_public;
  if (input.access.allowed_cidrs !== undefined) access.allowedCidrs = input.access.allowed_cidrs;
  return access;
}

/** Coffer's `tls: {required}` rides with the access rules: both say who may connect, and how. */
function accessWithTls(input: InstanceInput): InstanceAccess | null {
  const access = accessOf(input);
  if (input.tls?.required !== true) return access;
  return { ...access, requireTls: true };
}

export async function createInstance(
  deps: TroveDeps,
  auth: AuthContext,
  body: CreateInstanceBody,
  context: RequestContext,
): Promise<InstanceViewData> {
  const input = body.instance;
  enforce(auth, 'instance:create', auth.projectId);
  if (input.databases !== undefined && input.databases.length > 0) {
    enforce(auth, 'instance:extension:database:create', auth.projectId);
  }
  if (input.users !== undefined && input.users.length > 0) enforce(auth, 'instance:extension:user:create', auth.projectId);
  if (input.configuration !== undefined) enforce(auth, 'instance:update', auth.projectId);
  rejectUnsupported(input);
  if (input.replica_of !== undefined) return createReplicas(deps, auth, { ...input, replica_of: input.replica_of }, accessWithTls(input), context);

  const { datastore, version } = await resolveVersion(deps, input);
  // the group's values are read by the create flow when it prepares the engine
  const configuration = input.configuration === undefined ? undefined : await groupForCreate(deps.store, auth.projectId, input.configuration, version);
  // What the version reported it can do decides whether databases and users may be asked for.
  const target = { manager: version.manager, datastore: datastore.name, capabilities: version.capabilities };
  const databases = validateDatabases(input.databases ?? [], target);
  const users = validateUsers(input.users ?? [], target, databases);
  for (const u of users) checkPasswordPolicy(u.password, deps.passwordPolicy, `user '${u.name}'`);

  // required without replica_of (the schema says so)
  const flavorId = flavorIdOf(input.flavorRef!);
  const flavor = await deps.store.flavors.get(flavorId);
  if (flavor === undefined) throw new CofferError('FlavorNotFound', `Resource ${flavorId} cannot be found.`);

  const size = input.volume?.size;
  if (size === undefined) throw new CofferError('BadRequest', 'Volume size was not specified.');
  const volumeType = input.volume?.type;
  if (volumeType != null && volumeType !== localVolumeType.name && volumeType !== localVolumeType.id) {
    throw new CofferError('BadRequest', `Volume type ${volumeType} cannot be found: Coffer has one volume type, "${localVolumeType.name}".`);
  }
  const sizeGb = Number(size);
  if (sizeGb > deps.maxVolumeSizeGb) {
    throw new CofferError(
      'OverLimit',
      `Volume 'size' cannot exceed maximum of ${deps.maxVolumeSizeGb} GB, ${sizeGb} cannot be accepted.`,
    );
  }

  const now = new Date();
  const access = accessWithTls(input);
  const restore = input.restorePoint === undefined ? undefined : await restorePointOf(deps, auth, input.restorePoint, datastore, version, sizeGb);
  const payload: CreateInstanceTaskPayload = {
    databases,
    users,
    access,
    requestId: context.requestId,
    ...(restore === undefined ? {} : { restoreBackupId: restore.backup.id }),
    ...(restore?.time === undefined ? {} : { restoreTime: restore.time.toISOString() }),
  };
  const { instance, newInstance, service, task } = buildingInstanceRows({
    name: input.name,
    tenantId: auth.projectId,
    flavorId: flavor.id,
    volumeSizeGb: sizeGb,
    datastoreVersionId: version.id,
    access,
    configurationId: configuration?.id ?? null,
    payload,
    now,
  });
  await deps.store.transaction(async (tx) => {
    // The quota check and the insert share the transaction and the project's quota lock, so
    // concurrent creates cannot both pass on the same free slot (reference 7.1 deltas).
    await enforceQuota(tx, auth.projectId, deps.quotaDefaults, { instances: 1, ram: flavor.ramMb, volumes: sizeGb });
    // a group deleted since it was looked up is not attached to a new instance
    if (configuration !== undefined && (await tx.configurations.get(configuration.id)) === undefined) throw configurationNotFound(configuration.id);
    await tx.instances.create(newInstance);
    await tx.serviceStatuses.set(service);
    await tx.tasks.create(task);
  });
  await wakeTaskmanager(deps, task.id, { ...context, instanceId: instance.id });
  return { instance, datastore, version, service, fault: undefined, configuration };
}
