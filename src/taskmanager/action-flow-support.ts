import { createRpcClient, guestContract, guestTopic, type RequestContext, type RpcClient, type Transport } from '../bus/index.js';
import { CofferError, errors, newUuid, sleep, type Logger } from '../common/index.js';
import type { InstancePatch, InstanceRow, ServiceStatusName, StateStore, TaskStatusName } from '../db/index.js';
import { engineFailed, engineState, retryTransient } from './flow-support.js';
import type { InstanceWaiter } from './instance-waiter.js';
import type { TaskHandle } from './task-runner.js';

// What the flows of instance actions (restart, resize, access) share. Each action owns the
// instance's task status while it runs: it starts only when the instance is still in the status
// the API set, and it ends (NONE, an error status, a fault) only if nothing else took the
// instance over meanwhile: a reset_status or a delete asked during the action wins.

export interface ActionFlowDeps {
  store: StateStore;
  transport: Transport;
  logger: Logger;
  /** how long an action keeps trying to reach a guest whose agent is away (restarting) */
  actionTimeoutMs: number;
  /** how long a restarted engine has to report itself healthy */
  healthyWaitMs: number;
  /** wakes a waiting flow on the conductor's status events */
  waiter: InstanceWaiter;
}

export const noTask: InstancePatch = { taskStatus: 'NONE', taskDescription: 'No tasks for the instance.', taskStartTime: null };

/**
 * What an action that may not have restarted the engine ends in: a restart a configuration group
 * asked for stays owed (Redis, for one, resizes without a restart).
 */
export function resumed(resumeTask: 'NONE' | 'RESTART_REQUIRED' | undefined): InstancePatch {
  return resumeTask === 'RESTART_REQUIRED' ? { ...noTask, taskStatus: 'RESTART_REQUIRED', taskDescription: 'Restart required.' } : noTask;
}

export interface ActionStart {
  instance: InstanceRow;
  context: RequestContext;
  log: Logger;
  guest: RpcClient<typeof guestContract>;
}

/** The instance, when it is still in `expected`; undefined when the action has nothing left to do. */
export async function startAction(
  deps: ActionFlowDeps,
  handle: TaskHandle,
  expected: TaskStatusName,
  requestId: string | undefined,
): Promise<ActionStart | undefined> {
  const instanceId = handle.task.instanceId;
  const log = deps.logger.child({ instanceId, taskId: handle.task.id, kind: handle.task.kind, ...(requestId === undefined ? {} : { requestId }) });
  const instance = await deps.store.instances.get(instanceId);
  if (instance === undefined || instance.taskStatus !== expected) {
    log.info({ taskStatus: instance?.taskStatus }, `instance no longer ${expected}; nothing to do`);
    return undefined;
  }
  const context: RequestContext = { requestId: requestId ?? `req-${newUuid()}`, instanceId };
  return { instance, context, log, guest: createRpcClient(deps.transport, guestContract, guestTopic(instanceId)) };
}

/** Calls the guest, retrying while its agent cannot be reached, until the action's deadline. */
export function callGuest<T>(deps: ActionFlowDeps, handle: TaskHandle, what: string, log: Logger, attempt: () => Promise<T>): Promise<T> {
  return retryTransient(what, attempt, { deadline: Date.now() + deps.actionTimeoutMs, signal: handle.signal, logger: log });
}

/**
 * The instance's desired generation as the step about to ask the guest reads it: what the change
 * the step sends brings the instance to (the API raised it with the task).
 */
export async function desiredGeneration(deps: Pick<ActionFlowDeps, 'store'>, instanceId: string): Promise<number> {
  const instance = await deps.store.instances.get(instanceId, { includeDeleted: true });
  if (instance === undefined) throw errors.instanceNotFound(instanceId);
  return instance.desiredGeneration;
}

/** Records the generation the guest answered it applied; a late answer of an older one never lowers the stored one. */
export async function recordApplied(deps: Pick<ActionFlowDeps, 'store'>, instanceId: string, generation: number | undefined): Promise<void> {
  if (generation !== undefined) await deps.store.instances.recordAppliedGeneration(instanceId, generation);
}

/**
 * Ends the action with `patch` and, when it failed, a fault saying why, both only while the
 * instance is still in `expected`. The database being away is waited out (until the lease is
 * lost; the worker that takes the task over ends it then): an action never leaves its instance
 * in its task status for good. Returns whether the instance was still the action's.
 * `serviceStatus`: what the guest answered the engine is now, written with the end (a stop's
 * SHUTDOWN replaces a RESTART_REQUIRED that heartbeats never overwrite).
 */
export async function endAction(
  deps: ActionFlowDeps,
  handle: TaskHandle,
  expected: TaskStatusName,
  patch: InstancePatch,
  fault?: string,
  serviceStatus?: ServiceStatusName,
): Promise<boolean> {
  const instanceId = handle.task.instanceId;
  for (;;) {
    try {
      return await deps.store.transaction(async (tx) => {
        if (!(await tx.instances.updateIfTask(instanceId, [expected], patch))) return false;
        if (serviceStatus !== undefined) await tx.serviceStatuses.set({ instanceId, status: serviceStatus, updatedAt: new Date() });
        if (fault !== undefined) {
          await tx.faults.record({ id: newUuid(), instanceId, message: fault.slice(0, 255), details: fault, createdAt: new Date() });
        }
        return true;
      });
    } catch (err) {
      // A CofferError is an answer (the row is gone...), not the database being away.
      if (err instanceof CofferError) throw err;
      deps.logger.warn({ instanceId, err }, 'could not record the end of the action; retrying');
      await sleep(1000, handle.signal);
    }
  }
}

/**
 * Waits until the conductor has recorded a healthy heartbeat. False when the instance left
 * `expected` meanwhile (reset or deleted): then there is nothing left to wait for.
 */
export async function waitUntilHealthy(deps: ActionFlowDeps, handle: TaskHandle, expected: TaskStatusName): Promise<boolean> {
  const instanceId = handle.task.instanceId;
  const state = await deps.waiter.waitFor([instanceId], ([row]) => engineState(row!, expected), {
    timeoutMs: deps.healthyWaitMs,
    signal: handle.signal,
  });
  if (state === 'failed') throw await engineFailed(deps.store, instanceId);
  if (state === undefined) {
    throw new CofferError('GuestTimeout', `The engine did not report itself healthy within ${Math.round(deps.healthyWaitMs / 1000)} s.`);
  }
  return state === 'ready';
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
