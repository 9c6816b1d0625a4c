import { randomUUID } from 'node:crypto';
import type { conductorContract, RpcClient } from '../bus/index.js';
import type { Logger } from '../common/index.js';

/** reports that a long operation reached `step`, `percent` (0..100) of the way; never throws or waits */
export type ReportProgress = (step: string, percent: number) => void;

/**
 * Progress reports are a courtesy to whoever watches: the operation never waits for one, and a
 * report that cannot be sent is logged and forgotten. Each is stamped when it is sent, so the
 * conductor drops one that overtakes a later one on the bus.
 */
export function progressReporter(
  conductor: RpcClient<typeof conductorContract>,
  instanceId: string,
  logger: Logger,
): ReportProgress {
  return (step, percent) => {
    conductor
      .reportProgress({ instanceId, step, percent }, { requestId: `req-${randomUUID()}`, instanceId })
      .catch((err: unknown) => logger.warn({ err, step, percent }, 'progress report not sent'));
  };
}
