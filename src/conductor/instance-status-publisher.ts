import { publishInstanceStatus, type GuestServiceStatus, type Transport } from '../bus/index.js';
import type { Logger } from '../common/index.js';

/** A service status the conductor has just recorded (committed) for an instance. */
export interface StatusChange {
  instanceId: string;
  status: GuestServiceStatus;
  at: Date;
  requestId: string;
}

/**
 * Tells every taskmanager that an instance's service status changed, so a flow waiting on it
 * wakes now rather than at its next safety-net poll. Never fails the heartbeat: the status is
 * recorded already, and a lost event only costs a waiter that poll.
 */
export function instanceStatusPublisher(transport: Transport, logger: Logger): (change: StatusChange) => void {
  return (change) => {
    publishInstanceStatus(
      transport,
      { instanceId: change.instanceId, status: change.status, at: change.at.getTime() },
      { requestId: change.requestId, instanceId: change.instanceId },
    ).catch((err: unknown) => logger.debug({ instanceId: change.instanceId, err }, 'could not publish a status change'));
  };
}
