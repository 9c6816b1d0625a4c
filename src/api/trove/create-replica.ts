import type { CreateInstanceTaskPayload, RequestContext } from '../../bus/index.js';
import { CofferError, errors } from '../../common/index.js';
import type { InstanceAccess, InstanceRow } from '../../db/index.js';
import type { AuthContext } from '../auth-context.js';
import { gateAction } from './action-gate.js';
import { configurationNotFound, groupForCreate } from './configuration-apply.js';
import type { CreateInstanceBody } from './instance-create-schema.js';
import type { InstanceViewData } from './instance-views.js';
import { flavorIdOf } from './create-instance.js';
import { enforceQuota } from './quota-enforcement.js';
import type { TroveDeps } from './trove-deps.js';
import { wakeTaskmanager } from './wake-taskmanager.js';
import { buildingInstanceRows } from './building-instance.js';

// POST /instances with `replica_of` (reference 2.2 step 2): read replicas of an instance. A
// replica takes its source's flavor, datastore version and volume size unless given (issue 11),
// and its databases and users from the source (none may be given). Trove refuses a flavor, a
// datastore and a volume outright; Coffer accepts what a replica can run on (a flavor with at least
// the source's RAM, a volume at least as large, the source's own datastore version), since
// Debian's `trove create <name> <flavor> --replica_of` always sends a flavor. `replica_count` N makes N
// replicas named `<name>-1` … `<name>-N`, each an instance with its own create task; the
// response shows the last, as Trove's does. Each counts against the quota as any instance.

type InstanceInput = CreateInstanceBody['instance'];

/** What Trove refuses alongside `replica_of`, in its order, with its words. */
function rejectReplicaInput(input: InstanceInput): void {
  if (input.restorePoint !== undefined) throw new CofferError('BadRequest', 'Cannot specify restorePoint when creating replicas: a replica is copied from its source.');
}

/** The source a tenant names: its own (404 otherwise), not itself a replica (Trove's Forbidden, 401). */
async function replicaSource(deps: TroveDeps, auth: AuthContext, sourceId: string): Promise<InstanceRow> {
  const source = await deps.store.instances.get(sourceId, auth.isAdmin ? {} : { tenantId: auth.projectId });
  if (source === undefined) throw errors.notFound(sourceId);
  if (source.replicaOfId != null) throw new CofferError('AdminRequired', `Cannot create a replica of a replica ${sourceId}.`);
  return source;
}

/** A flavor given for a replica: a hot standby needs at least its source's memory settings. */
async function replicaFlavor(deps: TroveDeps, ref: string | number, source: InstanceRow, sourceRamMb: number) {
  const flavorId = flavorIdOf(ref);
  const flavor = await deps.store.flavors.get(flavorId);
  if (flavor === undefined) throw new CofferError('FlavorNotFound', `Resource ${flavorId} cannot be found.`);
  if (flavor.ramMb < sourceRamMb) {
    throw new CofferError(
      'BadRequest',
      `Flavor ${flavor.name} has ${flavor.ramMb} MB of RAM, less than the ${sourceRamMb} MB of instance ${source.id}: a replica needs at least as much as its source. Leave flavorRef out to take the source's.`,
    );
  }
  return flavor;
}

/** A volume given for a replica: it holds a copy of the source's data, so no smaller. */
function replicaVolumeSize(input: InstanceInput, source: InstanceRow, maxVolumeSizeGb: number): number {
  const size = input.volume?.size;
  if (size === undefined) return source.volumeSizeGb;
  const sizeGb = Number(size);
  if (sizeGb < source.volumeSizeGb) {
    throw new CofferError(
      'BadRequest',
      `A replica's volume holds a copy of its source's: ${sizeGb} GB is less than the ${source.volumeSizeGb} GB of instance ${source.id}. Leave volume out to take the source's.`,
    );
  }
  if (sizeGb > maxVolumeSizeGb) {
    throw new CofferError('OverLimit', `Volume 'size' cannot exceed maximum of ${maxVolumeSizeGb} GB, ${sizeGb} cannot be accepted.`);
  }
  return sizeGb;
}

