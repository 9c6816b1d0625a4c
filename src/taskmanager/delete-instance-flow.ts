import { agentContract, agentTopic, createRpcClient, deleteInstanceTaskPayload, guestContract, guestTopic, type Transport } from '../bus/index.js';
import { newUuid, type Logger } from '../common/index.js';
import type { StateStore } from '../db/index.js';
import { isTransientBusError, retryTransient } from './flow-support.js';
import { releaseSynchronousSource } from './lone-synchronous-source.js';
import type { TaskHandle } from './task-runner.js';

export interface DeleteFlowDeps {
  store: StateStore;
  transport: Transport;
  logger: Logger;
  /** how long to keep trying to reach the instance's agent */
  deleteTimeoutMs: number;
}

/**
 * delete_instance: the agent stops the engine and removes its directory and address, then the
 * row is soft-deleted. Both steps are idempotent, so a resumed task simply runs them again.
 */
export function deleteInstanceFlow(deps: DeleteFlowDeps) {
  return async (handle: TaskHandle): Promise<void> => {
    const { store, transport, logger } = deps;
    const instanceId = handle.task.instanceId;
    const instance = await store.instances.get(instanceId);
    if (instance === undefined) return;
    // The request id only names log lines: a payload without one must not stop a delete.
    const requestId = deleteInstanceTaskPayload.safeParse(handle.task.payload ?? {}).data?.requestId;
    const context = { requestId: requestId ?? `req-${newUuid()}`, instanceId };
    try {
      if (instance.host !== null) {
        const agent = createRpcClient(transport, agentContract, agentTopic(instance.host));
        await retryTransient(`deleteServer on ${instance.host}`, () => agent.deleteServer({ instanceId }, context), {
          deadline: Date.now() + deps.deleteTimeoutMs,
          signal: handle.signal,
          logger: logger.child({ instanceId }),
        });
      }
      if (instance.replicaOfId != null) await releaseFromSource(deps, instance.replicaOfId, instanceId, context, handle.signal);
      const now = new Date();
      await store.transaction(async (tx) => {
        await tx.instances.markDeleted(instanceId, now);
        await tx.serviceStatuses.set({ instanceId, status: 'DELETED', updatedAt: now });
      });
    } catch (err) {
      if (handle.signal.aborted) throw err;
      // Only an agent that could not be reached is the operator's to fix by starting it.
      const message =
        `Delete failed: ${err instanceof Error ? err.message : String(err)}` +
        (isTransientBusError(err) ? ` Start the agent of host ${instance.host} and delete the instance again.` : ' Delete the instance again.');
      await store.transaction(async (tx) => {
        await tx.faults.record({ id: newUuid(), instanceId, message: message.slice(0, 255), details: message, createdAt: new Date() });
        await tx.instances.update(instanceId, { taskStatus: 'DELETING_ERROR', taskDescription: 'Delete error.' });
      });
      throw err;
    }
  };
}

/**
 * A deleted replica's primary drops its slot, role and access rule: a slot left behind would keep
 * WAL for a replica that never comes back. The delete goes on when the primary cannot be reached
 * (its owner sees a fault on it); the replica is gone either way.
 */
async function releaseFromSource(deps: DeleteFlowDeps, sourceId: string, replicaId: string, context: { requestId: string }, signal: AbortSignal): Promise<void> {
  const source = await deps.store.instances.get(sourceId);
  if (source === undefined) return;
  const log = deps.logger.child({ instanceId: replicaId, sourceId });
  const guest = createRpcClient(deps.transport, guestContract, guestTopic(sourceId));
  await releaseSynchronousSource(deps, sourceId, replicaId, { ...context, instanceId: sourceId });
  try {
    await retryTransient(`removeReplica on ${sourceId}`, () => guest.removeReplica({ replicaId }, { ...context, instanceId: sourceId }), {
      deadline: Date.now() + deps.deleteTimeoutMs,
      signal,
      logger: log,
    });
  } catch (err) {
    if (signal.aborted) throw err;
    const message = `The replication slot of deleted replica ${replicaId} could not be dropped: ${err instanceof Error ? err.message : String(err)}`;
    log.error({ err }, "could not drop the deleted replica's slot on its primary");
    await deps.store.faults.record({ id: newUuid(), instanceId: sourceId, message: message.slice(0, 255), details: message, createdAt: new Date() });
  }
}
