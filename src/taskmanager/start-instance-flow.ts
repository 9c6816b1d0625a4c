import { startTaskPayload } from '../bus/index.js';
import { type ActionFlowDeps, callGuest, endAction, messageOf, noTask, startAction, waitUntilHealthy } from './action-flow-support.js';
import { runSteps } from './flow-steps.js';
import { stoppedTask } from './stop-instance-flow.js';
import type { TaskHandle } from './task-runner.js';

/**
 * Coffer's start of a stopped instance (issue 13): the guest records that the engine runs again
 * and starts it on the data it left; the action ends once the conductor has a healthy heartbeat.
 * The API set STARTING. A start that fails asks the guest to keep the engine stopped again and
 * leaves the instance stopped with a fault, so that its owner can try again.
 */
export function startInstanceFlow(deps: ActionFlowDeps) {
  return async (handle: TaskHandle): Promise<void> => {
    const payload = startTaskPayload.safeParse(handle.task.payload ?? {}).data;
    const started = await startAction(deps, handle, 'STARTING', payload?.requestId);
    if (started === undefined) return;
    const { guest, context, log } = started;
    try {
      await runSteps(handle, [
        {
          name: 'started',
          run: async () => {
            log.info('starting the engine');
            await callGuest(deps, handle, 'start', log, () => guest.startDb({}, context));
          },
        },
        {
          name: 'healthy',
          repeatable: true,
          run: async () => {
            if (!(await waitUntilHealthy(deps, handle, 'STARTING'))) return;
            await endAction(deps, handle, 'STARTING', noTask);
            log.info('instance started');
          },
        },
      ]);
    } catch (err) {
      if (handle.signal.aborted) throw err;
      log.error({ err }, 'start failed');
      await guest.stopDb({}, context).catch((stopErr: unknown) => log.error({ err: stopErr }, 'could not have the engine kept stopped after the failed start'));
      await endAction(deps, handle, 'STARTING', stoppedTask, `Start failed: ${messageOf(err)}`, 'SHUTDOWN');
      throw err;
    }
  };
}
