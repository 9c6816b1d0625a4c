import type { ServiceStatusName, TaskStatusName } from '../../db/index.js';

// What Nova would say of an instance's server, Coffer's engine process on its host: the server
// `status` (nova/api/openstack/common.py's state map) with the vm_state, task_state and
// power_state it is derived from (OS-EXT-STS). The instance's task says what is being done to the
// process; with no task running, the guest's report says whether it runs.

export interface ServerState {
  status: string;
  vmState: string;
  taskState: string | null;
  /** nova.compute.power_state: 0 NOSTATE, 1 RUNNING, 3 PAUSED, 4 SHUTDOWN */
  powerState: number;
}

const running = (status: string, vmState = 'active', taskState: string | null = null): ServerState => ({ status, vmState, taskState, powerState: 1 });
const building: ServerState = { status: 'BUILD', vmState: 'building', taskState: 'spawning', powerState: 0 };
const shutOff = (taskState: string | null = null): ServerState => ({ status: 'SHUTOFF', vmState: 'stopped', taskState, powerState: 4 });
const failed: ServerState = { status: 'ERROR', vmState: 'error', taskState: null, powerState: 0 };

/** The server of an instance at rest, from what its guest last reported of the engine. */
function fromService(service: ServiceStatusName | undefined): ServerState {
  switch (service) {
    case 'NEW':
    case 'BUILDING':
    case 'INSTANCE_READY':
      return building;
    case 'PAUSED':
      return { status: 'PAUSED', vmState: 'paused', taskState: null, powerState: 3 };
    // an engine process that went down is a server Nova's power sync found shut off
    case 'SHUTDOWN':
    case 'CRASHED':
    case 'DELETED':
      return shutOff();
    case 'FAILED':
    case 'FAILED_TIMEOUT_GUESTAGENT':
    case undefined:
      return failed;
    // HEALTHY, RUNNING, BLOCKED, RESTART_REQUIRED, RESTARTING, and UNKNOWN (what reset_status
    // leaves until the next heartbeat: the process still runs, as in Trove's own view)
    default:
      return running('ACTIVE');
  }
}

export function serverState(task: TaskStatusName, service: ServiceStatusName | undefined): ServerState {
  switch (task) {
    // the process could not be started, or not be removed: Nova's server in ERROR. Trove's other
    // error tasks (a guest that never answered, access rules not applied) leave a process running.
    case 'BUILDING_ERROR_SERVER':
    case 'DELETING_ERROR':
      return failed;
    case 'BUILDING':
      return building;
    case 'REBOOTING':
      return running('REBOOT', 'active', 'rebooting');
    case 'RESIZING':
      return running('RESIZE', 'active', 'resize_migrating');
    // Nova's nearest: a server rebuilt on another image keeps its name and address
    case 'UPGRADING':
      return running('REBUILD', 'active', 'rebuilding');
    case 'STOPPED':
      return shutOff();
    case 'STOPPING':
      return running('ACTIVE', 'active', 'powering-off');
    case 'STARTING':
      return shutOff('powering-on');
    case 'DELETING':
      return running('ACTIVE', 'active', 'deleting');
    default:
      return fromService(service);
  }
}
