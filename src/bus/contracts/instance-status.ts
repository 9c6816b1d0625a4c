import { z } from 'zod';
import type { Logger } from '../../common/index.js';
import type { RequestContext, Subscription, Transport } from '../transport.js';
import { servesVersion } from '../contract.js';
import { guestServiceStatus } from './conductor.js';

// Published (fanout) topic `instance-status`: the conductor says that it recorded a new service
// status, and every taskmanager hears it. A hint that wakes a waiting flow at once; the state DB
// stays the truth, and a lost event costs only a waiter's safety-net poll.

export const instanceStatusTopic = 'instance-status';
const service = 'instance-status';
// 1.1: events about a backup of the instance (backupId, no status)
const version = '1.1';

export const instanceStatusEvent = z.object({
  instanceId: z.string(),
  /** the service status recorded; absent on an event about one of the instance's backups */
  status: guestServiceStatus.optional(),
  /** the backup whose state the conductor recorded */
  backupId: z.string().optional(),
  /** when the conductor recorded it, epoch milliseconds */
  at: z.number(),
});
export type InstanceStatusEvent = z.infer<typeof instanceStatusEvent>;

export function publishInstanceStatus(transport: Transport, event: InstanceStatusEvent, context: RequestContext): Promise<void> {
  return transport.publish(instanceStatusTopic, {
    service,
    version,
    method: 'statusChanged',
    args: instanceStatusEvent.parse(event),
    context,
    sentAt: performance.timeOrigin + performance.now(),
  });
}

/** Hands every readable status event to `handler`; what it cannot read is logged and dropped. */
export function listenInstanceStatus(transport: Transport, handler: (event: InstanceStatusEvent) => void, logger: Logger): Promise<Subscription> {
  return transport.listen(instanceStatusTopic, async (message) => {
    const event = message.service === service && servesVersion(version, message.version) ? instanceStatusEvent.safeParse(message.args) : undefined;
    if (event?.success !== true) {
      logger.debug({ service: message.service, version: message.version }, 'unreadable instance status event dropped');
      return;
    }
    handler(event.data);
  });
}
