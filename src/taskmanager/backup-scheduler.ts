import type { RequestContext } from '../bus/index.js';
import { isCofferError, nextCronRun, newUuid, sleep, type Logger, type ScheduledBackupRequest, type ScheduledVerificationRequest } from '../common/index.js';
import { backupChain, runningBackupStates, type BackupRow, type BackupScheduleRow, type StateStore } from '../db/index.js';
import { applyRetention } from './backup-retention.js';

// Runs backup schedules (Coffer's extension of Trove's backups). Every taskmanager ticks; a due
// schedule is claimed by moving its next run on in a guarded UPDATE, so one taskmanager runs it.
// A run starts a backup through POST /backups' own admission: an instance that is busy, not
// ACTIVE, or over its project's quota gets no backup this time, the schedule says why
// (last_error), and the next run is the pattern's next time, not a retry. A taskmanager that was
// down runs a missed schedule once, not once per missed time. A schedule with verify has each
// backup it made verified once that backup completed, through the verify action's own admission:
// the backup is recorded as taken on (last_verified_backup_id) before the verification starts, so
// one that cannot start (another verification running, the version retired) says why in
// last_error and is not tried again at every tick. Each tick also applies retention, which leaves
// a backup alone while it is being verified.

export type StartScheduledBackup = (request: ScheduledBackupRequest, context: RequestContext) => Promise<BackupRow>;

export type StartScheduledVerification = (request: ScheduledVerificationRequest, context: RequestContext) => Promise<void>;

export interface BackupSchedulerOptions {
  store: StateStore;
  logger: Logger;
  startBackup: StartScheduledBackup;
  startVerification: StartScheduledVerification;
  /** runs a task now (it waits for the next sweep otherwise) */
  runTask(taskId: string): Promise<void>;
  intervalMs: number;
}

/**
 * The longest chain an incremental schedule builds before it takes a full backup again: a restore
 * reads every link, and retention can drop a chain only as a whole.
 */
export const longestScheduledChain = 100;
const dayMs = 24 * 60 * 60_000;
/** schedules run per tick at most; the rest are due at the next tick */
const runsPerTick = 50;

/** `<prefix>-<UTC time to the second>`, e.g. `scheduled-2026-03-01T02:30:00Z`. */
export function scheduledBackupName(schedule: Pick<BackupScheduleRow, 'name'>, at: Date): string {
  return `${schedule.name ?? 'scheduled'}-${at.toISOString().slice(0, 19)}Z`;
}

/**
 * Whether an incremental schedule's next backup builds on the instance's newest completed one:
 * not when there is none, its chain is broken, already as long as the schedule may keep (or
 * longestScheduledChain), or started longer ago than the schedule keeps backups.
 */
async function buildsOnLatest(store: StateStore, schedule: BackupScheduleRow, now: Date): Promise<boolean> {
  const latest = await store.backups.latestCompleted(schedule.instanceId);
  if (latest === undefined) return false;
  const chain = await backupChain(store, latest).catch(() => undefined);
  if (chain === undefined) return false;
  if (chain.length >= Math.min(schedule.retainCount ?? longestScheduledChain, longestScheduledChain)) return false;
  return schedule.retainDays === null || now.getTime() - chain[0]!.createdAt.getTime() < schedule.retainDays * dayMs;
}

