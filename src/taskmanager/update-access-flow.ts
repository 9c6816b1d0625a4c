import { updateAccessTaskPayload } from '../bus/index.js';
import { type ActionFlowDeps, endAction, callGuest, desiredGeneration, messageOf, noTask, recordApplied, startAction } from './action-flow-support.js';
import { runSteps } from './flow-steps.js';
import type { TaskHandle } from './task-runner.js';

/**
 * update_access (reference 2.2): the API recorded the wanted access on the instance and set
 * UPDATING; the guest rewrites the engine's access rules from that record (pg_hba, user host
 * patterns) on the running engine. A failure leaves UPDATING_ERROR_ACCESS (status ERROR) and a
 * fault; asking for the access again retries it, and reset_status clears it.
 */
export function updateAccessFlow(deps: ActionFlowDeps) {
  return async (handle: TaskHandle): Promise<void> => {
    const payload = updateAccessTaskPayload.safeParse(handle.task.payload ?? {}).data;
    const started = await startAction(deps, handle, 'UPDATING', payload?.requestId);
    if (started === undefined) return;
    const { instance, guest, context, log } = started;
    try {
      const resume = payload?.resumeTask ?? 'NONE';
      await runSteps(handle, [
        {
          name: 'applied',
          run: async () => {
            const generation = await desiredGeneration(deps, instance.id);
            log.info({ access: instance.access, generation }, 'applying access rules');
            const outcome = await callGuest(deps, handle, 'updateAccess', log, () => guest.updateAccess({ access: instance.access, generation }, context));
            await recordApplied(deps, instance.id, outcome.generation);
          },
        },
        {
          name: 'ended',
          repeatable: true,
          run: async () => {
            await endAction(deps, handle, 'UPDATING', resume === 'NONE' ? noTask : { ...noTask, taskStatus: resume, taskDescription: 'Restart required.' });
            log.info('access rules applied');
          },
        },
      ]);
    } catch (err) {
      if (handle.signal.aborted) throw err;
      log.error({ err }, 'access update failed');
      await endAction(
        deps,
        handle,
        'UPDATING',
        { taskStatus: 'UPDATING_ERROR_ACCESS', taskDescription: 'Access update error.' },
        `Updating the access rules failed: ${messageOf(err)}`,
      );
      throw err;
    }
  };
}
