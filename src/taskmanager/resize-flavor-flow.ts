import { resizeFlavorTaskPayload } from '../bus/index.js';
import { CofferError } from '../common/index.js';
import { type ActionFlowDeps, endAction, callGuest, desiredGeneration, messageOf, recordApplied, resumed, startAction } from './action-flow-support.js';
import { runSteps } from './flow-steps.js';
import type { TaskHandle } from './task-runner.js';

/**
 * resize_flavor (reference 3.6): the guest renders the engine's configuration for the new
 * flavor's RAM and restarts it; only then does the instance take the new flavor. When the guest
 * fails, it is asked to go back to the old flavor's configuration (Trove reverts the resize too),
 * and the instance keeps its old flavor with a fault saying why.
 */
export function resizeFlavorFlow(deps: ActionFlowDeps) {
  return async (handle: TaskHandle): Promise<void> => {
    const parsed = resizeFlavorTaskPayload.safeParse(handle.task.payload ?? {});
    const started = await startAction(deps, handle, 'RESIZING', parsed.data?.requestId);
    if (started === undefined) return;
    const { guest, context, log } = started;
    let asked = false;
    try {
      if (!parsed.success) throw new CofferError('Internal', 'The resize task has no readable flavors.');
      const { newFlavorId } = parsed.data;
      await runSteps(handle, [
        {
          name: 'resized',
          run: async () => {
            const flavor = await deps.store.flavors.get(newFlavorId);
            if (flavor === undefined) throw new CofferError('FlavorNotFound', `Flavor ${newFlavorId} no longer exists.`);
            log.info({ flavorId: flavor.id, memoryMb: flavor.ramMb }, 'resizing the engine for a new flavor');
            const generation = await desiredGeneration(deps, handle.task.instanceId);
            asked = true;
            const outcome = await callGuest(deps, handle, 'resize', log, () => guest.resize({ memoryMb: flavor.ramMb, generation }, context));
            await recordApplied(deps, handle.task.instanceId, outcome.generation);
          },
        },
        {
          name: 'ended',
          repeatable: true,
          run: async () => {
            await endAction(deps, handle, 'RESIZING', { ...resumed(parsed.data.resumeTask), flavorId: newFlavorId });
            log.info({ flavorId: newFlavorId }, 'flavor resized');
          },
        },
      ]);
    } catch (err) {
      if (handle.signal.aborted) throw err;
      log.error({ err }, 'flavor resize failed');
      const oldFlavorId = parsed.data?.oldFlavorId;
      if (asked && oldFlavorId !== undefined) {
        const old = await deps.store.flavors.get(oldFlavorId).catch(() => undefined);
        if (old !== undefined) {
          await guest.resize({ memoryMb: old.ramMb }, context).catch((revertErr: unknown) => {
            log.error({ err: revertErr }, 'could not return the engine to the old flavor');
          });
        }
      }
      const keeps = oldFlavorId === undefined ? '' : ` The instance keeps flavor ${oldFlavorId}.`;
      await endAction(deps, handle, 'RESIZING', resumed(parsed.data?.resumeTask), `Resize to a new flavor failed: ${messageOf(err).replace(/\.?$/, '.')}${keeps}`);
      throw err;
    }
  };
}
