// The taskmanager role: runs every operation that takes longer than a request (create, delete,
// restart, stop, start, resize, access updates, configuration groups, backups and their verification)
// as a durable task with a lease, so that any taskmanager can resume what a dead one started.
// It also runs backup schedules and their retention (backup-scheduler.ts), and delivers projects'
// webhooks (webhook-dispatcher.ts).
import { hostname } from 'node:os';
import { listenInstanceStatus, taskmanagerContract, taskmanagerTopic, serveRpc } from '../bus/index.js';
import type { NotificationPublisher, Subscription, Transport } from '../bus/index.js';
import type { Logger, PrimaryLeaseTimes } from '../common/index.js';
import { newUuid, primaryLeaseTimes } from '../common/index.js';
import type { StateStore } from '../db/index.js';
import type { BackupStorage, MasterKey } from '../backup/index.js';
import { newProjectKey, unwrapKey, wrapKey } from '../backup/index.js';
import { applyConfigurationFlow } from './apply-configuration-flow.js';
import { backupsNotConfigured, type BackupFlowDeps } from './backup-flow-deps.js';
import { BackupOrphanSweeper } from './backup-orphan-sweep.js';
import { BackupScheduler, type StartScheduledBackup, type StartScheduledVerification } from './backup-scheduler.js';
import { createBackupFlow } from './create-backup-flow.js';
import { deleteBackupFlow } from './delete-backup-flow.js';
import { importBackupFlow } from './import-backup-flow.js';
import { createInstanceFlow } from './create-instance-flow.js';
import { deleteInstanceFlow } from './delete-instance-flow.js';
import { resizeFlavorFlow } from './resize-flavor-flow.js';
import { upgradeInstanceFlow } from './upgrade-instance-flow.js';
import { resizeVolumeFlow } from './resize-volume-flow.js';
import { restartInstanceFlow } from './restart-instance-flow.js';
import { startInstanceFlow } from './start-instance-flow.js';
import { stopInstanceFlow } from './stop-instance-flow.js';
import { detachReplicaFlow } from './detach-replica-flow.js';
import { FailoverWatch } from './failover-watch.js';
import { ejectFlow, promoteFlow, rejoinFlow } from './replica-source-flows.js';
import { updateAccessFlow } from './update-access-flow.js';
import { verifyBackupFlow } from './verify-backup-flow.js';
import { InstanceWaiter } from './instance-waiter.js';
import { TaskRunner, type TaskObserver } from './task-runner.js';
import { UsageNotifier } from './usage-notifications.js';
import { WebhookDispatcher, type WebhookDispatcherOptions } from './webhook-dispatcher.js';

export interface TaskmanagerOptions {
  store: StateStore;
  transport: Transport;
  logger: Logger;
  /** default: host name + pid + random suffix */
  workerId?: string;
  leaseMs?: number;
  sweepIntervalMs?: number;
  buildTimeoutMs?: number;
  deleteTimeoutMs?: number;
  agentAliveWindowMs?: number;
  noHostWaitMs?: number;
  prepareResendMs?: number;
  /**
   * The safety net of a waiting flow: how long it goes without reading the state DB when no
   * status event for its instances arrives (events wake it at once)
   */
  statusPollMs?: number;
  /** how long a restart, resize, access update or configuration apply keeps trying to reach the guest */
  actionTimeoutMs?: number;
  /** how long a restarted engine has to report healthy (Trove's state_change_wait_time) */
  healthyWaitMs?: number;
  /** where backups live and the master key that wraps each project's data key; without them backup tasks fail, saying so */
  backups?: { storage: BackupStorage; masterKey: MasterKey };
  /**
   * With `backups`: how often what failed or deleted backups, and deleted instances' archived
   * logs, left in storage is looked for, and how long after they ended it is kept (default 1 h
   * each; see backup-orphan-sweep.ts)
   */
  backupOrphanSweep?: { intervalMs?: number; graceMs?: number };
  /** the primary lease's times (tests may shorten them), how often leases are read, when a failed rejoin is tried again */
  failover?: { times?: PrimaryLeaseTimes; intervalMs?: number; rejoinRetryMs?: number };
  /** a running backup whose guest has not reported for this long is failed */
  backupStallMs?: number;
  backupTimeoutMs?: number;
  /**
   * Runs backup schedules: `startBackup` is POST /backups' admission (the API's
   * scheduledBackupStarter), `startVerification` the verify action's (its
   * scheduledVerificationStarter), `intervalMs` how often due schedules, completed scheduled
   * backups to verify and retention are looked at (default 30 s). Without it this taskmanager runs no schedules.
   */
  backupSchedules?: { startBackup: StartScheduledBackup; startVerification: StartScheduledVerification; intervalMs?: number };
  /** how often a backup verification asks the scratch instance's guest how the engine's check stands */
  dataCheckPollMs?: number;
  /** the longest the engine's check of a backup verification may run */
  dataCheckTimeoutMs?: number;
  /** where Trove's usage notifications go (trove.instance.create, …); without it none are sent */
  notifications?: { publisher: NotificationPublisher; region: string };
  /** takes each task run's duration and outcome (the role's /metrics) */
  taskObserver?: TaskObserver;
  /**
   * Delivers projects' webhooks: `guard` says which addresses a hook may reach; the rest tunes
   * the pace (defaults: every 1 s, 5 attempts 10 s apart doubling, 5 s per attempt). Without it
   * this taskmanager delivers none.
   */
  webhooks?: Omit<WebhookDispatcherOptions, 'store' | 'logger' | 'workerId'>;
}


