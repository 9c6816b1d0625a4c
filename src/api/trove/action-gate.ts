import { CofferError } from '../../common/index.js';
import type { InstanceRow, Repositories, ServiceStatusName, ServiceStatusRow } from '../../db/index.js';
import { instanceStatus, serverStatusOf, taskAction } from './instance-status.js';

// Trove's validate_can_perform_action (reference 3.5), the gate of restart, resize and the
// replication actions: 422 with the first reason found. Coffer has no Nova: the server status is
// read from the service status, where SHUTDOWN means a stopped database on a running host (Nova
// would say ACTIVE), so only BUILD and ERROR fail the first check.

/** Trove's "action allowed" service statuses. */
const actionAllowed = new Set<ServiceStatusName>(['RUNNING', 'SHUTDOWN', 'CRASHED', 'BLOCKED', 'HEALTHY', 'RESTART_REQUIRED']);

export interface GateInput {
  instance: InstanceRow;
  /** a backup of the instance is NEW, BUILDING or SAVING */
  backupRunning: boolean;
  service: ServiceStatusRow | undefined;
  now: Date;
  heartbeatExpirySeconds: number;
}

export function notAvailable(instanceId: string, statusType: 'instance' | 'task', status: string): CofferError {
  return new CofferError(
    'UnprocessableEntity',
    `Instance ${instanceId} is not currently available for an action to be performed (${statusType} status was ${status}).`,
  );
}

export function validateCanPerformAction({ instance, service, now, heartbeatExpirySeconds, backupRunning }: GateInput): void {
  const server = serverStatusOf(service?.status);
  if (server === 'BUILD' || server === 'ERROR') throw notAvailable(instance.id, 'instance', server);
  if (instance.taskStatus !== 'NONE' && instance.taskStatus !== 'RESTART_REQUIRED') {
    throw notAvailable(instance.id, 'task', taskAction(instance.taskStatus));
  }
  // A guest silent for longer than the expiry is FAILED_TIMEOUT_GUESTAGENT, as in the views:
  // nothing would answer the action.
  const silent = service !== undefined && now.getTime() - service.updatedAt.getTime() > heartbeatExpirySeconds * 1000;
  if (service === undefined || !actionAllowed.has(service.status) || (silent && service.status !== 'RESTART_REQUIRED')) {
    throw notAvailable(instance.id, 'instance', instanceStatus(instance.taskStatus, service?.status));
  }
  if (backupRunning) throw notAvailable(instance.id, 'instance', 'BACKUP');
}

/** The gate for `instance` as the store has it now: its service status and whether a backup of it runs. */
export async function gateAction(store: Repositories, instance: InstanceRow, heartbeatExpirySeconds: number): Promise<void> {
  validateCanPerformAction({
    instance,
    service: await store.serviceStatuses.get(instance.id),
    backupRunning: (await store.backups.running(instance.id)).length > 0,
    now: new Date(),
    heartbeatExpirySeconds,
  });
}
