import { sql } from 'kysely';
import type { RepositoryContext } from './repository-context.js';
import type { QuotaRepository, QuotaResource, QuotaRow } from './state-store.js';

export class SqlQuotaRepository implements QuotaRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async list(tenantId: string): Promise<QuotaRow[]> {
    const rows = await this.ctx.db
      .selectFrom('quotas')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .orderBy('resource')
      .execute();
    return rows.map((r) => ({ tenantId: r.tenant_id, resource: r.resource as QuotaResource, hardLimit: r.hard_limit }));
  }

  async set(row: QuotaRow): Promise<void> {
    await this.ctx.dialect.upsert(
      this.ctx.db
        .insertInto('quotas')
        .values({ tenant_id: row.tenantId, resource: row.resource, hard_limit: row.hardLimit }),
      ['tenant_id', 'resource'],
      { hard_limit: row.hardLimit },
    );
  }

  // An upsert, not `select … for update`: it locks the row on every engine (SQLite has no FOR
  // UPDATE, and its `begin immediate` already serialises writers), and it needs no separate
  // insert, whose duplicate-key error makes two waiting MySQL transactions deadlock.
  async lockTenant(tenantId: string, now: Date): Promise<void> {
    await this.ctx.dialect.upsert(
      this.ctx.db.insertInto('quota_locks').values({ tenant_id: tenantId, locked_at: now }),
      ['tenant_id'],
      { locked_at: now },
    );
  }

  async usage(tenantId: string): Promise<Record<QuotaResource, number>> {
    let query = this.ctx.db
      .selectFrom('instances')
      .leftJoin('flavors', 'flavors.id', 'instances.flavor_id')
      .select((eb) => [
        eb.fn.countAll().as('instances'),
        eb.fn.sum('instances.volume_size_gb').as('volumes'),
        eb.fn.sum('flavors.ram_mb').as('ram'),
      ])
      .where('instances.tenant_id', '=', tenantId)
      .where('instances.deleted', '=', false)
      // a backup verification's scratch instance is Coffer's, not the project's to pay for
      .where('instances.internal', '=', false);
    // MySQL's repeatable read answers plain reads from the snapshot of the transaction's first
    // read, which may predate lockTenant; a locking read sees what was committed since. (MariaDB
    // knows no FOR SHARE; PostgreSQL reads afresh per statement and refuses locks on aggregates.)
    if (this.ctx.dialect.name === 'mysql') query = query.modifyEnd(sql`lock in share mode`);
    const r = await query.executeTakeFirstOrThrow();
    // Counts and sums come back as bigint text from PostgreSQL, decimal text from MySQL, and
    // SUM over no rows is NULL everywhere.
    return {
      instances: Number(r.instances),
      ram: Number(r.ram ?? 0),
      volumes: Number(r.volumes ?? 0),
      backups: await this.countBackups(tenantId),
    };
  }

  private async countBackups(tenantId: string): Promise<number> {
    let query = this.ctx.db
      .selectFrom('backups')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('tenant_id', '=', tenantId)
      .where('deleted', '=', false);
    if (this.ctx.dialect.name === 'mysql') query = query.modifyEnd(sql`lock in share mode`);
    return Number((await query.executeTakeFirstOrThrow()).n);
  }
}
