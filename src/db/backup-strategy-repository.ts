import type { RepositoryContext } from './repository-context.js';
import { toDate } from './row-codec.js';
import type { BackupStrategyRepository, BackupStrategyRow } from './state-store.js';

export class SqlBackupStrategyRepository implements BackupStrategyRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async set(row: BackupStrategyRow): Promise<void> {
    await this.ctx.dialect.upsert(
      this.ctx.db.insertInto('backup_strategies').values({
        tenant_id: row.tenantId,
        instance_id: row.instanceId,
        backend: row.backend,
        container: row.container,
        created_at: row.createdAt,
      }),
      ['tenant_id', 'instance_id'],
      { backend: row.backend, container: row.container },
    );
  }

  async list(filter: { tenantId?: string; instanceId?: string }): Promise<BackupStrategyRow[]> {
    let query = this.ctx.db.selectFrom('backup_strategies').selectAll();
    if (filter.tenantId !== undefined) query = query.where('tenant_id', '=', filter.tenantId);
    if (filter.instanceId !== undefined) query = query.where('instance_id', '=', filter.instanceId);
    const rows = await query.orderBy('tenant_id').orderBy('instance_id').execute();
    return rows.map((r) => ({
      tenantId: r.tenant_id,
      instanceId: r.instance_id,
      backend: r.backend,
      container: r.container,
      createdAt: toDate(r.created_at),
    }));
  }

  async delete(tenantId: string, instanceId: string): Promise<void> {
    await this.ctx.db
      .deleteFrom('backup_strategies')
      .where('tenant_id', '=', tenantId)
      .where('instance_id', '=', instanceId)
      .execute();
  }
}
