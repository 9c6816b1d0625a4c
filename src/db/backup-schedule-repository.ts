import type { Selectable } from 'kysely';
import { newUuid } from '../common/index.js';
import type { RepositoryContext } from './repository-context.js';
import { toBool, toDate, toNullableDate } from './row-codec.js';
import type { BackupSchedulesTable } from './schema.js';
import type { BackupScheduleRepository, BackupScheduleRow, BackupScheduleSettings } from './state-store.js';

function toRow(r: Selectable<BackupSchedulesTable>): BackupScheduleRow {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    instanceId: r.instance_id,
    name: r.name,
    pattern: r.pattern,
    incremental: toBool(r.incremental),
    retainCount: r.retain_count === null ? null : Number(r.retain_count),
    retainDays: r.retain_days === null ? null : Number(r.retain_days),
    nextRunAt: toDate(r.next_run_at),
    lastRunAt: toNullableDate(r.last_run_at),
    lastBackupId: r.last_backup_id,
    lastError: r.last_error,
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
    verify: toBool(r.verify),
    lastVerifiedBackupId: r.last_verified_backup_id,
  };
}

export class SqlBackupScheduleRepository implements BackupScheduleRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async set(settings: BackupScheduleSettings, now: Date): Promise<BackupScheduleRow> {
    const changed = {
      name: settings.name,
      pattern: settings.pattern,
      incremental: settings.incremental,
      retain_count: settings.retainCount,
      retain_days: settings.retainDays,
      next_run_at: settings.nextRunAt,
      verify: settings.verify,
      updated_at: now,
    };
    await this.ctx.dialect.upsert(
      this.ctx.db.insertInto('backup_schedules').values({
        id: newUuid(),
        tenant_id: settings.tenantId,
        instance_id: settings.instanceId,
        ...changed,
        last_run_at: null,
        last_backup_id: null,
        last_error: null,
        last_verified_backup_id: null,
        created_at: now,
      }),
      ['instance_id'],
      changed,
    );
    const row = await this.get(settings.instanceId);
    if (row === undefined) throw new Error(`the backup schedule of instance ${settings.instanceId} was not stored`);
    return row;
  }

  async get(instanceId: string, scope: { tenantId?: string } = {}): Promise<BackupScheduleRow | undefined> {
    let query = this.ctx.db.selectFrom('backup_schedules').selectAll().where('instance_id', '=', instanceId);
    if (scope.tenantId !== undefined) query = query.where('tenant_id', '=', scope.tenantId);
    const r = await query.executeTakeFirst();
    return r && toRow(r);
  }

  async list(): Promise<BackupScheduleRow[]> {
    const rows = await this.ctx.db.selectFrom('backup_schedules').selectAll().orderBy('instance_id').execute();
    return rows.map(toRow);
  }

  async delete(instanceId: string): Promise<boolean> {
    const result = await this.ctx.db.deleteFrom('backup_schedules').where('instance_id', '=', instanceId).executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  async listDue(now: Date, limit: number): Promise<BackupScheduleRow[]> {
    const rows = await this.ctx.db
      .selectFrom('backup_schedules')
      .selectAll()
      .where('next_run_at', '<=', now)
      .orderBy('next_run_at')
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toRow);
  }

  // As a task claim: every engine re-checks the WHERE clause against the row as the winner left
  // it, so of several taskmanagers that read the same due time, one moves it on.
  async claimRun(id: string, due: Date, next: Date, now: Date): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('backup_schedules')
      .set({ next_run_at: next, last_run_at: now })
      .where('id', '=', id)
      .where('next_run_at', '=', due)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async recordRun(id: string, runAt: Date, outcome: { backupId: string } | { error: string }): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('backup_schedules')
      .set('backupId' in outcome ? { last_backup_id: outcome.backupId, last_error: null } : { last_error: outcome.error })
      .where('id', '=', id)
      .where('last_run_at', '=', runAt)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async claimVerification(id: string, backupId: string): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('backup_schedules')
      .set({ last_verified_backup_id: backupId })
      .where('id', '=', id)
      .where('last_backup_id', '=', backupId)
      .where((eb) => eb.or([eb('last_verified_backup_id', 'is', null), eb('last_verified_backup_id', '<>', backupId)]))
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async recordVerificationError(id: string, backupId: string, error: string): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('backup_schedules')
      .set({ last_error: error })
      .where('id', '=', id)
      .where('last_backup_id', '=', backupId)
      .where('last_verified_backup_id', '=', backupId)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }
}
