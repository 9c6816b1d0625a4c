import { createRpcClient, taskmanagerContract, taskmanagerTopic, type RequestContext } from '../../bus/index.js';
import type { TroveDeps } from './trove-deps.js';

/**
 * The task row is the durable record; the cast only wakes a taskmanager. If it fails the task
 * still runs at the next sweep, so the request succeeds and the failure is only logged.
 */
export async function wakeTaskmanager(
  deps: Pick<TroveDeps, 'transport' | 'logger'>,
  taskId: string,
  context: RequestContext,
): Promise<void> {
  try {
    await createRpcClient(deps.transport, taskmanagerContract, taskmanagerTopic).runTask({ taskId }, context);
  } catch (err) {
    deps.logger.warn({ err, taskId, requestId: context.requestId, instanceId: context.instanceId }, 'taskmanager cast failed; the task waits for the next sweep');
  }
}
