import type { z } from 'zod';
import type { conductorContract, MessageMeta } from '../bus/index.js';
import type { Logger } from '../common/index.js';
import type { StateStore } from '../db/index.js';

type ProgressReport = z.output<typeof conductorContract.methods.reportProgress.input>;

/**
 * A guest's progress report becomes the progress of the instance's running task. Reports can
 * arrive late or twice, as heartbeats can: one older than the newest seen for the instance is
 * dropped, so a late "starting" never overwrites "creating databases". With no running task
 * (it ended meanwhile) there is nothing to show it on, and it is dropped too.
 */
export function progressHandler(store: StateStore, logger: Logger) {
  return async (report: ProgressReport, meta: MessageMeta): Promise<void> => {
    const outcome = await store.transaction(async (tx) => {
      if (!(await tx.conductorLastSeen.recordIfNewer(report.instanceId, 'reportProgress', meta.sentAt))) return 'stale';
      const recorded = await tx.tasks.recordProgress(report.instanceId, {
        step: report.step,
        percent: report.percent,
        updatedAt: new Date(),
      });
      return recorded ? 'written' : 'no task';
    });
    if (outcome !== 'written') logger.debug({ instanceId: report.instanceId, step: report.step, outcome }, 'progress report dropped');
  };
}
