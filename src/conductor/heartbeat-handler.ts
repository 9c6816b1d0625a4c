import type { z } from 'zod';
import type { conductorContract } from '../bus/contracts/conductor.js';
import type { MessageMeta } from '../bus/rpc-server.js';
import { newUuid } from '../common/ids.js';
import type { Logger } from '../common/logger.js';
import type { StateStore } from '../db/index.js';

type Heartbeat = z.output<typeof conductorContract.methods.heartbeat.input>;

/**
 * A guest heartbeat becomes the instance's service status. Messages can arrive late or twice
 * (redelivery, competing conductors): one older than the newest seen for the instance is dropped,
 * as Trove's conductor does with its `sent` stamp.
 */
export function heartbeatHandler(store: StateStore, logger: Logger) {
  return async (beat: Heartbeat, meta: MessageMeta): Promise<void> => {
    const fresh = await store.conductorLastSeen.recordIfNewer(beat.instanceId, 'heartbeat', meta.sentAt);
    if (!fresh) {
      logger.debug({ instanceId: beat.instanceId }, 'stale heartbeat dropped');
      return;
    }
    const instance = await store.instances.get(beat.instanceId);
    if (instance === undefined) return; // deleted meanwhile: its last words don't matter
    const current = await store.serviceStatuses.get(beat.instanceId);
    if (current?.status === 'RESTART_REQUIRED') return;
    const now = new Date();
    await store.transaction(async (tx) => {
      await tx.serviceStatuses.set({ instanceId: beat.instanceId, status: beat.status, updatedAt: now });
      if ((beat.status === 'FAILED' || beat.status === 'CRASHED') && beat.message !== undefined) {
        await tx.faults.record({
          id: newUuid(),
          instanceId: beat.instanceId,
          message: beat.message.slice(0, 255),
          details: beat.message,
          createdAt: now,
        });
      }
    });
  };
}
