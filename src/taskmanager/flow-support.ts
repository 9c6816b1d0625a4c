import { CofferError, sleep } from '../common/index.js';
import type { Logger } from '../common/index.js';

/** The bus could not reach the other side (it is restarting, the broker reconnecting): worth another try. */
export function isTransientBusError(err: unknown): err is CofferError {
  return err instanceof CofferError && (err.code === 'BusTimeout' || err.code === 'BusUnavailable');
}

/**
 * Retries `attempt` while it fails with a transient bus error (the agent is restarting, the
 * broker reconnecting) until `deadline`; other errors and the deadline end it.
 */
export async function retryTransient<T>(
  what: string,
  attempt: () => Promise<T>,
  options: { deadline: number; signal: AbortSignal; logger: Logger; delayMs?: number },
): Promise<T> {
  for (;;) {
    options.signal.throwIfAborted();
    try {
      return await attempt();
    } catch (err) {
      if (!isTransientBusError(err) || Date.now() >= options.deadline) throw err;
      options.logger.warn({ err: err.message }, `${what} failed, retrying`);
      await sleep(options.delayMs ?? 1000, options.signal);
    }
  }
}
