import { setMaxListeners } from 'node:events';
import type { Logger } from '../common/index.js';
import { sleep } from '../common/index.js';
import type { InstanceEventType, StateStore, TaskKind, TaskRow } from '../db/index.js';

/** What a flow gets to record its progress and notice it lost its task to another worker. */
export interface TaskHandle {
  readonly task: TaskRow;
  /** aborted when the lease is lost or the runner stops: the flow must stop touching state */
  readonly signal: AbortSignal;
  /** records a completed step (and optionally a new payload); throws when the lease was lost */
  recordStep(step: string, payload?: unknown): Promise<void>;
}

export type Flow = (handle: TaskHandle) => Promise<void>;

/**
 * How a run of a task ended here: `done` or `failed` as recorded, or `handed_over` when the
 * lease went to another worker (or this one stopped) and the task goes on elsewhere.
 */
export type TaskRunOutcome = 'done' | 'failed' | 'handed_over';

/** What takes each run's duration and outcome: the role's metrics, or a test. */
export interface TaskObserver {
  observeTask(run: { kind: TaskKind; outcome: TaskRunOutcome; seconds: number }): void;
}

export interface TaskRunnerOptions {
  store: StateStore;
  logger: Logger;
  workerId: string;
  flows: Record<TaskKind, Flow>;
  leaseMs: number;
  sweepIntervalMs: number;
  /** told when a task on an instance ended, as its flow ended it, once its end is recorded; must not throw */
  onInstanceTaskEnded?: (task: TaskRow, outcome: 'done' | 'failed') => Promise<void>;
  observer?: TaskObserver;
}

/** the kinds whose subject (the task's instanceId) is an instance; the others name a backup */
const instanceTaskKinds: ReadonlySet<TaskKind> = new Set<TaskKind>([
  'create_instance',
  'delete_instance',
  'restart',
  'resize_flavor',
  'resize_volume',
  'update_access',
  'apply_configuration',
  'create_backup',
  'stop',
  'start',
  'detach_replica',
  'promote_to_replica_source',
  'eject_replica_source',
  'rejoin_replica',
  'upgrade',
]);

class LeaseLost extends Error {
  constructor() {
    super('task lease lost');
  }
}

/**
 * Runs durable tasks. A task is claimed with a lease that the runner renews while the flow runs;
 * a runner that dies stops renewing, and after the lease expires the periodic sweep of any
 * runner claims the task again and its flow resumes after the last recorded step.
 */
export class TaskRunner {
  private readonly running = new Map<string, Promise<void>>();
  private readonly stopController = new AbortController();
  private sweeper: Promise<void> | undefined;

  constructor(private readonly options: TaskRunnerOptions) {
    // each running task listens for the stop (removed when it ends): as many listeners as tasks
    // run at once, which a burst of creates takes past Node's warning at 10
    setMaxListeners(0, this.stopController.signal);
  }

  start(): void {
    this.sweeper = this.sweepLoop();
  }

  /** Claims and runs `taskId` unless another worker holds it; returns at once. */
  async trigger(taskId: string): Promise<void> {
    if (this.running.has(taskId) || this.stopController.signal.aborted) return;
    const { store, workerId, leaseMs } = this.options;
    const task = await store.tasks.claim(taskId, workerId, leaseMs, new Date());
    if (task !== undefined) this.launch(task);
  }

  async stop(): Promise<void> {
    this.stopController.abort(new Error('task runner stopping'));
    await this.sweeper;
    await Promise.allSettled(this.running.values());
  }

  private launch(task: TaskRow): void {
    const run = this.run(task).finally(() => this.running.delete(task.id));
    this.running.set(task.id, run);
  }

