import type { BackupStorage, StoredObject } from '../../backup/index.js';
import type { ImportBackupTaskPayload, RequestContext } from '../../bus/index.js';
import { CofferError, importableBackupEngines, isCofferError, newUuid } from '../../common/index.js';
import type { BackupRow, DatastoreVersionRow, NewBackup } from '../../db/index.js';
import type { AuthContext } from '../auth-context.js';
import type { CreateBackupBody } from './backup-schemas.js';
import { versionInactive } from './datastore-lookup.js';
import { toGb } from './instance-views.js';
import { pendingTask } from './queue-instance-task.js';
import { enforceQuota } from './quota-enforcement.js';
import type { TroveDeps } from './trove-deps.js';
import { wakeTaskmanager } from './wake-taskmanager.js';

// POST /backups with `restore_from` (reference 2.9): Trove's import of a backup object that
// already exists, as a new backup in state RESTORED with no instance. Trove fetches a Swift URL
// with the caller's token; Coffer fetches nothing. The object must already be in this
// deployment's own backup storage, in a container the caller's project uses, and not be an
// object any other backup (or another project's deleted one) names. What it holds is not
// trusted here: the API records the backup NEW with an import_backup task, and the taskmanager
// reads the object once (its frames must open under the project's key, its checksum is the
// storage's) before it is RESTORED; otherwise it is FAILED with the reason.

const bytesPerGb = 1024 ** 3;
/** how far `size` may be from the object's size: Trove's view rounds to two decimals */
const sizeToleranceGb = 0.01;
/** `<instance id>/…`: an instance's archived log (WAL, binlog, AOF) or logs, never a backup */
const instanceObject = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\//;

type ImportInput = CreateBackupBody['backup'] & { restore_from: NonNullable<CreateBackupBody['backup']['restore_from']> };

const objectNotFound = (location: string) =>
  new CofferError('NotFound', `Backup object ${location} cannot be found in this deployment's backup storage.`);

export async function importBackup(deps: TroveDeps, auth: AuthContext, input: ImportInput, context: RequestContext): Promise<BackupRow> {
  const from = input.restore_from;
  // Trove's schema lets `incremental: 0` through beside restore_from; anything that asks for more is refused
  const mixed = (['instance', 'parent_id', 'incremental', 'swift_container'] as const).filter((key) =>
    key === 'incremental' ? input.incremental === 1 || input.incremental === true : input[key] !== undefined,
  );
  if (mixed.length > 0) {
    throw new CofferError('BadRequest', `restore_from imports an existing backup object: it takes no ${mixed.join(', ')}.`);
  }
  const storage = deps.backups.storage;
  if (storage === undefined) throw new CofferError('NotImplemented', 'Backups are not configured on this deployment: it has no backup storage.');
  const version = await importVersion(deps, from.local_datastore_version_id);
  const containers = await projectContainers(deps, auth.projectId);
  const { container, name } = await resolveLocation(storage, from.remote_location, containers, deps.backups.defaultContainer);
  if (instanceObject.test(name)) {
    throw new CofferError('BadRequest', `${container}/${name} is an instance's archived log, not a backup: only backup objects can be imported.`);
  }
  const stored = await headObject(storage, container, name, from.remote_location);
  if (stored.metadata.kind === 'incremental' || stored.metadata['parent-location'] !== undefined) {
    throw new CofferError('NotImplemented', 'Importing an incremental backup (restore_from of an object with a parent) is not supported by Coffer yet: import its full backup.');
  }
  const storedGb = stored.size / bytesPerGb;
  if (Math.abs(from.size - storedGb) > sizeToleranceGb) {
    throw new CofferError('BadRequest', `restore_from.size ${from.size} does not match the object's size, ${toGb(stored.size)} GB (${stored.size} bytes): check the remote_location.`);
  }

  const now = new Date();
  const backup: NewBackup = {
    id: newUuid(),
    tenantId: auth.projectId,
    name: input.name,
    description: input.description ?? null,
    // Trove's imported backup has no instance; Coffer's rows say so with '' (the view shows null)
    instanceId: '',
    parentId: null,
    datastoreVersionId: version.id,
    backupType: 'full',
    state: 'NEW',
    container,
    objectName: name,
    createdAt: now,
    updatedAt: now,
  };
  const task = pendingTask('import_backup', backup.id, { requestId: context.requestId } satisfies ImportBackupTaskPayload, now);
  await deps.store.transaction(async (tx) => {
    await enforceQuota(tx, auth.projectId, deps.quotaDefaults, { backups: 1 });
    // under the project's quota lock: of two imports of one object, the second sees the first
    await refuseNamedObject(await tx.backups.byObjectNames(container, [name]), auth.projectId, container, name, from.remote_location);
    await tx.backups.create(backup);
    await tx.tasks.create(task);
  });
  await wakeTaskmanager(deps, task.id, context);
  return { ...backup, scheduleId: null, sizeBytes: null, dataBytes: null, sha256: null, facts: null, failReason: null, deleted: false };
}

