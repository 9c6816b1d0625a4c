import type { z } from 'zod';
import type { conductorContract } from '../bus/index.js';
import type { Logger } from '../common/index.js';
import type { StateStore } from '../db/index.js';

type WalArchived = z.output<typeof conductorContract.methods.walArchived.input>;

/**
 * A guest's report of how far its instance's archived log reaches: recorded only forward, so a
 * report delivered late never narrows the recoverable window the API shows.
 */
export function walArchivedHandler(store: StateStore, logger: Logger) {
  return async (report: WalArchived): Promise<void> => {
    await store.instances.recordWalArchived(report.instanceId, new Date(report.through));
    logger.debug({ instanceId: report.instanceId, through: report.through }, 'archived log recorded');
  };
}
