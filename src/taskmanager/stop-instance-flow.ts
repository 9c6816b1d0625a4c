import { stopTaskPayload } from '../bus/index.js';
import type { InstancePatch } from '../db/index.js';
import { type ActionFlowDeps, callGuest, endAction, messageOf, resumed, startAction } from './action-flow-support.js';
import { runSteps } from './flow-steps.js';
import type { TaskHandle } from './task-runner.js';

/** Where a stopped instance rests until its owner starts it (the API shows SHUTOFF). */
export const stoppedTask: InstancePatch = {
  taskStatus: 'STOPPED',
  taskDescription: 'The instance is stopped; start it to use it again.',
  taskStartTime: null,
};

/**
 * Coffer's stop (issue 13): the guest records that the engine stays stopped (its host's record,
 * read again when the agent restarts and adopts the instance) and stops it; the instance keeps
 * its directory, address and quota. The API set STOPPING. The step recorded after the guest
 * answered keeps a resumed task from asking again. A stop that fails asks the guest to run the
 * engine again, so that it is supervised as before, and leaves a fault.
 */
export function stopInstanceFlow(deps: ActionFlowDeps) {
  return async (handle: TaskHandle): Promise<void> => {
    const payload = stopTaskPayload.safeParse(handle.task.payload ?? {}).data;
    const started = await startAction(deps, handle, 'STOPPING', payload?.requestId);
    if (started === undefined) return;
    const { guest, context, log } = started;
    try {
      await runSteps(handle, [
        {
          name: 'stopped',
          run: async () => {
            log.info('stopping the engine');
            await callGuest(deps, handle, 'stop', log, () => guest.stopDb({}, context));
          },
        },
        {
          name: 'ended',
          repeatable: true,
          run: async () => {
            // the guest answered once the engine was down: SHUTDOWN is what it heartbeats from now on
            await endAction(deps, handle, 'STOPPING', stoppedTask, undefined, 'SHUTDOWN');
            log.info('instance stopped');
          },
        },
      ]);
    } catch (err) {
      if (handle.signal.aborted) throw err;
      log.error({ err }, 'stop failed');
      await guest.startDb({}, context).catch((startErr: unknown) => log.error({ err: startErr }, 'could not have the engine run again after the failed stop'));
      await endAction(deps, handle, 'STOPPING', resumed(payload?.resumeTask), `Stop failed: ${messageOf(err)}`);
      throw err;
    }
  };
}