/** Trove loads the version by id: unknown 404, inactive 400; an engine whose backups Coffer cannot import 501. */
async function importVersion(deps: TroveDeps, id: string): Promise<DatastoreVersionRow> {
  const version = await deps.store.datastores.getVersion(id);
  if (version === undefined) throw new CofferError('NotFound', `Datastore version '${id}' cannot be found.`);
  if (!version.active) throw versionInactive(version);
  if (!version.capabilities.backup) throw new CofferError('NotImplemented', `Backups are not supported for datastore ${version.manager}.`);
  if (!importableBackupEngines.has(version.manager)) {
    throw new CofferError('NotImplemented', `Importing backups (restore_from) is not supported for datastore ${version.manager} yet: only ${[...importableBackupEngines].join(' and ')} backups can be imported.`);
  }
  return version;
}

/** The containers the project's backups go to: the deployment's default and those its backup strategies name. */
async function projectContainers(deps: TroveDeps, tenantId: string): Promise<string[]> {
  const strategies = await deps.store.backupStrategies.list({ tenantId });
  return [...new Set([deps.backups.defaultContainer, ...strategies.map((s) => s.container)])];
}

/**
 * `<container>/<object name>`, or the locationRef the storage gives such an object (a backup
 * view's), in one of `containers`. Nothing else is accepted, and nothing is ever fetched from it.
 */
async function resolveLocation(
  storage: BackupStorage,
  location: string,
  containers: readonly string[],
  defaultContainer: string,
): Promise<{ container: string; name: string }> {
  const outside = () =>
    new CofferError(
      'BadRequest',
      `restore_from.remote_location ${JSON.stringify(location)} is not an object in one of your project's backup containers (${containers.join(', ')}) ` +
        "of this deployment's backup storage: Coffer imports only objects already there, named as <container>/<object name> or by the locationRef its storage gives them. Copy the object there first.",
    );
  if (!/^[a-z][a-z0-9+.-]*:/i.test(location)) {
    const slash = location.indexOf('/');
    const container = location.slice(0, slash);
    if (slash <= 0 || !containers.includes(container)) throw outside();
    return { container, name: location.slice(slash + 1) };
  }
  for (const container of containers) {
    const prefix = (await locationOf(storage, container, 'x', defaultContainer)).slice(0, -1);
    if (!location.startsWith(prefix)) continue;
    let name: string;
    try {
      name = location.slice(prefix.length).split('/').map(decodeURIComponent).join('/');
    } catch {
      throw outside();
    }
    // the location must be exactly the one the storage gives the object: no other spelling gets in
    if (name !== '' && (await locationOf(storage, container, name, defaultContainer)) === location) return { container, name };
  }
  throw outside();
}

/** Swift learns its account's URL when it first authenticates: that happens on the default container, which backups make anyway. */
async function locationOf(storage: BackupStorage, container: string, name: string, defaultContainer: string): Promise<string> {
  try {
    return storage.locationOf(container, name);
  } catch (err) {
    if (!isCofferError(err) || err.code !== 'Internal') throw err;
    await storage.ensureContainer(defaultContainer);
    return storage.locationOf(container, name);
  }
}

/** The object as the storage records it: only complete objects with their recorded SHA-256 are there. */
async function headObject(storage: BackupStorage, container: string, name: string, location: string): Promise<StoredObject> {
  let stored: StoredObject | undefined;
  try {
    stored = await storage.head(container, name);
  } catch (err) {
    if (isCofferError(err) && err.code === 'NotFound') throw objectNotFound(location);
    throw err;
  }
  if (stored === undefined) throw objectNotFound(location);
  return stored;
}

/**
 * An object a backup names stays that backup's: another project's (even deleted) is not there
 * for the caller (404, as its backups are), and one of the caller's live backups is itself
 * already (409). The caller's deleted backup's object, copied back, may be imported.
 */
async function refuseNamedObject(rows: readonly BackupRow[], tenantId: string, container: string, name: string, location: string): Promise<void> {
  if (rows.some((row) => row.tenantId !== tenantId)) throw objectNotFound(location);
  const live = rows.find((row) => !row.deleted);
  if (live !== undefined) {
    throw new CofferError('Conflict', `Backup object ${container}/${name} is already the object of backup ${live.id}: restore from that backup instead.`);
  }
}
