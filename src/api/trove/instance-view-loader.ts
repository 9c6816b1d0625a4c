import type { DatastoreRow, DatastoreVersionRow, InstanceRow, Repositories, TaskProgress } from '../../db/index.js';
import type { InstanceViewData } from './instance-views.js';
import { recoverableWindow } from './point-in-time.js';

/**
 * Gathers what an instance view shows. Datastores and versions are cached for the life of one
 * request, since a page of instances usually shares a few.
 */
export class InstanceViewLoader {
  private readonly versions = new Map<string, Promise<DatastoreVersionRow | undefined>>();
  private readonly datastores = new Map<string, Promise<DatastoreRow | undefined>>();
  /** for a page: which of its instances have a backup running, asked once for all of them */
  private readonly withRunningBackup: Promise<Set<string>> | undefined;

  /** `page`: the instances a list shows, so that what each view needs of every one is read at once */
  constructor(
    private readonly store: Repositories,
    page?: readonly InstanceRow[],
  ) {
    this.withRunningBackup = page === undefined ? undefined : store.backups.instancesWithRunning(page.map((i) => i.id));
  }

  private async backupRunning(instance: InstanceRow): Promise<boolean> {
    if (this.withRunningBackup !== undefined) return (await this.withRunningBackup).has(instance.id);
    return (await this.store.backups.running(instance.id)).length > 0;
  }

  async load(instance: InstanceRow): Promise<InstanceViewData> {
    const [version, service, fault, configuration, backupRunning, recoverable] = await Promise.all([
      this.version(instance.datastoreVersionId),
      this.store.serviceStatuses.get(instance.id),
      this.store.faults.latest(instance.id),
      instance.configurationId === null ? undefined : this.store.configurations.get(instance.configurationId),
      this.backupRunning(instance),
      // only an instance whose log is archived has a window: the others cost no query
      instance.walArchivedUntil === null ? undefined : recoverableWindow(this.store, instance),
    ]);
    const progress = await this.progress(instance, backupRunning);
    const datastore = version === undefined ? undefined : await this.datastore(version.datastoreId);
    return { instance, datastore, version, service, fault, configuration, progress, backupRunning, recoverableWindow: recoverable };
  }

  /** only an instance with a task in progress (or a backup running) has a task to read it from */
  private async progress(instance: InstanceRow, backupRunning: boolean): Promise<TaskProgress | undefined> {
    if (instance.taskStatus === 'NONE' && !backupRunning) return undefined;
    return (await this.store.tasks.activeForInstance(instance.id))?.progress ?? undefined;
  }

  private version(id: string): Promise<DatastoreVersionRow | undefined> {
    return cached(this.versions, id, () => this.store.datastores.getVersion(id));
  }

  private datastore(id: string): Promise<DatastoreRow | undefined> {
    return cached(this.datastores, id, () => this.store.datastores.getDatastore(id));
  }
}

function cached<T>(cache: Map<string, Promise<T>>, id: string, load: () => Promise<T>): Promise<T> {
  let found = cache.get(id);
  if (found === undefined) {
    found = load();
    cache.set(id, found);
  }
  return found;
}
