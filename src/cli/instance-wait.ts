import { sleep } from '../common/index.js';
import type { ApiClient } from './api-client.js';
import type { InstanceView } from './api-types.js';
import type { CliIo } from './cli-io.js';
import { getInstance } from './instance-lookup.js';
import { ProgressDisplay } from './progress-display.js';

export type WaitResult =
  | { outcome: 'active'; instance: InstanceView }
  | { outcome: 'settled'; instance: InstanceView }
  | { outcome: 'error'; instance: InstanceView }
  | { outcome: 'gone'; last: InstanceView | undefined }
  | { outcome: 'timeout'; last: InstanceView | undefined };

export interface WaitOptions {
  /**
   * `active`: until status ACTIVE (create). `gone`: until the API answers 404 (delete).
   * `settled`: until no task runs (an action), or the instance waits for a restart.
   */
  goal: 'active' | 'gone' | 'settled';
  /** what the progress line says is going on, e.g. `Creating mypg` */
  label: string;
  timeoutSeconds: number;
}

/**
 * No task runs: Trove shows operating_status only with task NONE, and RESTART_REQUIRED is the one
 * other task an instance rests in (a configuration change waits there for the user's restart).
 */
function isSettled(instance: InstanceView): boolean {
  return (instance.operating_status ?? '') !== '' || instance.status === 'RESTART_REQUIRED';
}

export function stateText(instance: InstanceView): string {
  const operating = instance.operating_status;
  return operating === undefined || operating === '' ? instance.status : `${instance.status} / ${operating}`;
}

/** the state, with the step the running task is on when the API shows it (Coffer's `progress`) */
export function progressText(instance: InstanceView): string {
  const state = stateText(instance);
  const step = stepText(instance.progress);
  return step === undefined ? state : `${state} — ${step}`;
}

/** `backing up (42%)`, from Coffer's `progress`; undefined when the API shows none. */
export function stepText(progress: InstanceView['progress']): string | undefined {
  if (typeof progress?.step !== 'string' || typeof progress.percent !== 'number') return undefined;
  // one line, redrawn in place on a terminal: nothing the server sends may move the cursor
  const step = progress.step.replace(/\p{Cc}/gu, ' ').slice(0, 100);
  return `${step} (${progress.percent}%)`;
}

export function faultText(instance: InstanceView): string {
  return instance.fault?.message ?? 'Coffer recorded no fault message.';
}

/**
 * Polls GET /instances/{id} until the goal, status ERROR, a 404, or the timeout, whichever comes
 * first, showing progress on stderr; `seconds` is how long it took.
 */
export async function waitForInstance(
  io: CliIo,
  client: ApiClient,
  id: string,
  options: WaitOptions,
): Promise<WaitResult & { seconds: string }> {
  const progress = new ProgressDisplay(io.stderr, options.label);
  try {
    const result = await poll(client, id, options, io.pollIntervalMs, progress);
    return { ...result, seconds: progress.elapsedSeconds(true) };
  } finally {
    progress.stop();
  }
}

async function poll(
  client: ApiClient,
  id: string,
  { goal, timeoutSeconds }: WaitOptions,
  intervalMs: number,
  progress: ProgressDisplay,
): Promise<WaitResult> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  let last: InstanceView | undefined;
  for (;;) {
    const current = await getInstance(client, id);
    if (current === undefined) return { outcome: 'gone', last };
    last = current;
    progress.update(progressText(last));
    if (last.status === 'ERROR') return { outcome: 'error', instance: last };
    if (goal === 'active' && last.status === 'ACTIVE') return { outcome: 'active', instance: last };
    if (goal === 'settled' && isSettled(last)) return { outcome: 'settled', instance: last };
    const remaining = deadline - Date.now();
    if (remaining <= 0) return { outcome: 'timeout', last };
    await sleep(Math.min(intervalMs, remaining));
  }
}