export { BackupScheduler, scheduledBackupName, type StartScheduledBackup, type StartScheduledVerification } from './backup-scheduler.js';
export { retentionDeletes } from './backup-retention.js';
export { sweepBackupOrphans, type OrphanSweepResult } from './backup-orphan-sweep.js';
export { WebhookDispatcher, cloudEvent, type WebhookDispatcherOptions } from './webhook-dispatcher.js';
export { webhookSignature, signatureHeader, timestampHeader } from './webhook-sender.js';
export type { TaskObserver, TaskRunOutcome } from './task-runner.js';

export interface Taskmanager {
  stop(): Promise<void>;
}

export async function startTaskmanager(options: TaskmanagerOptions): Promise<Taskmanager> {
  const { store, transport, logger } = options;
  const waiter = new InstanceWaiter(store, options.statusPollMs ?? 1500);
  const deps = {
    waiter,
    store,
    transport,
    logger,
    buildTimeoutMs: options.buildTimeoutMs ?? 10 * 60_000,
    agentAliveWindowMs: options.agentAliveWindowMs ?? 30_000,
    noHostWaitMs: options.noHostWaitMs ?? 60_000,
    prepareResendMs: options.prepareResendMs ?? 20_000,
    deleteTimeoutMs: options.deleteTimeoutMs ?? 10 * 60_000,
    actionTimeoutMs: options.actionTimeoutMs ?? 5 * 60_000,
    healthyWaitMs: options.healthyWaitMs ?? 180_000,
  };
  const backups = options.backups;
  const backupDeps: BackupFlowDeps = {
    ...deps,
    ...(backups === undefined ? {} : { storage: backups.storage }),
    wrappedProjectKey: async (tenantId) => {
      if (backups === undefined) throw backupsNotConfigured();
      return (
        (await store.projectKeys.get(tenantId)) ??
        (await store.projectKeys.getOrCreate(tenantId, wrapKey(backups.masterKey, newProjectKey(), tenantId), new Date()))
      );
    },
    projectDataKey: async (tenantId) => {
      if (backups === undefined) throw backupsNotConfigured();
      const wrapped = await store.projectKeys.get(tenantId);
      return wrapped === undefined ? undefined : unwrapKey(backups.masterKey, wrapped, tenantId);
    },
    backupStallMs: options.backupStallMs ?? 120_000,
    backupTimeoutMs: options.backupTimeoutMs ?? 24 * 60 * 60_000,
  };
  const workerId = options.workerId ?? `${hostname()}-${process.pid}-${newUuid().slice(0, 8)}`;
  const usage = options.notifications === undefined ? undefined : new UsageNotifier({ store, logger, ...options.notifications });
  const runner = new TaskRunner({
    store,
    logger,
    workerId,
    leaseMs: options.leaseMs ?? 15_000,
    sweepIntervalMs: options.sweepIntervalMs ?? 2_000,
    ...(usage === undefined ? {} : { onInstanceTaskEnded: (task, outcome) => usage.taskEnded(task, outcome) }),
    ...(options.taskObserver === undefined ? {} : { observer: options.taskObserver }),
    flows: {
      create_instance: createInstanceFlow(deps),
      delete_instance: deleteInstanceFlow(deps),
      restart: restartInstanceFlow(deps),
      stop: stopInstanceFlow(deps),
      start: startInstanceFlow(deps),
      resize_flavor: resizeFlavorFlow(deps),
      resize_volume: resizeVolumeFlow(deps),
      update_access: updateAccessFlow(deps),
      detach_replica: detachReplicaFlow(deps),
      promote_to_replica_source: promoteFlow(deps),
      eject_replica_source: ejectFlow(deps),
      rejoin_replica: rejoinFlow(deps),
      upgrade: upgradeInstanceFlow(deps),
      apply_configuration: applyConfigurationFlow(deps),
      create_backup: createBackupFlow(backupDeps),
      delete_backup: deleteBackupFlow(backupDeps),
      import_backup: importBackupFlow(backupDeps),
      verify_backup: verifyBackupFlow({
        ...backupDeps,
        buildTimeoutMs: deps.buildTimeoutMs,
        deleteTimeoutMs: deps.deleteTimeoutMs,
        dataCheckTimeoutMs: options.dataCheckTimeoutMs ?? 6 * 60 * 60_000,
        dataCheckPollMs: options.dataCheckPollMs ?? 2_000,
      }),
    },
  });
  // Listening before any task runs, so no flow waits on an event it could not hear.
  const events = await listenInstanceStatus(transport, (event) => waiter.notify(event.instanceId), logger);
  // Subscribed first: a taskmanager that cannot hear the bus fails to start and leaves no sweep
  // behind to claim tasks. A wake-up that comes before the sweep starts is served all the same.
  const subscription: Subscription = await serveRpc(
    transport,
    taskmanagerContract,
    taskmanagerTopic,
    { runTask: async ({ taskId }) => runner.trigger(taskId) },
    logger,
  ).catch(async (err: unknown) => {
    await events.close();
    throw err;
  });
  runner.start();
  const scheduler =
    options.backupSchedules === undefined
      ? undefined
      : new BackupScheduler({
          store,
          logger: logger.child({ component: 'backup-scheduler' }),
          startBackup: options.backupSchedules.startBackup,
          startVerification: options.backupSchedules.startVerification,
          runTask: (taskId) => runner.trigger(taskId),
          intervalMs: options.backupSchedules.intervalMs ?? 30_000,
        });
  scheduler?.start();
  const dispatcher =
    options.webhooks === undefined
      ? undefined
      : new WebhookDispatcher({ ...options.webhooks, store, workerId, logger: logger.child({ component: 'webhook-dispatcher' }) });
  dispatcher?.start();
  const sweeper =
    options.backups === undefined
      ? undefined
      : new BackupOrphanSweeper({
          store,
          storage: options.backups.storage,
          logger: logger.child({ component: 'backup-orphan-sweep' }),
          intervalMs: options.backupOrphanSweep?.intervalMs ?? 60 * 60_000,
          graceMs: options.backupOrphanSweep?.graceMs ?? 60 * 60_000,
        });
  sweeper?.start();
  const failoverWatch = new FailoverWatch({
    store,
    logger: logger.child({ component: 'failover-watch' }),
    times: options.failover?.times ?? primaryLeaseTimes,
    intervalMs: options.failover?.intervalMs ?? 500,
    rejoinRetryMs: options.failover?.rejoinRetryMs ?? 60_000,
    runTask: (taskId) => runner.trigger(taskId),
  });
  failoverWatch.start();
  return {
    async stop() {
      await failoverWatch.stop();
      await sweeper?.stop();
      await dispatcher?.stop();
      await scheduler?.stop();
      await subscription.close();
      await runner.stop();
      await events.close();
    },
  };
}
