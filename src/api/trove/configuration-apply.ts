import type { ApplyConfigurationTaskPayload, RequestContext } from '../../bus/index.js';
import { CofferError, newUuid, validateConfigurationValues, type ConfigurationValues } from '../../common/index.js';
import type {
  ConfigurationPatch,
  ConfigurationRow,
  DatastoreVersionRow,
  InstanceRow,
  Repositories,
  ServiceStatusRow,
  TaskStatusName,
} from '../../db/index.js';
import { notAvailable, stoppedInstance } from './action-gate.js';
import { instanceStatus, serverStatusOf, taskAction } from './instance-status.js';
import { createTaskRow, queueInstanceTask } from './queue-instance-task.js';
import type { TroveDeps } from './trove-deps.js';
import { wakeTaskmanager } from './wake-taskmanager.js';

// How a configuration group reaches the engines: attaching and detaching (PUT /instances/{id}),
// changing an attached group (PUT/PATCH /configurations/{id}) and creating an instance with one.
// Each instance gets an apply_configuration task; the instance shows UPDATING meanwhile, and a
// group is not changed or deleted while one of its instances is being applied, so that the values
// a task sends are the values that were asked for.

export function configurationNotFound(id: string): CofferError {
  return new CofferError('NotFound', `Configuration group with ID ${id} could not be found.`);
}

/** Trove's ConfigurationDatastoreNotMatchInstance (400). */
function versionMismatch(group: DatastoreVersionRow | undefined, instance: DatastoreVersionRow | undefined, ids: [string, string]): CofferError {
  return new CofferError(
    'BadRequest',
    `Datastore Version on Configuration ${group?.name ?? ids[0]} does not match the Datastore Version on the instance ${instance?.name ?? ids[1]}.`,
  );
}

/**
 * Trove's _validate_configuration (reference 2.8, 5.3): `values` checked against the parameters
 * the version's agents reported, answered under each parameter's own name. A version whose engine
 * has no configuration groups has no parameters: Trove's 422 "not supported".
 */
export async function checkValues(store: Repositories, version: DatastoreVersionRow, values: Record<string, unknown>): Promise<ConfigurationValues> {
  const datastore = await store.datastores.getDatastore(version.datastoreId);
  const parameters = version.capabilities.configurationGroups ? version.parameters : [];
  return validateConfigurationValues(values, parameters, `${datastore?.name ?? version.manager} ${version.name}`);
}

/** Trove's _validate_can_perform_assign: the server ACTIVE and no task, else InvalidInstanceState (400). */
function checkAssignable(instance: InstanceRow, service: ServiceStatusRow | undefined): void {
  if (serverStatusOf(service?.status) !== 'ACTIVE' || instance.taskStatus !== 'NONE') {
    throw new CofferError(
      'BadRequest',
      `The operation you have requested cannot be executed because the instance status is currently: ${instanceStatus(instance.taskStatus, service?.status)}.`,
    );
  }
}

/** `configuration` given as an id or an href: the last path segment. */
export function configurationIdOf(ref: string): string {
  const text = ref.replace(/\/+$/, '');
  return text.slice(text.lastIndexOf('/') + 1);
}

/** The group an instance of `tenantId` on `version` is created with (reference 2.2 create). */
export async function groupForCreate(store: Repositories, tenantId: string, ref: string, version: DatastoreVersionRow): Promise<ConfigurationRow> {
  const id = configurationIdOf(ref);
  const group = await store.configurations.get(id, { tenantId });
  if (group === undefined) throw configurationNotFound(id);
  if (group.datastoreVersionId !== version.id) {
    throw versionMismatch(await store.datastores.getVersion(group.datastoreVersionId), version, [group.datastoreVersionId, version.id]);
  }
  return group;
}

const applying = (description: string) => ({ taskStatus: 'UPDATING' as const, taskDescription: description });

/**
 * PUT /instances/{id} `configuration` (reference 2.2): a group id attaches it, null detaches the
 * attached one (nothing to do without one). The group must be one of the instance's project, on
 * the instance's datastore version.
 */
