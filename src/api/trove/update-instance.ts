import { engineVersionKey, type DeleteInstanceTaskPayload, type RequestContext, type UpdateAccessTaskPayload, type UpgradeTaskPayload } from '../../bus/index.js';
import { CofferError } from '../../common/index.js';
import type { InstanceAccess, InstanceRow, Repositories } from '../../db/index.js';
import { notAvailable, gateAction, stoppedInstance } from './action-gate.js';
import { changeConfiguration } from './configuration-apply.js';
import { startUpgradeBackup } from './backup-create.js';
import { findVersionOf, versionInactive, versionNotFound } from './datastore-lookup.js';
import { taskAction } from './instance-status.js';
import type { UpdateInstanceInput } from './instance-update-schema.js';
import { queueInstanceTask } from './queue-instance-task.js';
import type { TroveDeps } from './trove-deps.js';

// PUT /instances/{id} and PATCH /instances/{id} (reference 2.2, InstanceController.update/edit
// and _modify_instance): the name first, then at most one other change, in Trove's order.

/** Trove's count rule: besides `name`, one attribute at most (checked before the instance is loaded). */
export function checkOneAttribute(input: Record<string, unknown>): void {
  const others = Object.keys(input).filter((key) => key !== 'name');
  if (others.length > 1) throw new CofferError('BadRequest', "Only one attribute (except 'name') is allowed to update.");
}

/** Task statuses from which the access rules may be rewritten (a failed rewrite may be asked again). */
const accessUpdatable = new Set(['NONE', 'RESTART_REQUIRED', 'UPDATING_ERROR_ACCESS']);

export async function updateInstance(deps: TroveDeps, instance: InstanceRow, input: UpdateInstanceInput, context: RequestContext): Promise<void> {
  const { store } = deps;
  if (input.name !== undefined) await store.instances.update(instance.id, { name: input.name });

  if ('replica_of' in input || 'slave_of' in input) return detachReplica(deps, instance, context);
  if (input.configuration !== undefined) return changeConfiguration(deps, instance, input.configuration, context);
  if (input.datastore_version !== undefined) return upgrade(deps, instance, input.datastore_version, context);
  if (input.access !== undefined) return updateAccess(deps, instance, input.access, context);
  if (input.tls !== undefined) return updateTls(deps, instance, input.tls.required, context);
}

/**
 * Detaching a replica (reference 2.2): Trove checks the action gate first, then that it is one;
 * the task DETACHING promotes it to a standalone primary (detach-replica-flow.ts).
 */
async function detachReplica(deps: TroveDeps, instance: InstanceRow, context: RequestContext): Promise<void> {
  const check = async (current: InstanceRow, store: Repositories = deps.store) => {
    await gateAction(store, current, deps.heartbeatExpirySeconds);
    if (current.replicaOfId == null) throw new CofferError('BadRequest', `Instance ${current.id} is not a replica.`);
  };
  await check(instance);
  await queueInstanceTask(
    deps,
    instance,
    {
      kind: 'detach_replica',
      patch: { taskStatus: 'DETACHING', taskDescription: 'Detaching the replica from its source.' },
      payload: { requestId: context.requestId } satisfies DeleteInstanceTaskPayload,
      recheck: (current, tx) => check(current, tx),
    },
    context,
  );
}

/**
 * Trove's upgrade: to the version the instance runs, a no-op (202); to another version of its
 * datastore, the `upgrade` task (upgrade-instance-flow.ts), after a full backup where backups are
 * configured. Coffer checks what Trove leaves to the guest: the action gate, a newer version, one
 * the instance's host runs, and no replication group (each member would run another version).
 */
