import { z } from 'zod';
import { CofferError, sleep } from '../common/index.js';
import type { Logger } from '../common/index.js';
import type { StateStore, TaskRow, TaskStatusName } from '../db/index.js';
import type { WatchedInstance } from './instance-waiter.js';

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

// BLOCKED: the engine runs and serves reads, its volume full; a restart or start is done then
// (the resize that lifts it is another task)
const readyStatuses = new Set(['HEALTHY', 'RUNNING', 'BLOCKED']);

/** Where an instance a flow waits on stands: undefined while the wait should go on. */
export type EngineState = 'left' | 'ready' | 'failed' | undefined;

/**
 * The engine of a watched instance that a flow holds in task status `expected`: `left` when the
 * instance left that status (reset, deleted) and there is nothing to wait for, `ready` once the
 * conductor recorded a healthy heartbeat, `failed` when the guest reported the engine FAILED.
 */
export function engineState(row: WatchedInstance, expected: TaskStatusName): EngineState {
  if (row.instance === undefined || row.instance.taskStatus !== expected) return 'left';
  if (row.status !== undefined && readyStatuses.has(row.status.status)) return 'ready';
  if (row.status?.status === 'FAILED') return 'failed';
  return undefined;
}

/** The error of an engine the guest reported FAILED, with the fault the conductor recorded. */
export async function engineFailed(store: StateStore, instanceId: string): Promise<CofferError> {
  const fault = await store.faults.latest(instanceId);
  return new CofferError('TaskFailed', fault?.message ?? 'The database engine failed to start.');
}

// A task row names one instance (tasks.instance_id). A task whose subject is a group (a replica
// set, a failover pair) names the others in its payload, under `subjectInstanceIds`, so the
// tasks table needs no new column; the row's instance is the group's first member.
const groupSubject = z.object({ subjectInstanceIds: z.array(z.string()).optional() });

/** Every instance a task is about: its row's instance first, then those its payload adds. */
export function taskSubjects(task: Pick<TaskRow, 'instanceId' | 'payload'>): string[] {
  const extra = groupSubject.safeParse(task.payload ?? {}).data?.subjectInstanceIds ?? [];
  return [...new Set([task.instanceId, ...extra])];
}
