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

/** Trove's gate on a stopped instance: its wording, and what to do about it. */
export function stoppedInstance(instanceId: string): CofferError {
  return new CofferError(
    'UnprocessableEntity',
    `Instance ${instanceId} is not currently available for an action to be performed (instance status was SHUTOFF). ` +
      'It is stopped: start it first.',
  );
}

export function validateCanPerformAction({ instance, service, now, heartbeatExpirySeconds, backupRunning }: GateInput): void {
  if (instance.taskStatus === 'STOPPED') throw stoppedInstance(instance.id);
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
export function gateAction(store: Repositories, instance: InstanceRow, heartbeatExpirySeconds: number): Promise<void> {
  return gateWith(store, instance, heartbeatExpirySeconds, validateCanPerformAction);
}

// Coffer's stop and start (issue 13) answer a state that does not allow them with 409 Conflict,
// in the words of Trove's gate: they are ours, and a conflict is what they meet (the instance is
// already stopped, or not yet). Trove's own actions keep Trove's 422.

function conflict(instanceId: string, status: string, hint = ''): CofferError {
  return new CofferError('Conflict', `Instance ${instanceId} is not currently available for an action to be performed (instance status was ${status}).${hint}`);
}

/**
 * Stop: an ACTIVE instance (a restart still owed counts: the next start makes it), with a guest
 * that answers and no backup running; anything else is a conflict.
 */
export function validateCanStop(input: GateInput): void {
  const { instance, service, backupRunning } = input;
  if (instance.taskStatus === 'STOPPED') throw conflict(instance.id, 'SHUTOFF', ' It is already stopped.');
  const status = instanceStatus(instance.taskStatus, service?.status, backupRunning);
  if (status !== 'ACTIVE' && status !== 'RESTART_REQUIRED') throw conflict(instance.id, status);
  if (service !== undefined && input.now.getTime() - service.updatedAt.getTime() > input.heartbeatExpirySeconds * 1000) {
    throw conflict(instance.id, status, ` Its guest has not reported for over ${input.heartbeatExpirySeconds} s (operating_status ERROR): nothing would stop the engine.`);
  }
  try {
    validateCanPerformAction(input);
  } catch (err) {
    if (err instanceof CofferError && err.code === 'UnprocessableEntity') throw new CofferError('Conflict', err.message);
    throw err;
  }
}

/** Start: only a stopped instance (SHUTOFF). */
export function validateCanStart(input: GateInput): void {
  const { instance, service, backupRunning } = input;
  if (instance.taskStatus === 'STOPPED') return;
  const status = instanceStatus(instance.taskStatus, service?.status, backupRunning);
  throw conflict(instance.id, status, status === 'ACTIVE' || status === 'RESTART_REQUIRED' ? ' It is not stopped.' : '');
}

/** `check` (a gate above) on `instance` as the store has it now. */
export async function gateWith(store: Repositories, instance: InstanceRow, heartbeatExpirySeconds: number, check: (input: GateInput) => void): Promise<void> {
  check({
    instance,
    service: await store.serviceStatuses.get(instance.id),
    backupRunning: (await store.backups.running(instance.id)).length > 0,
    now: new Date(),
    heartbeatExpirySeconds,
  });
}
