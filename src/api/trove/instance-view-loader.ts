import type { InstanceFaultRow, InstanceRow, InstanceSummaryRow, Repositories } from '../../db/index.js';
import type { InstanceSummaryViewData, InstanceViewData } from './instance-views.js';
import { recoverableWindows, type RecoverableWindow } from './point-in-time.js';

/**
 * Gathers what the views of a page of instances (or of one) show, each kind of row read once for
 * the whole page: a page costs the same few statements whether it holds one instance or twenty
 * (issue 14), at most 10 with the token's. With `summary`, only what the summary view shows
 * (instanceSummaryView): no fault, configuration, task progress or recoverable window is read.
 */
export function loadInstanceViews(store: Repositories, instances: readonly InstanceRow[]): Promise<InstanceViewData[]>;
export function loadInstanceViews(store: Repositories, instances: readonly InstanceSummaryRow[], options: { summary: true }): Promise<InstanceSummaryViewData[]>;
export async function loadInstanceViews(
  store: Repositories,
  rows: readonly InstanceSummaryRow[],
  options: { summary?: true } = {},
): Promise<InstanceSummaryViewData[]> {
  const detail = options.summary !== true;
  // without `summary` the rows are whole (the first signature)
  const instances = rows as readonly InstanceRow[];
  const ids = instances.map((i) => i.id);
  const configurationIds = detail ? unique(instances.flatMap((i) => (i.configurationId === null ? [] : [i.configurationId]))) : [];
  const [versions, services, faults, configurations, withRunningBackup, windows] = await Promise.all([
    store.datastores.getVersions(unique(instances.map((i) => i.datastoreVersionId))),
    store.serviceStatuses.getMany(ids),
    detail ? store.faults.latestOf(ids) : new Map<string, InstanceFaultRow>(),
    store.configurations.getMany(configurationIds),
    store.backups.instancesWithRunning(ids),
    detail ? recoverableWindows(store, instances) : new Map<string, RecoverableWindow>(),
  ]);
  // only an instance with a task in progress (or a backup running) has a task to read progress from
  const busy = detail ? instances.filter((i) => i.taskStatus !== 'NONE' || withRunningBackup.has(i.id)).map((i) => i.id) : [];
  const [datastores, tasks] = await Promise.all([
    store.datastores.getDatastores(unique([...versions.values()].map((v) => v.datastoreId))),
    store.tasks.activeForInstances(busy),
  ]);
  return instances.map((instance) => {
    const version = versions.get(instance.datastoreVersionId);
    return {
      instance,
      version,
      datastore: version === undefined ? undefined : datastores.get(version.datastoreId),
      service: services.get(instance.id),
      fault: faults.get(instance.id),
      configuration: detail && instance.configurationId !== null ? configurations.get(instance.configurationId) : undefined,
      progress: tasks.get(instance.id)?.progress ?? undefined,
      backupRunning: withRunningBackup.has(instance.id),
      recoverableWindow: windows.get(instance.id),
      // read with the instance's row (instance-repository.ts): no statement more
      replicaIds: instance.replicaIds ?? [],
    };
  });
}

/** The view data of one instance: a page of one. */
export async function loadInstanceView(store: Repositories, instance: InstanceRow): Promise<InstanceViewData> {
  const [data] = await loadInstanceViews(store, [instance]);
  return data!;
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}