export async function changeConfiguration(deps: TroveDeps, instance: InstanceRow, configurationId: string | null, context: RequestContext): Promise<void> {
  const { store } = deps;
  if (configurationId === null && instance.configurationId === null) return;
  if (configurationId !== null && instance.configurationId !== null) {
    throw new CofferError('BadRequest', `Instance ${instance.id} already has a Configuration Group attached: ${instance.configurationId}.`);
  }
  checkAssignable(instance, await store.serviceStatuses.get(instance.id));
  if (configurationId !== null) {
    const group = await store.configurations.get(configurationId, { tenantId: instance.tenantId });
    if (group === undefined) throw configurationNotFound(configurationId);
    if (group.datastoreVersionId !== instance.datastoreVersionId) {
      const [ofGroup, ofInstance] = await Promise.all([
        store.datastores.getVersion(group.datastoreVersionId),
        store.datastores.getVersion(instance.datastoreVersionId),
      ]);
      throw versionMismatch(ofGroup, ofInstance, [group.datastoreVersionId, instance.datastoreVersionId]);
    }
  }
  const previous = instance.configurationId;
  await queueInstanceTask(
    deps,
    instance,
    {
      kind: 'apply_configuration',
      // The wanted group is the instance's from now on (Trove saves it at once too); a failed
      // apply puts the previous one back.
      patch: {
        configurationId,
        ...applying(configurationId === null ? 'Detaching the configuration group.' : 'Attaching a configuration group.'),
      },
      payload: { requestId: context.requestId, previousConfigurationId: previous, resumeTask: 'NONE' } satisfies ApplyConfigurationTaskPayload,
      recheck: async (current, tx) => {
        if (current.configurationId !== previous) {
          throw new CofferError('BadRequest', `The configuration group of instance ${instance.id} changed meanwhile; ask again.`);
        }
        checkAssignable(current, await tx.serviceStatuses.get(current.id));
        if (configurationId !== null && (await tx.configurations.get(configurationId)) === undefined) throw configurationNotFound(configurationId);
      },
    },
    context,
  );
}

/** Task statuses from which an attached instance takes a changed group (a pending restart stays pending). */
const reapplicable = new Set<TaskStatusName>(['NONE', 'RESTART_REQUIRED']);

/**
 * Saves a changed group and re-applies it to every instance it is attached to, one task each,
 * all in one transaction: when one of them is busy (another task, or still applying), nothing is
 * saved and the answer is Trove's 422 naming it, so the group never says what an engine was not asked to run.
 */
export async function updateGroup(deps: TroveDeps, group: ConfigurationRow, patch: ConfigurationPatch, context: RequestContext): Promise<void> {
  const now = new Date();
  const taskIds = await deps.store.transaction(async (tx) => {
    await tx.configurations.update(group.id, patch);
    if (patch.values === undefined) return [];
    const ids: Array<{ taskId: string; instanceId: string }> = [];
    for (let marker: string | undefined; ; ) {
      const page = await tx.configurations.instances(group.id, { limit: 100, ...(marker === undefined ? {} : { marker }) });
      for (const instance of page.items) {
        const status = instance.taskStatus;
        // a stopped engine cannot be asked to apply it: the owner starts the instance first
        if (status === 'STOPPED') throw stoppedInstance(instance.id);
        if (!reapplicable.has(status) || !(await tx.instances.updateIfTask(instance.id, [status], { ...applying('Applying the changed configuration group.'), taskStartTime: now }))) {
          throw notAvailable(instance.id, 'task', taskAction(status));
        }
        const taskId = newUuid();
        await createTaskRow(tx, {
          id: taskId,
          instanceId: instance.id,
          kind: 'apply_configuration',
          step: 'start',
          state: 'pending',
          owner: null,
          leaseExpiresAt: null,
          payload: {
            requestId: context.requestId,
            previousConfigurationId: group.id,
            resumeTask: status === 'RESTART_REQUIRED' ? 'RESTART_REQUIRED' : 'NONE',
          } satisfies ApplyConfigurationTaskPayload,
          attempts: 0,
          createdAt: now,
          updatedAt: now,
        });
        ids.push({ taskId, instanceId: instance.id });
      }
      if (page.nextMarker === null) break;
      marker = page.nextMarker;
    }
    return ids;
  });
  for (const { taskId, instanceId } of taskIds) await wakeTaskmanager(deps, taskId, { ...context, instanceId });
}

/**
 * DELETE /configurations/{id}: Trove's 400 while live instances have the group attached, and
 * (Coffer's) while a detach from it is still being applied, since a failed detach returns to it.
 */
export async function deleteGroup(deps: TroveDeps, group: ConfigurationRow): Promise<void> {
  await deps.store.transaction(async (tx) => {
    const attached = await tx.configurations.countInstances(group.id);
    const detaching = attached > 0 ? false : await detachInFlight(tx, group);
    if (attached > 0 || detaching) {
      throw new CofferError(
        'BadRequest',
        'A configuration group cannot be deleted if it is associated with one or more non-terminated instances. ' +
          'Detach the configuration group from all non-terminated instances and please try again.',
      );
    }
    await tx.configurations.markDeleted(group.id, new Date());
  });
}

async function detachInFlight(tx: Repositories, group: ConfigurationRow): Promise<boolean> {
  const updating = (await tx.instances.listAll({ tenantId: group.tenantId, deleted: false })).filter((i) => i.taskStatus === 'UPDATING');
  for (const instance of updating) {
    const task = await tx.tasks.activeForInstance(instance.id);
    const payload = task?.payload as Partial<ApplyConfigurationTaskPayload> | null | undefined;
    if (task?.kind === 'apply_configuration' && payload?.previousConfigurationId === group.id) return true;
  }
  return false;
}
