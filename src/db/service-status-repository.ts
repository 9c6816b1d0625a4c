import type { RepositoryContext } from './repository-context.js';
import { toDate } from './row-codec.js';
import type { ServiceStatusName, ServiceStatusRepository, ServiceStatusRow } from './state-store.js';

export class SqlServiceStatusRepository implements ServiceStatusRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async get(instanceId: string): Promise<ServiceStatusRow | undefined> {
    const r = await this.ctx.db
      .selectFrom('service_statuses')
      .selectAll()
      .where('instance_id', '=', instanceId)
      .executeTakeFirst();
    return (
      r && { instanceId: r.instance_id, status: r.status as ServiceStatusName, updatedAt: toDate(r.updated_at) }
    );
  }

  async set(row: ServiceStatusRow): Promise<void> {
    const fields = { status: row.status, updated_at: row.updatedAt };
    await this.ctx.dialect.upsert(
      this.ctx.db.insertInto('service_statuses').values({ instance_id: row.instanceId, ...fields }),
      ['instance_id'],
      fields,
    );
  }
}
