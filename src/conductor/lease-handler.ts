import type { z } from 'zod';
import type { conductorContract } from '../bus/index.js';
import type { Logger, PrimaryLeaseTimes } from '../common/index.js';
import type { StateStore } from '../db/index.js';

type LeaseAnswer = z.output<typeof conductorContract.methods.renewLease.output>;

/**
 * A primary's lease renewal. The renewal itself is one conditional UPDATE (renewLease), so a
 * failover that claimed the primary first refuses it, and one that comes after finds the lease
 * fresh and waits. What is not renewed says why: a primary with nothing to fail over to needs
 * no lease; one a failover replaces must stay down.
 */
export function leaseHandler(store: StateStore, logger: Logger, times: PrimaryLeaseTimes) {
  return async ({ instanceId, holdMs }: { instanceId: string; holdMs?: number | undefined }): Promise<LeaseAnswer> => {
    // A longer hold is recorded as a renewal in the future, so the failover watch's arithmetic
    // (a failover once the last renewal is failoverAfterMs old) holds for it unchanged.
    const ttlMs = Math.min(Math.max(holdMs ?? times.ttlMs, times.ttlMs), times.restartHoldMs);
    if (await store.instances.renewLease(instanceId, new Date(Date.now() + ttlMs - times.ttlMs))) {
      const instance = await store.instances.get(instanceId);
      // renewed a primary whose last replica just went: held all the same, it ends at the next ask
      if ((instance?.replicaIds?.length ?? 0) > 0) return { lease: 'held', ttlMs };
      return { lease: 'none' };
    }
    const instance = await store.instances.get(instanceId);
    if (instance === undefined) return { lease: 'none' };
    if (instance.fencedAt != null || instance.replicaOfId != null) {
      logger.warn({ instanceId }, 'lease refused: a failover replaces this primary');
      return { lease: 'fenced' };
    }
    return { lease: 'none' };
  };
}
