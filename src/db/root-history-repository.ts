import type { RepositoryContext } from './repository-context.js';
import { toDate } from './row-codec.js';
import type { RootHistoryRepository, RootHistoryRow } from './state-store.js';

export class SqlRootHistoryRepository implements RootHistoryRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async record(row: RootHistoryRow): Promise<RootHistoryRow> {
    await this.ctx.dialect.insertIfAbsent(
      this.ctx.db
        .insertInto('root_enabled_history')
        .values({ instance_id: row.instanceId, user_id: row.userId, created_at: row.createdAt }),
    );
    const stored = await this.get(row.instanceId);
    // Rows are never deleted, so the one that won the insert is still there.
    return stored ?? row;
  }

  async get(instanceId: string): Promise<RootHistoryRow | undefined> {
    const r = await this.ctx.db
      .selectFrom('root_enabled_history')
      .selectAll()
      .where('instance_id', '=', instanceId)
      .executeTakeFirst();
    return r && { instanceId: r.instance_id, userId: r.user_id, createdAt: toDate(r.created_at) };
  }
}
