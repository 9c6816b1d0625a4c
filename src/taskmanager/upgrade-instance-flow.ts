import { agentContract, agentTopic, createRpcClient, upgradeTaskPayload } from '../bus/index.js';
import { CofferError, sleep } from '../common/index.js';
import { type ActionFlowDeps, endAction, messageOf, noTask, startAction, waitUntilHealthy } from './action-flow-support.js';
import { runSteps } from './flow-steps.js';
import type { TaskHandle } from './task-runner.js';

/**
 * upgrade (Trove's PATCH datastore_version): the instance moves to another version of its
 * datastore on its own host. Where backups are configured the API took a full backup first;
 * the upgrade starts only once that backup completed. The host's agent moves the data
 * (agent contract 1.1 upgradeServer); the instance takes the new version as soon as its data is
 * the new version's. A failed upgrade leaves it on its old version, its data as it was, with a
 * fault saying why; an engine that does not come up after its data moved leaves a fault saying so.
 */
export function upgradeInstanceFlow(deps: ActionFlowDeps) {
  return async (handle: TaskHandle): Promise<void> => {
    const parsed = upgradeTaskPayload.safeParse(handle.task.payload ?? {});
    const started = await startAction(deps, handle, 'UPGRADING', parsed.data?.requestId);
    if (started === undefined) return;
    const { instance, context, log } = started;
    const from = parsed.data === undefined ? undefined : await deps.store.datastores.getVersion(parsed.data.fromVersionId);
    let moved = false;
    try {
      if (!parsed.success) throw new CofferError('Internal', 'The upgrade task names no versions.');
      const { toVersionId, backupId } = parsed.data;
      const to = await deps.store.datastores.getVersion(toVersionId);
      if (to === undefined) throw new CofferError('DatastoreVersionNotFound', `Datastore version ${toVersionId} no longer exists.`);
      if (instance.host === null) throw new CofferError('Internal', `Instance ${instance.id} has no host.`);
      const agent = createRpcClient(deps.transport, agentContract, agentTopic(instance.host));
      await runSteps(handle, [
        {
          name: 'backed-up',
          repeatable: true,
          run: async () => {
            if (backupId !== undefined) await waitForBackup(deps, handle, backupId);
          },
        },
        {
          name: 'upgraded',
          // the agent answers a repeated call with the work done
          repeatable: true,
          run: async () => {
            log.info({ from: from?.name, to: to.name }, 'upgrading the instance');
            const outcome = await agent.upgradeServer({ instanceId: instance.id, version: to.name }, context);
            // the data is the new version's from here on, whether or not its engine starts
            await deps.store.instances.update(instance.id, { datastoreVersionId: to.id });
            moved = true;
            log.info({ method: outcome.method }, 'the host moved the data');
          },
        },
        {
          name: 'ended',
          repeatable: true,
          run: async () => {
            moved = true;
            if (!(await waitUntilHealthy(deps, handle, 'UPGRADING'))) return;
            await endAction(deps, handle, 'UPGRADING', noTask);
            log.info({ version: to.name }, 'instance upgraded');
          },
        },
      ]);
    } catch (err) {
      if (handle.signal.aborted) throw err;
      log.error({ err }, 'upgrade failed');
      const reason = messageOf(err).replace(/\.?$/, '.');
      const fault = moved
        ? `The instance's data was upgraded, but its engine did not come up on the new version: ${reason}`
        : `Upgrade failed: ${reason}${from === undefined ? '' : ` The instance keeps version ${from.name}.`}`;
      await endAction(deps, handle, 'UPGRADING', noTask, fault);
      throw err;
    }
  };
}

/** The backup taken before the upgrade, until it completed; one that failed stops the upgrade before anything changed. */
async function waitForBackup(deps: ActionFlowDeps, handle: TaskHandle, backupId: string): Promise<void> {
  for (;;) {
    const backup = await deps.store.backups.get(backupId);
    if (backup === undefined || backup.state === 'FAILED' || backup.state === 'DELETE_FAILED') {
      throw new CofferError('EngineError', `The backup taken before the upgrade (${backupId}) did not complete: nothing was changed.`);
    }
    if (backup.state === 'COMPLETED') return;
    await sleep(1000, handle.signal);
  }
}
