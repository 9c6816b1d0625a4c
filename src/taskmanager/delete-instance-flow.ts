import { agentContract, agentTopic, createRpcClient, deleteInstanceTaskPayload, type Transport } from '../bus/index.js';
import { newUuid, type Logger } from '../common/index.js';
import type { StateStore } from '../db/index.js';
import { isTransientBusError, retryTransient } from './flow-support.js';
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
