import type { Selectable } from 'kysely';
import type { RepositoryContext } from './repository-context.js';
import { fromJson, toDate, toJson, toNullableDate } from './row-codec.js';
import type { BackupVerificationsTable } from './schema.js';
import type {
  BackupVerificationPatch,
  BackupVerificationRepository,
  BackupVerificationRow,
  VerificationStatus,
} from './state-store.js';

function toRow(r: Selectable<BackupVerificationsTable>): BackupVerificationRow {
  return {
    backupId: r.backup_id,
    tenantId: r.tenant_id,
    status: r.status as VerificationStatus,
    message: r.message,
    checks: fromJson<Record<string, number>>(r.checks),
    scratchInstanceId: r.scratch_instance_id,
    startedAt: toDate(r.started_at),
    finishedAt: toNullableDate(r.finished_at),
  };
}

export class SqlBackupVerificationRepository implements BackupVerificationRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async get(backupId: string): Promise<BackupVerificationRow | undefined> {
    const r = await this.ctx.db.selectFrom('backup_verifications').selectAll().where('backup_id', '=', backupId).executeTakeFirst();
    return r && toRow(r);
  }

  async getMany(backupIds: readonly string[]): Promise<Map<string, BackupVerificationRow>> {
    if (backupIds.length === 0) return new Map();
    const rows = await this.ctx.db.selectFrom('backup_verifications').selectAll().where('backup_id', 'in', [...backupIds]).execute();
    return new Map(rows.map((r) => [r.backup_id, toRow(r)]));
  }

  async begin(row: Pick<BackupVerificationRow, 'backupId' | 'tenantId' | 'message' | 'startedAt'>, options: { replaceRunning?: boolean } = {}): Promise<boolean> {
    const fresh = {
      status: 'RUNNING',
      message: row.message,
      checks: null,
      scratch_instance_id: null,
      started_at: row.startedAt,
      finished_at: null,
      updated_at: row.startedAt,
    };
    // Not insert-then-catch: a failed insert aborts a PostgreSQL transaction. The caller holds
    // the project's lock, so no other request inserts between the read and the write.
    const existing = await this.ctx.db.selectFrom('backup_verifications').select('status').where('backup_id', '=', row.backupId).executeTakeFirst();
    if (existing === undefined) {
      await this.ctx.db.insertInto('backup_verifications').values({ backup_id: row.backupId, tenant_id: row.tenantId, ...fresh }).execute();
      return true;
    }
    let update = this.ctx.db.updateTable('backup_verifications').set(fresh).where('backup_id', '=', row.backupId);
    if (options.replaceRunning !== true) update = update.where('status', '<>', 'RUNNING');
    const result = await update.executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async update(backupId: string, patch: BackupVerificationPatch): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('backup_verifications')
      .set({
        ...(patch.message !== undefined && { message: patch.message }),
        ...(patch.checks !== undefined && { checks: toJson(patch.checks) }),
        ...(patch.scratchInstanceId !== undefined && { scratch_instance_id: patch.scratchInstanceId }),
        updated_at: new Date(),
      })
      .where('backup_id', '=', backupId)
      .where('status', '=', 'RUNNING')
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async finish(
    backupId: string,
    end: { status: 'PASSED' | 'FAILED'; message: string | null; checks?: Record<string, number> | null; finishedAt: Date },
  ): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('backup_verifications')
      .set({
        status: end.status,
        message: end.message,
        ...(end.checks !== undefined && { checks: toJson(end.checks) }),
        finished_at: end.finishedAt,
        updated_at: end.finishedAt,
      })
      .where('backup_id', '=', backupId)
      .where('status', '=', 'RUNNING')
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }
}
