import type { RequestContext } from '../../bus/index.js';
import { errors, newUuid } from '../../common/index.js';
import type { InstancePatch, InstanceRow, Repositories, TaskKind, TaskRow } from '../../db/index.js';
import { notAvailable } from './action-gate.js';
import { taskAction } from './instance-status.js';
import type { TroveDeps } from './trove-deps.js';
import { wakeTaskmanager } from './wake-taskmanager.js';

export interface InstanceTaskRequest {
  kind: TaskKind;
  /** what the instance shows while the task runs: its task status and more */
  patch: InstancePatch;
  payload: unknown;
  /** sets the service status too (RESTARTING for a restart) */
  serviceStatus?: 'RESTARTING';
  /** Checks the instance again as it is inside the transaction, just before it changes. */
  recheck(current: InstanceRow, tx: Repositories): Promise<void>;
}

/** Tasks that change what the instance should be; restarts and volume resizes do not. */
const desiredStateChanges = new Set<TaskKind>(['resize_flavor', 'update_access', 'apply_configuration']);

/** A new task, pending, of `kind` on `subjectId` (an instance; a backup for a backup deletion). */
export function pendingTask(kind: TaskKind, subjectId: string, payload: unknown, now: Date): TaskRow {
  return { id: newUuid(), instanceId: subjectId, kind, step: 'start', state: 'pending', owner: null, leaseExpiresAt: null, payload, attempts: 0, createdAt: now, updatedAt: now };
}

/**
 * Writes a task row inside `tx`, and when the task changes what the instance should be, raises
 * the instance's desired generation with it: the task's flow sends that generation to the guest,
 * so the instance view can tell whether the change is live.
 */
export async function createTaskRow(tx: Repositories, task: TaskRow): Promise<void> {
  if (desiredStateChanges.has(task.kind)) await tx.instances.bumpDesiredGeneration(task.instanceId);
  await tx.tasks.create(task);
}

/**
 * Starts a durable instance action: the instance's new task status, its service status and the
 * task row are written in one transaction, then the taskmanager is woken (reference 2.2 "cast").
 */
export async function queueInstanceTask(deps: TroveDeps, instance: InstanceRow, request: InstanceTaskRequest, context: RequestContext): Promise<void> {
  return queueInstanceTasks(deps, [{ instance, request }], context);
}

/**
 * The same for several instances at once (a primary's volume and its replicas'): all their tasks
 * are written in one transaction, or none when one of them is refused.
 */
export async function queueInstanceTasks(
  deps: TroveDeps,
  actions: ReadonlyArray<{ instance: InstanceRow; request: InstanceTaskRequest }>,
  context: RequestContext,
): Promise<void> {
  const now = new Date();
  const tasks = actions.map(({ instance, request }) => pendingTask(request.kind, instance.id, request.payload, now));
  await deps.store.transaction(async (tx) => {
    for (const [i, { instance, request }] of actions.entries()) {
      const current = await tx.instances.get(instance.id);
      if (current === undefined) throw errors.notFound(instance.id);
      await request.recheck(current, tx);
      // Conditional on the task status just checked: of two requests racing past the checks, the
      // second finds the first one's task and is refused as the gate would refuse it.
      if (!(await tx.instances.updateIfTask(instance.id, [current.taskStatus], { taskStartTime: now, ...request.patch }))) {
        const latest = await tx.instances.get(instance.id);
        throw notAvailable(instance.id, 'task', taskAction(latest?.taskStatus ?? current.taskStatus));
      }
      if (request.serviceStatus !== undefined) await tx.serviceStatuses.set({ instanceId: instance.id, status: request.serviceStatus, updatedAt: now });
      await createTaskRow(tx, tasks[i]!);
    }
  });
  for (const task of tasks) await wakeTaskmanager(deps, task.id, context);
}
