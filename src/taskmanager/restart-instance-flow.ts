import { restartTaskPayload } from '../bus/index.js';
import { type ActionFlowDeps, endAction, callGuest, messageOf, noTask, startAction, waitUntilHealthy } from './action-flow-support.js';
import { runSteps } from './flow-steps.js';
import type { TaskHandle } from './task-runner.js';

/**
 * restart (reference 3.6): the guest stops and starts the engine, and the action ends once the
 * conductor has a healthy heartbeat. The API set REBOOTING and the service status RESTARTING. A
 * restart that fails leaves a fault and no task, as Trove's (the heartbeats tell the engine's
 * state); the step recorded after the guest answered keeps a resumed task from restarting twice.
 */
export function restartInstanceFlow(deps: ActionFlowDeps) {
  return async (handle: TaskHandle): Promise<void> => {
    const payload = restartTaskPayload.safeParse(handle.task.payload ?? {}).data;
    const started = await startAction(deps, handle, 'REBOOTING', payload?.requestId);
    if (started === undefined) return;
    const { guest, context, log } = started;
    try {
      await runSteps(handle, [
        {
          name: 'restarted',
          run: async () => {
            log.info('restarting the engine');
            await callGuest(deps, handle, 'restart', log, () => guest.restart({}, context));
          },
        },
        {
          name: 'healthy',
          repeatable: true,
          run: async () => {
            if (!(await waitUntilHealthy(deps, handle, 'REBOOTING'))) return;
            await endAction(deps, handle, 'REBOOTING', noTask);
            log.info('engine restarted');
          },
        },
      ]);
    } catch (err) {
      if (handle.signal.aborted) throw err;
      log.error({ err }, 'restart failed');
      await endAction(deps, handle, 'REBOOTING', noTask, `Restart failed: ${messageOf(err)}`);
      throw err;
    }
  };
}