async function upgrade(deps: TroveDeps, instance: InstanceRow, requested: string, context: RequestContext): Promise<void> {
  const current = await deps.store.datastores.getVersion(instance.datastoreVersionId);
  const datastore = current === undefined ? undefined : await deps.store.datastores.getDatastore(current.datastoreId);
  if (current === undefined || datastore === undefined) throw versionNotFound(requested);
  const version = await findVersionOf(deps.store, datastore, requested);
  if (version === undefined) throw versionNotFound(requested);
  if (version.name === current.name) return;
  if (!version.active) throw versionInactive(version);
  if (compareVersions(version.version, current.version) < 0) {
    throw new CofferError('BadRequest', `Instance ${instance.id} runs ${datastore.name} ${current.name}: it cannot be downgraded to ${version.name}.`);
  }
  const alone = async (row: InstanceRow, store: Repositories) => {
    if (row.replicaOfId !== null || ((await store.instances.replicasOf([row.id])).get(row.id) ?? []).length > 0) {
      throw new CofferError(
        'BadRequest',
        `Instance ${row.id} is in a replication group, whose members must run one version: detach the replicas, upgrade the primary, then create the replicas again.`,
      );
    }
  };
  await gateAction(deps.store, instance, deps.heartbeatExpirySeconds);
  await alone(instance, deps.store);
  const host = instance.host === null ? undefined : (await deps.store.agents.listAlive(new Date(0))).find((agent) => agent.host === instance.host);
  if (host !== undefined && !host.engines.includes(engineVersionKey(version.manager, version.name))) {
    throw new CofferError(
      'BadRequest',
      `The host of instance ${instance.id} (${host.host}) cannot run ${datastore.name} ${version.name}: install that version there first.`,
    );
  }
  const backup = deps.backups.storage !== undefined && current.capabilities.backup ? await startUpgradeBackup(deps, instance, version.name, context) : undefined;
  await queueInstanceTask(
    deps,
    instance,
    {
      kind: 'upgrade',
      patch: { taskStatus: 'UPGRADING', taskDescription: `Upgrading the instance to ${datastore.name} ${version.name}.` },
      payload: {
        requestId: context.requestId,
        fromVersionId: current.id,
        toVersionId: version.id,
        ...(backup === undefined ? {} : { backupId: backup.id }),
      } satisfies UpgradeTaskPayload,
      // the gate would now see the backup just admitted: what it checked must only not have changed
      recheck: async (row, tx) => {
        if (row.taskStatus !== instance.taskStatus) throw notAvailable(row.id, 'task', taskAction(row.taskStatus));
        await alone(row, tx);
      },
    },
    context,
  );
}

/** -1, 0 or 1 as `a` is an older, the same or a newer dotted version than `b` (15.20 < 16.4). */
export function compareVersions(a: string, b: string): number {
  const left = a.split('.').map(Number);
  const right = b.split('.').map(Number);
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const difference = (left[i] ?? 0) - (right[i] ?? 0);
    if (difference !== 0) return Math.sign(difference);
  }
  return 0;
}

async function updateAccess(
  deps: TroveDeps,
  instance: InstanceRow,
  body: { is_public?: boolean | undefined; allowed_cidrs?: string[] | undefined },
  context: RequestContext,
): Promise<void> {
  const version = await deps.store.datastores.getVersion(instance.datastoreVersionId);
  if (version === undefined || !version.capabilities.accessRules) {
    throw new CofferError(
      'OperationNotSupported',
      `Operation not supported for datastore ${version?.manager ?? 'unknown'}: its engine does not enforce access rules.`,
    );
  }
  const access: InstanceAccess = {
    ...(body.is_public === undefined ? {} : { isPublic: body.is_public }),
    ...(body.allowed_cidrs === undefined ? {} : { allowedCidrs: body.allowed_cidrs }),
    // Trove's access body replaces the rules; Coffer's TLS requirement stays as it was
    ...(instance.access?.requireTls === true ? { requireTls: true } : {}),
  };
  await queueAccessTask(deps, instance, access, 'Updating the access rules of the instance.', context);
}

/** Coffer's `tls: {required}`: every engine enforces it, through the same task as the access rules. */
async function updateTls(deps: TroveDeps, instance: InstanceRow, required: boolean, context: RequestContext): Promise<void> {
  const { requireTls: _previous, ...rest } = instance.access ?? {};
  const access: InstanceAccess | null = required ? { ...rest, requireTls: true } : Object.keys(rest).length > 0 ? rest : null;
  const description = required ? 'Requiring TLS for client connections.' : 'Allowing plaintext client connections.';
  await queueAccessTask(deps, instance, access, description, context);
}

async function queueAccessTask(
  deps: TroveDeps,
  instance: InstanceRow,
  access: InstanceAccess | null,
  description: string,
  context: RequestContext,
): Promise<void> {
  // Trove leaves this unchecked; Coffer refuses while another task owns the instance, so that a
  // create, resize or delete is never taken over.
  const check = (current: InstanceRow) => {
    if (current.taskStatus === 'STOPPED') throw stoppedInstance(current.id);
    if (!accessUpdatable.has(current.taskStatus)) throw notAvailable(current.id, 'task', taskAction(current.taskStatus));
  };
  check(instance);
  const resumeTask = instance.taskStatus === 'RESTART_REQUIRED' ? 'RESTART_REQUIRED' : 'NONE';
  await queueInstanceTask(
    deps,
    instance,
    {
      kind: 'update_access',
      // The wanted access is the instance's from now on; the flow applies it from the row.
      patch: { access, taskStatus: 'UPDATING', taskDescription: description },
      payload: { requestId: context.requestId, resumeTask } satisfies UpdateAccessTaskPayload,
      recheck: async (current) => check(current),
    },
    context,
  );
}