export class BackupScheduler {
  private readonly stopController = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly options: BackupSchedulerOptions) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopController.abort(new Error('backup scheduler stopping'));
    await this.loop;
  }

  /**
   * One pass: the due schedules this taskmanager claims, the verifications of completed scheduled
   * backups, then retention. Answers the schedules it ran.
   */
  async tick(now = new Date()): Promise<string[]> {
    const ran: string[] = [];
    for (const schedule of await this.options.store.backupSchedules.listDue(now, runsPerTick)) {
      if (this.stopController.signal.aborted) break;
      if (await this.runIfClaimed(schedule, now)) ran.push(schedule.id);
    }
    for (const schedule of await this.options.store.backupSchedules.list()) {
      if (this.stopController.signal.aborted) break;
      await this.verifyIfCompleted(schedule);
    }
    await applyRetention(this.options, now);
    return ran;
  }

  private async run(): Promise<void> {
    const signal = this.stopController.signal;
    while (!signal.aborted) {
      try {
        await this.tick();
      } catch (err) {
        this.options.logger.warn({ err }, 'backup schedule pass failed');
      }
      await sleep(this.options.intervalMs, signal).catch(() => undefined);
    }
  }

  private async runIfClaimed(schedule: BackupScheduleRow, now: Date): Promise<boolean> {
    const { store, logger } = this.options;
    const context: RequestContext = { requestId: `req-${newUuid()}`, projectId: schedule.tenantId, instanceId: schedule.instanceId };
    const log = logger.child({ requestId: context.requestId, instanceId: schedule.instanceId, scheduleId: schedule.id });
    // the API checked the pattern; one that no longer parses still moves on a day, not every tick
    const next = (() => {
      try {
        return nextCronRun(schedule.pattern, now);
      } catch {
        return new Date(now.getTime() + dayMs);
      }
    })();
    if (!(await store.backupSchedules.claimRun(schedule.id, schedule.nextRunAt, next, now))) return false;
    if ((await store.instances.get(schedule.instanceId)) === undefined) {
      // its instance was deleted between the delete's check and now
      await store.backupSchedules.delete(schedule.instanceId);
      return true;
    }
    try {
      const backup = await this.options.startBackup(
        {
          tenantId: schedule.tenantId,
          instanceId: schedule.instanceId,
          scheduleId: schedule.id,
          name: scheduledBackupName(schedule, now),
          incremental: schedule.incremental && (await buildsOnLatest(store, schedule, now)),
        },
        context,
      );
      log.info({ backupId: backup.id, kind: backup.backupType, nextRun: next.toISOString() }, 'scheduled backup started');
      await store.backupSchedules.recordRun(schedule.id, now, { backupId: backup.id });
    } catch (err) {
      // the tenant reads it: Coffer's own errors say what to do, anything else stays in the log
      const why = isCofferError(err) ? err.message : "Coffer could not start it (the taskmanager's log says why).";
      const reason = `The backup due at ${schedule.nextRunAt.toISOString().slice(0, 19)}Z was skipped: ${why}`;
      log.warn({ err, nextRun: next.toISOString() }, 'scheduled backup skipped');
      await store.backupSchedules.recordRun(schedule.id, now, { error: reason.slice(0, 2000) });
    }
    return true;
  }

  /**
   * Starts the verification of the schedule's last backup once it completed, when the schedule
   * has verify and nobody took it on yet. One that a request already verified is not verified again.
   */
  private async verifyIfCompleted(schedule: BackupScheduleRow): Promise<void> {
    const { store, logger } = this.options;
    const backupId = schedule.lastBackupId;
    if (!schedule.verify || backupId === null || schedule.lastVerifiedBackupId === backupId) return;
    const backup = await store.backups.get(backupId);
    // a running backup is looked at again next tick; a failed or deleted one has nothing to verify
    if (backup === undefined || runningBackupStates.includes(backup.state)) return;
    if (!(await store.backupSchedules.claimVerification(schedule.id, backupId))) return;
    if ((backup.state !== 'COMPLETED' && backup.state !== 'RESTORED') || (await store.backupVerifications.get(backupId)) !== undefined) return;
    const context: RequestContext = { requestId: `req-${newUuid()}`, projectId: schedule.tenantId, instanceId: schedule.instanceId };
    const log = logger.child({ requestId: context.requestId, instanceId: schedule.instanceId, scheduleId: schedule.id, backupId });
    try {
      await this.options.startVerification({ tenantId: schedule.tenantId, backupId }, context);
      log.info('scheduled backup verification started');
    } catch (err) {
      const why = isCofferError(err) ? err.message : "Coffer could not start it (the taskmanager's log says why).";
      log.warn({ err }, 'scheduled backup verification not started');
      await store.backupSchedules.recordVerificationError(schedule.id, backupId, `The verification of backup ${backupId} was not started: ${why}`.slice(0, 2000));
    }
  }
}