  private async run(task: TaskRow): Promise<void> {
    const { store, workerId, leaseMs, logger } = this.options;
    const log = logger.child({ taskId: task.id, instanceId: task.instanceId, kind: task.kind });
    const lease = new AbortController();
    const onStop = () => lease.abort(this.stopController.signal.reason);
    this.stopController.signal.addEventListener('abort', onStop, { once: true });
    const renewer = setInterval(() => {
      // A stopping runner stops renewing at once, so another worker can take over when it expires.
      if (lease.signal.aborted) {
        clearInterval(renewer);
        return;
      }
      store.tasks.renewLease(task.id, workerId, leaseMs, new Date()).then(
        (held) => {
          if (!held) lease.abort(new LeaseLost());
        },
        (err: unknown) => log.warn({ err }, 'could not renew task lease'),
      );
    }, Math.max(100, Math.floor(leaseMs / 3)));

    const handle: TaskHandle = {
      task,
      signal: lease.signal,
      recordStep: async (step, payload) => {
        if (!(await store.tasks.recordStep(task.id, workerId, step, payload))) {
          lease.abort(new LeaseLost());
          throw new LeaseLost();
        }
      },
    };
    log.info({ step: task.step, attempt: task.attempts }, 'task started');
    const began = performance.now();
    const observe = (outcome: TaskRunOutcome) =>
      this.options.observer?.observeTask({ kind: task.kind, outcome, seconds: (performance.now() - began) / 1000 });
    await this.recordEvent(task, 'task.started', task.attempts > 1 ? `resumed (attempt ${task.attempts})` : null);
    try {
      let outcome: 'done' | 'failed' = 'done';
      try {
        await this.options.flows[task.kind](handle);
      } catch (err) {
        if (lease.signal.aborted) {
          // Another worker owns the task now, or we are stopping: leave it to the next claim.
          log.info({ reason: String(lease.signal.reason) }, 'task left to another worker');
          observe('handed_over');
          return;
        }
        log.error({ err }, 'task failed');
        outcome = 'failed';
      }
      // An end that cannot be recorded leaves the task to be claimed again once its lease runs
      // out; flows are idempotent, so the next run finds the work done (or failed) and ends it.
      try {
        if (await store.tasks.finish(task.id, workerId, outcome)) {
          log.info(`task ${outcome}`);
          observe(outcome);
          await this.recordEnd(task, outcome);
        } else {
          log.warn('task ended after its lease passed to another worker');
          observe('handed_over');
        }
      } catch (err) {
        log.warn({ err }, 'could not record the end of the task; it will be resumed');
        observe('handed_over');
      }
    } finally {
      clearInterval(renewer);
      this.stopController.signal.removeEventListener('abort', onStop);
    }
  }

  /**
   * A flow that meets a failure it can name records a fault and ends as done (the instance shows
   * ERROR with it); to whoever reads the instance's events that task failed, with that fault.
   */
  private async recordEnd(task: TaskRow, outcome: 'done' | 'failed'): Promise<void> {
    if (!instanceTaskKinds.has(task.kind)) return;
    const fault = await this.options.store.faults.latest(task.instanceId).catch(() => undefined);
    const faulted = fault !== undefined && fault.createdAt >= task.createdAt;
    const ended = outcome === 'failed' || faulted ? 'failed' : 'done';
    await this.recordEvent(task, `task.${ended}`, faulted ? fault.message : null);
    await this.options.onInstanceTaskEnded?.(task, outcome);
  }

  /** The instance's event list is for people reading it: an event that cannot be written never fails the task. */
  private async recordEvent(task: TaskRow, type: InstanceEventType, message: string | null): Promise<void> {
    if (!instanceTaskKinds.has(task.kind)) return;
    try {
      await this.options.store.instanceEvents.record({ instanceId: task.instanceId, type, name: task.kind, message, createdAt: new Date() });
    } catch (err) {
      this.options.logger.warn({ err, taskId: task.id, type }, 'could not record an instance event');
    }
  }

  private async sweepLoop(): Promise<void> {
    const { store, logger, sweepIntervalMs } = this.options;
    const signal = this.stopController.signal;
    while (!signal.aborted) {
      try {
        const claimable = await store.tasks.listClaimable(new Date(), 20);
        for (const task of claimable) await this.trigger(task.id);
      } catch (err) {
        logger.warn({ err }, 'task sweep failed');
      }
      await sleep(sweepIntervalMs, signal).catch(() => undefined);
    }
  }
}
