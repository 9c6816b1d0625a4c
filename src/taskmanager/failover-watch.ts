import type { ReplicaSourceTaskPayload } from '../bus/index.js';
import { newUuid, sleep, type Logger, type PrimaryLeaseTimes } from '../common/index.js';
import type { InstanceRow, StateStore, TaskKind, TaskRow } from '../db/index.js';

// Watches the leases of replication groups' primaries (common/primary-lease.ts). A primary whose
// lease went unrenewed for `failoverAfterMs` has stopped its engine itself by now, or its host is
// gone: the watch claims it for a failover (eject_replica_source). The claim is one conditional
// UPDATE that also fences the primary, so of several taskmanagers exactly one starts the
// failover, and a renewal racing the claim is refused. A former primary a failover fenced whose
// host reports again is given back to its group as a replica (rejoin_replica).

export interface FailoverWatchOptions {
  store: StateStore;
  logger: Logger;
  times: PrimaryLeaseTimes;
  /** how often the leases are read */
  intervalMs: number;
  /** runs a task just created */
  runTask(taskId: string): Promise<void>;
  /** a former primary's rejoin that failed is tried again after this */
  rejoinRetryMs: number;
}

function task(kind: TaskKind, instanceId: string, payload: ReplicaSourceTaskPayload, now: Date): TaskRow {
  return { id: newUuid(), instanceId, kind, step: 'start', state: 'pending', owner: null, leaseExpiresAt: null, payload, attempts: 0, createdAt: now, updatedAt: now };
}

export class FailoverWatch {
  private readonly stopController = new AbortController();
  private loop: Promise<void> | undefined;
  /** when each fenced former primary's rejoin was last started here */
  private readonly rejoinTried = new Map<string, number>();

  constructor(private readonly options: FailoverWatchOptions) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopController.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { signal } = this.stopController;
    while (!signal.aborted) {
      try {
        await this.tick(new Date());
      } catch (err) {
        this.options.logger.error({ err }, 'the failover watch could not read the leases');
      }
      await sleep(this.options.intervalMs, signal).catch(() => undefined);
    }
  }

  /** one look at the leases and the fenced former primaries; exported for tests through the class */
  async tick(now: Date): Promise<void> {
    const lapsedBefore = new Date(now.getTime() - this.options.times.failoverAfterMs);
    for (const primary of await this.options.store.instances.lapsedLeases(lapsedBefore)) {
      if ((primary.replicaIds?.length ?? 0) > 0) await this.failOver(primary, lapsedBefore, now);
    }
    for (const fenced of await this.options.store.instances.fencedReplicas()) await this.rejoin(fenced, now);
  }

  private async failOver(primary: InstanceRow, lapsedBefore: Date, now: Date): Promise<void> {
    const { store, logger } = this.options;
    const failover = task('eject_replica_source', primary.id, { automatic: true, replicaIds: primary.replicaIds ?? [], requestId: `req-${newUuid()}` }, now);
    const claimed = await store.transaction(async (tx) => {
      const won = await tx.instances.claimFailover(primary.id, lapsedBefore, {
        taskStatus: 'EJECTING',
        taskDescription: 'Failing over: the primary stopped renewing its lease.',
        taskStartTime: now,
        fencedAt: now,
      });
      if (won) {
        for (const replicaId of primary.replicaIds ?? []) {
          await tx.instances.updateIfTask(replicaId, ['NONE', 'RESTART_REQUIRED'], { taskStatus: 'EJECTING', taskDescription: 'Its primary is being replaced.', taskStartTime: now });
        }
        await tx.tasks.create(failover);
      }
      return won;
    });
    if (!claimed) return;
    logger.warn({ instanceId: primary.id, leaseRenewedAt: primary.leaseRenewedAt, replicas: primary.replicaIds }, 'primary lost its lease: failing over');
    await this.options.runTask(failover.id);
  }

  /** A fenced former primary whose host's agent reported since it was fenced is back: it rejoins. */
  private async rejoin(fenced: InstanceRow, now: Date): Promise<void> {
    const { store, logger } = this.options;
    if (fenced.taskStatus !== 'NONE' || fenced.host == null || fenced.fencedAt == null) return;
    const tried = this.rejoinTried.get(fenced.id);
    if (tried !== undefined && now.getTime() - tried < this.options.rejoinRetryMs) return;
    const back = (await store.agents.listAlive(fenced.fencedAt)).some((agent) => agent.host === fenced.host);
    if (!back) return;
    const rejoin = task('rejoin_replica', fenced.id, { requestId: `req-${newUuid()}` }, now);
    const claimed = await store.transaction(async (tx) => {
      const won = await tx.instances.updateIfTask(fenced.id, ['NONE'], {
        taskStatus: 'EJECTING',
        taskDescription: 'Rejoining its group as a replica.',
        taskStartTime: now,
      });
      if (won) await tx.tasks.create(rejoin);
      return won;
    });
    if (!claimed) return;
    this.rejoinTried.set(fenced.id, now.getTime());
    logger.info({ instanceId: fenced.id, host: fenced.host }, 'fenced former primary is back: rejoining it as a replica');
    await this.options.runTask(rejoin.id);
  }
}
