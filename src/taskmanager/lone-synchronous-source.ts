import { createRpcClient, guestContract, guestTopic, type RequestContext, type Transport } from '../bus/index.js';
import { newUuid, type Logger } from '../common/index.js';
import type { StateStore } from '../db/index.js';

/**
 * A synchronous primary whose last replica leaves (deleted or detached) would make every commit
 * wait for ever: it becomes asynchronous, and its owner is told. Failing to reach it leaves a
 * fault saying what to do.
 */
export async function releaseSynchronousSource(
  deps: { store: StateStore; transport: Transport; logger: Logger },
  sourceId: string,
  leavingReplicaId: string,
  context: RequestContext,
): Promise<void> {
  const source = await deps.store.instances.get(sourceId);
  if (source === undefined || source.synchronousReplication !== true) return;
  if ((source.replicaIds ?? []).some((id) => id !== leavingReplicaId)) return;
  const guest = createRpcClient(deps.transport, guestContract, guestTopic(sourceId));
  const now = new Date();
  try {
    await guest.setSynchronous({ synchronous: false }, { ...context, instanceId: sourceId });
    await deps.store.transaction(async (tx) => {
      await tx.instances.update(sourceId, { synchronousReplication: false });
      // a warning names the status the instance keeps, as the heartbeats' warnings do
      await tx.instanceEvents.record({
        instanceId: sourceId,
        type: 'warning',
        name: (await tx.serviceStatuses.get(sourceId))?.status ?? 'HEALTHY',
        message: `Its last replica ${leavingReplicaId} left: commits no longer wait for a replica.`,
        createdAt: now,
      });
    });
  } catch (err) {
    deps.logger.error({ err, sourceId }, 'a synchronous primary left without replicas could not be made asynchronous');
    const message = `Its last replica left but synchronous replication could not be turned off, so commits wait: PATCH /instances/${sourceId}/replication with synchronous false.`;
    await deps.store.faults.record({ id: newUuid(), instanceId: sourceId, message: message.slice(0, 255), details: message, createdAt: now });
  }
}
