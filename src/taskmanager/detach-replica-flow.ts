import { createRpcClient, deleteInstanceTaskPayload, guestContract, guestTopic } from '../bus/index.js';
import { newUuid } from '../common/index.js';
import { type ActionFlowDeps, callGuest, endAction, messageOf, noTask, startAction } from './action-flow-support.js';
import { runSteps } from './flow-steps.js';
import { releaseSynchronousSource } from './lone-synchronous-source.js';
import type { TaskHandle } from './task-runner.js';

/**
 * detach_replica (reference 2.2 "detach replica", 3.6 "Detach"): the API set DETACHING on a
 * replica. Its guest promotes it to a standalone, writable primary; then its former primary's
 * guest drops the replica's slot, role and access rule (a slot left behind would keep WAL for a
 * replica that never comes back), and the instance is no replica any more. A failed promotion
 * leaves it a replica (task NONE, a fault saying why); asking again retries it.
 */
export function detachReplicaFlow(deps: ActionFlowDeps) {
  return async (handle: TaskHandle): Promise<void> => {
    const requestId = deleteInstanceTaskPayload.safeParse(handle.task.payload ?? {}).data?.requestId;
    const started = await startAction(deps, handle, 'DETACHING', requestId);
    if (started === undefined) return;
    const { instance, guest, context, log } = started;
    try {
      await runSteps(handle, [
        {
          name: 'promoted',
          run: async () => {
            await callGuest(deps, handle, 'detachReplica', log, () => guest.detachReplica({}, context));
            log.info({ sourceId: instance.replicaOfId }, 'replica promoted to a standalone primary');
          },
        },
        {
          name: 'source-released',
          run: async () => {
            const sourceId = instance.replicaOfId;
            const source = sourceId == null ? undefined : await deps.store.instances.get(sourceId);
            if (source === undefined) return;
            const sourceGuest = createRpcClient(deps.transport, guestContract, guestTopic(source.id));
            await releaseSynchronousSource(deps, source.id, instance.id, { ...context, instanceId: source.id });
            try {
              await callGuest(deps, handle, 'removeReplica', log, () => sourceGuest.removeReplica({ replicaId: instance.id }, { ...context, instanceId: source.id }));
            } catch (err) {
              if (handle.signal.aborted) throw err;
              // the replica is detached all the same; the primary's owner learns what it still keeps
              const message = `The replication slot of detached replica ${instance.id} could not be dropped: ${messageOf(err)}`;
              log.error({ err, sourceId: source.id }, 'could not drop the detached replica\'s slot on its primary');
              await deps.store.faults.record({ id: newUuid(), instanceId: source.id, message: message.slice(0, 255), details: message, createdAt: new Date() });
            }
          },
        },
        {
          name: 'ended',
          repeatable: true,
          run: async () => {
            await endAction(deps, handle, 'DETACHING', { ...noTask, replicaOfId: null });
            log.info('replica detached');
          },
        },
      ]);
    } catch (err) {
      if (handle.signal.aborted) throw err;
      log.error({ err }, 'detaching the replica failed');
      await endAction(deps, handle, 'DETACHING', noTask, `Detaching the replica failed: ${messageOf(err)}`);
      throw err;
    }
  };
}
