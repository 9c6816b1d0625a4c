import type { NotificationPublisher } from '../bus/index.js';
import type { Logger } from '../common/index.js';
import type { InstanceRow, StateStore, TaskKind, TaskRow } from '../db/index.js';

// Trove's usage notifications (reference 7.2): `trove.instance.create` once an instance is
// ACTIVE, `.delete` once it is gone, `.modify_flavor` and `.modify_volume` once a resize is done,
// each with Trove's payload, so that billing which counts Trove's instances counts Coffer's.
// Sent after the task's end is recorded; a notification that cannot be sent is logged, and the
// task stays done.

/** Trove's notification_service_id defaults, by datastore manager */
const serviceIds: Readonly<Record<string, string>> = {
  mysql: '2f3ff068-2bfb-4f70-9a9d-a6bb65bc084b',
  mariadb: '7a4f82cc-10d2-4bc6-aadc-d9aacc2a3cb5',
  postgresql: 'ac277e0d-4f21-40aa-b347-1ea31e571720',
  redis: 'b216ffc5-1947-456c-a4cf-70f94c05f7d0',
};
const unknownServiceId = 'unknown-service-id-error';

const eventOf: Partial<Record<TaskKind, string>> = {
  create_instance: 'trove.instance.create',
  delete_instance: 'trove.instance.delete',
  resize_flavor: 'trove.instance.modify_flavor',
  resize_volume: 'trove.instance.modify_volume',
};

/** oslo's timeutils.isotime: seconds, with a Z */
export function isoTime(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

function tookEffect(task: TaskRow, instance: InstanceRow): boolean {
  const payload = task.payload as Record<string, unknown> | null;
  switch (task.kind) {
    case 'create_instance':
      return !instance.deleted && !instance.taskStatus.includes('ERROR');
    case 'delete_instance':
      return instance.deleted;
    case 'resize_flavor':
      return instance.flavorId === payload?.['newFlavorId'];
    case 'resize_volume':
      return typeof payload?.['newSizeGb'] === 'number' && instance.volumeSizeGb >= payload['newSizeGb'];
    default:
      return false;
  }
}

export interface UsageNotifierOptions {
  store: StateStore;
  publisher: NotificationPublisher;
  logger: Logger;
  /** Trove's `region` option */
  region: string;
}

export class UsageNotifier {
  constructor(private readonly options: UsageNotifierOptions) {}

  /**
   * What the task runner calls when a task ended. Only a create, delete or resize that took
   * effect notifies, judged by the instance as the task left it: a flow that met a failure it
   * could name ends as done (with a fault), and a fault from a heartbeat during a task that went
   * well says nothing of the task.
   */
  async taskEnded(task: TaskRow, outcome: 'done' | 'failed'): Promise<void> {
    const eventType = eventOf[task.kind];
    if (eventType === undefined || outcome !== 'done') return;
    try {
      const payload = await this.payload(task);
      if (payload === undefined) return;
      await this.options.publisher.publish(eventType, payload);
    } catch (err) {
      this.options.logger.warn({ err, instanceId: task.instanceId, eventType }, 'usage notification not sent');
    }
  }

  private async payload(task: TaskRow): Promise<Record<string, unknown> | undefined> {
    const { store, region } = this.options;
    const instance = await store.instances.get(task.instanceId, { includeDeleted: true });
    // Coffer's own scratch instances (backup verification) are nobody's usage
    if (instance === undefined || instance.internal === true || !tookEffect(task, instance)) return undefined;
    const [flavor, version] = await Promise.all([store.flavors.get(instance.flavorId), store.datastores.getVersion(instance.datastoreVersionId)]);
    const created = isoTime(instance.createdAt);
    const state = instance.deleted ? 'DELETED' : 'ACTIVE';
    const base: Record<string, unknown> = {
      availability_zone: null,
      created_at: created,
      name: instance.name,
      instance_id: instance.id,
      instance_name: instance.name,
      instance_size: flavor?.ramMb ?? null,
      instance_type: flavor?.name ?? null,
      instance_type_id: instance.flavorId,
      launched_at: created,
      nova_instance_id: instance.host,
      region,
      state_description: state,
      state,
      tenant_id: instance.tenantId,
      user_id: null,
      volume_size: instance.volumeSizeGb,
      nova_volume_id: null,
      service_id: (version === undefined ? undefined : serviceIds[version.manager]) ?? unknownServiceId,
    };
    const payload = task.payload as Record<string, unknown> | null;
    switch (task.kind) {
      case 'delete_instance':
        return { ...base, deleted_at: isoTime(instance.deletedAt ?? new Date()) };
      case 'resize_flavor': {
        const oldFlavorId = typeof payload?.['oldFlavorId'] === 'string' ? payload['oldFlavorId'] : undefined;
        const old = oldFlavorId === undefined ? undefined : await store.flavors.get(oldFlavorId);
        return { ...base, old_instance_size: old?.ramMb ?? null, modify_at: isoTime(new Date()) };
      }
      case 'resize_volume':
        return { ...base, old_volume_size: typeof payload?.['oldSizeGb'] === 'number' ? payload['oldSizeGb'] : null, modify_at: isoTime(new Date()) };
      default:
        return base;
    }
  }
}