/** A datastore given for a replica must name its source's own (a replica streams its source's files). */
function checkReplicaDatastore(input: InstanceInput, source: InstanceRow, datastoreName: string, version: { id: string; name: string }): void {
  const given = input.datastore;
  if (given === undefined) return;
  const sameType = given.type === undefined || given.type === datastoreName;
  const sameVersion = given.version === undefined || given.version === version.name || given.version === version.id;
  if (!sameType || !sameVersion) {
    throw new CofferError('BadRequest', `A replica runs its source's datastore, ${datastoreName} ${version.name} (instance ${source.id}). Leave datastore out to take the source's.`);
  }
}

export function replicaNames(name: string, count: number): string[] {
  return count === 1 ? [name] : Array.from({ length: count }, (_, index) => `${name}-${index + 1}`);
}

export async function createReplicas(
  deps: TroveDeps,
  auth: AuthContext,
  input: InstanceInput & { replica_of: string },
  access: InstanceAccess | null,
  context: RequestContext,
): Promise<InstanceViewData> {
  rejectReplicaInput(input);
  const source = await replicaSource(deps, auth, input.replica_of);
  if ((input.databases?.length ?? 0) > 0 || (input.users?.length ?? 0) > 0) {
    throw new CofferError('BadRequest', 'Cannot create a replica with users or databases.');
  }
  const version = await deps.store.datastores.getVersion(source.datastoreVersionId);
  const datastore = version === undefined ? undefined : await deps.store.datastores.getDatastore(version.datastoreId);
  if (version === undefined || datastore === undefined) throw new CofferError('DatastoreVersionNotFound', `The datastore version of instance ${source.id} no longer exists.`);
  if (!version.capabilities.replication) {
    throw new CofferError('BadRequest', `Replication is not supported for datastore ${datastore.name} ${version.name}.`);
  }
  if (!version.active) throw new CofferError('DatastoreVersionInactive', `Datastore version ${version.name} of ${datastore.name} is not active.`);
  await gateAction(deps.store, source, deps.heartbeatExpirySeconds);
  const sourceFlavor = await deps.store.flavors.get(source.flavorId);
  if (sourceFlavor === undefined) throw new CofferError('FlavorNotFound', `Resource ${source.flavorId} cannot be found.`);
  const flavor = input.flavorRef === undefined ? sourceFlavor : await replicaFlavor(deps, input.flavorRef, source, sourceFlavor.ramMb);
  checkReplicaDatastore(input, source, datastore.name, version);
  const volumeSizeGb = replicaVolumeSize(input, source, deps.maxVolumeSizeGb);
  const configuration = input.configuration === undefined ? undefined : await groupForCreate(deps.store, auth.projectId, input.configuration, version);

  const now = new Date();
  const payload: CreateInstanceTaskPayload = { databases: [], users: [], access, requestId: context.requestId, ...(input.locality === undefined ? {} : { locality: input.locality }) };
  const made = replicaNames(input.name, input.replica_count ?? 1).map((name) =>
    buildingInstanceRows({
      name,
      tenantId: auth.projectId,
      flavorId: flavor.id,
      volumeSizeGb,
      datastoreVersionId: version.id,
      access,
      configurationId: configuration?.id ?? null,
      replicaOfId: source.id,
      payload,
      now,
    }),
  );
  await deps.store.transaction(async (tx) => {
    // all the replicas or none: the quota counts them together
    await enforceQuota(tx, auth.projectId, deps.quotaDefaults, { instances: made.length, ram: flavor.ramMb * made.length, volumes: volumeSizeGb * made.length });
    if (configuration !== undefined && (await tx.configurations.get(configuration.id)) === undefined) throw configurationNotFound(configuration.id);
    // a source deleted since it was looked up gets no replica
    const current = await tx.instances.get(source.id);
    if (current === undefined || current.taskStatus === 'DELETING') throw errors.notFound(source.id);
    // A lease renewed for an earlier group of this source is stale: the failover watch would take
    // it for a lapsed one the moment the new replica's row exists. No failover until it renews.
    if ((current.replicaIds ?? []).length === 0) await tx.instances.update(source.id, { leaseRenewedAt: null });
    for (const { newInstance, task, service } of made) {
      await tx.instances.create(newInstance);
      await tx.serviceStatuses.set(service);
      await tx.tasks.create(task);
    }
  });
  for (const { instance, task } of made) await wakeTaskmanager(deps, task.id, { ...context, instanceId: instance.id });
  const last = made.at(-1)!;
  return { instance: last.instance, datastore, version, service: last.service, fault: undefined, configuration };
}
