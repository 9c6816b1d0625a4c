import { sleep } from '../common/index.js';
import type { ApiClient } from './api-client.js';
import type { InstanceView } from './api-types.js';
import { ApiError } from './cli-error.js';
import type { ProgressDisplay } from './progress-display.js';

export type WaitResult =
  | { outcome: 'active'; instance: InstanceView }
  | { outcome: 'error'; instance: InstanceView }
  | { outcome: 'gone'; last: InstanceView | undefined }
  | { outcome: 'timeout'; last: InstanceView | undefined };

export interface WaitOptions {
  /** `active`: until status ACTIVE (create). `gone`: until the API answers 404 (delete). */
  goal: 'active' | 'gone';
  timeoutMs: number;
  intervalMs: number;
  progress: ProgressDisplay;
  clock?: () => number;
}

export function stateText(instance: InstanceView): string {
  const operating = instance.operating_status;
  return operating === undefined || operating === '' ? instance.status : `${instance.status} / ${operating}`;
}

export function faultText(instance: InstanceView): string {
  return instance.fault?.message ?? 'Coffer recorded no fault message.';
}

/** Polls GET /instances/{id} until the goal, status ERROR, a 404, or the timeout, whichever comes first. */
export async function waitForInstance(client: ApiClient, id: string, options: WaitOptions): Promise<WaitResult> {
  const clock = options.clock ?? Date.now;
  const deadline = clock() + options.timeoutMs;
  let last: InstanceView | undefined;
  for (;;) {
    try {
      last = await client.getMember<InstanceView>(`/instances/${encodeURIComponent(id)}`, 'instance');
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return { outcome: 'gone', last };
      throw err;
    }
    options.progress.update(stateText(last));
    if (last.status === 'ERROR') return { outcome: 'error', instance: last };
    if (options.goal === 'active' && last.status === 'ACTIVE') return { outcome: 'active', instance: last };
    const remaining = deadline - clock();
    if (remaining <= 0) return { outcome: 'timeout', last };
    await sleep(Math.min(options.intervalMs, remaining));
  }
}
