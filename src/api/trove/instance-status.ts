import type { ServiceStatusName, ServiceStatusRow, TaskStatusName } from '../../db/index.js';

// The API's `status` and `operating_status` (reference 3.3, 3.4). Trove derives `status` from the
// task and Nova's server status; Coffer has no Nova, so the guest-reported service status stands
// in for the server when no task is running. The database's own health shows in
// `operating_status`, and only while no task runs and the instance is up.

/** Trove's `api_status` of each service status (reference 3.1). */
export const serviceApiStatus: Readonly<Record<ServiceStatusName, string>> = Object.freeze({
  NEW: 'NEW',
  BUILDING: 'BUILD',
  INSTANCE_READY: 'BUILD',
  HEALTHY: 'HEALTHY',
  RUNNING: 'ACTIVE',
  BLOCKED: 'BLOCKED',
  PAUSED: 'SHUTDOWN',
  SHUTDOWN: 'SHUTDOWN',
  CRASHED: 'SHUTDOWN',
  FAILED: 'FAILED',
  DELETED: 'DELETED',
  UNKNOWN: 'ERROR',
  FAILED_TIMEOUT_GUESTAGENT: 'ERROR',
  RESTART_REQUIRED: 'RESTART_REQUIRED',
  RESTARTING: 'RESTARTING',
});

/**
 * What Nova's server status would be, read from the service status. UNKNOWN is what
 * reset_status leaves until the next heartbeat: the host still runs, as Nova's server would,
 * so the instance shows ACTIVE with operating_status ERROR (reference 3.6).
 */
const serverStatus: Readonly<Record<ServiceStatusName, string>> = Object.freeze({
  NEW: 'BUILD',
  BUILDING: 'BUILD',
  INSTANCE_READY: 'BUILD',
  HEALTHY: 'ACTIVE',
  RUNNING: 'ACTIVE',
  BLOCKED: 'ACTIVE',
  RESTART_REQUIRED: 'ACTIVE',
  RESTARTING: 'ACTIVE',
  PAUSED: 'SHUTDOWN',
  SHUTDOWN: 'SHUTDOWN',
  CRASHED: 'SHUTDOWN',
  DELETED: 'SHUTDOWN',
  UNKNOWN: 'ACTIVE',
  FAILED: 'ERROR',
  FAILED_TIMEOUT_GUESTAGENT: 'ERROR',
});

export function serverStatusOf(service: ServiceStatusName | undefined): string {
  return service === undefined ? 'ERROR' : (serverStatus[service] ?? 'UNKNOWN');
}

/** Trove's task `action`: an error task names the action that failed (reference 3.2). */
export function taskAction(task: TaskStatusName): string {
  if (task.startsWith('BUILDING_ERROR')) return 'BUILDING';
  const failed = /^([A-Z]+)_ERROR/.exec(task);
  return failed?.[1] ?? task;
}

/** First match wins, as in Trove's SimpleInstance.status; `backupRunning`: a backup of it is NEW, BUILDING or SAVING. */
export function instanceStatus(task: TaskStatusName, service: ServiceStatusName | undefined, backupRunning = false): string {
  // Trove's is_error tasks: BUILDING_ERROR_*, UPDATING_ERROR_ACCESS, and Coffer's DELETING_ERROR.
  if (task.includes('_ERROR')) return 'ERROR';
  switch (task) {
    case 'BUILDING':
      return 'BUILD';
    case 'REBOOTING':
      return 'REBOOT';
    case 'RESIZING':
      return 'RESIZE';
    case 'RESTART_REQUIRED':
      return 'RESTART_REQUIRED';
    case 'DELETING':
      return 'SHUTDOWN';
    // Coffer's stop and start (issue 13). SHUTOFF is Nova's word for a server its owner stopped
    // (Trove's own SHUTDOWN means a database that went down, or an instance being deleted).
    case 'STOPPED':
      return 'SHUTOFF';
    case 'STOPPING':
      return 'STOPPING';
    case 'STARTING':
      return 'STARTING';
    case 'DETACHING':
      return 'DETACH';
    case 'PROMOTING':
      return 'PROMOTE';
    case 'EJECTING':
      return 'EJECT';
    case 'UPGRADING':
      return 'UPGRADE';
    default:
      // NONE and UPDATING fall through to a running backup, then the server status, as
      // MIGRATING/UPDATING do in Trove.
      return backupRunning ? 'BACKUP' : serverStatusOf(service);
  }
}

export interface OperatingStatusInput {
  task: TaskStatusName;
  /** the result of instanceStatus without backups: a backup leaves the database's health showing, as Nova's ACTIVE server does in Trove */
  status: string;
  service: ServiceStatusRow | undefined;
  now: Date;
  heartbeatExpirySeconds: number;
}

/** An instance at rest: no task runs, it only waits for its owner (a stopped one to be started). */
function atRest(task: TaskStatusName, status: string): boolean {
  return (task === 'NONE' && (status === 'ACTIVE' || status === 'SHUTDOWN')) || (task === 'STOPPED' && status === 'SHUTOFF');
}

export function operatingStatus(input: OperatingStatusInput): string {
  const { task, status, service } = input;
  // a stopped instance shows its guest's word (SHUTDOWN), or ERROR once the guest fell silent
  if (!atRest(task, status) || service === undefined) return '';
  // A guest silent for longer than the expiry is reported as failed (not persisted), except
  // while a restart is pending: Trove's FAILED_TIMEOUT_GUESTAGENT read-time override.
  const ageMs = input.now.getTime() - service.updatedAt.getTime();
  if (service.status !== 'RESTART_REQUIRED' && ageMs > input.heartbeatExpirySeconds * 1000) return 'ERROR';
  return serviceApiStatus[service.status];
}

/**
 * The service status the management views show of an instance at rest: a guest silent for
 * longer than the expiry shows as timed out, as operating_status shows it (the same read-time
 * override), so a silent guest shows at once without anyone asking it.
 */
export function guestServiceStatus(service: ServiceStatusRow, now: Date, heartbeatExpirySeconds: number): ServiceStatusName {
  const ageMs = now.getTime() - service.updatedAt.getTime();
  if (service.status !== 'RESTART_REQUIRED' && ageMs > heartbeatExpirySeconds * 1000) return 'FAILED_TIMEOUT_GUESTAGENT';
  return service.status;
}
