import { applyConfigurationTaskPayload } from '../bus/index.js';
import { CofferError } from '../common/index.js';
import type { InstancePatch } from '../db/index.js';
import { type ActionFlowDeps, callGuest, desiredGeneration, endAction, messageOf, recordApplied, resumed, startAction } from './action-flow-support.js';
import { overridesOf } from './configuration-overrides.js';
import { runSteps } from './flow-steps.js';
import type { TaskHandle } from './task-runner.js';

/**
 * apply_configuration (reference 2.2 attach/detach, 2.8 group updates): the guest makes the
 * group's values the engine's overrides ({} detaches), live where the engine can. What only a
 * restart brings in leaves the instance RESTART_REQUIRED until one. A failure (the engine refused
 * a value, the guest did not answer) leaves the engine on its previous values, as the guest
 * contract promises, so the instance returns to its previous group and task status, with a
 * fault carrying the guest's message.
 */
export function applyConfigurationFlow(deps: ActionFlowDeps) {
  return async (handle: TaskHandle): Promise<void> => {
    const parsed = applyConfigurationTaskPayload.safeParse(handle.task.payload ?? {});
    const started = await startAction(deps, handle, 'UPDATING', parsed.data?.requestId);
    if (started === undefined) return;
    const { instance, guest, context, log } = started;
    const resume = parsed.data?.resumeTask ?? 'NONE';
    try {
      if (!parsed.success) throw new CofferError('Internal', 'The configuration task has no readable payload.');
      const recorded = parsed.data;
      let pending = recorded.pendingRestart ?? [];
      await runSteps(handle, [
        {
          name: 'applied',
          run: async () => {
            const overrides = await overridesOf(deps.store, instance);
            const generation = await desiredGeneration(deps, instance.id);
            log.info({ configurationId: instance.configurationId, parameters: Object.keys(overrides), generation }, 'applying configuration overrides');
            const outcome = await callGuest(deps, handle, 'applyConfiguration', log, () => guest.applyConfiguration({ overrides, generation }, context));
            await recordApplied(deps, instance.id, outcome.generation);
            pending = outcome.pendingRestart;
          },
          payload: () => ({ ...recorded, pendingRestart: pending }),
        },
        {
          name: 'ended',
          repeatable: true,
          run: async () => {
            // A restart asked for before this apply is still owed: the engine was not restarted since.
            const restart = pending.length > 0 || resume === 'RESTART_REQUIRED';
            await endAction(deps, handle, 'UPDATING', resumed(restart ? 'RESTART_REQUIRED' : 'NONE'));
            log.info({ pendingRestart: pending }, 'configuration applied');
          },
        },
      ]);
    } catch (err) {
      if (handle.signal.aborted) throw err;
      log.error({ err }, 'applying the configuration failed');
      const previous = parsed.data?.previousConfigurationId;
      const back: InstancePatch = {
        ...resumed(resume),
        ...(previous === undefined ? {} : { configurationId: previous }),
      };
      const keeps =
        previous === undefined
          ? ''
          : previous === null
            ? ' The instance keeps running without a configuration group.'
            : ` The instance keeps configuration group ${previous} and the values it ran with.`;
      await endAction(deps, handle, 'UPDATING', back, `Applying the configuration failed: ${messageOf(err).replace(/\.?$/, '.')}${keeps}`);
      throw err;
    }
  };
}
