import type { RepositoryContext } from './repository-context.js';
import type { ConductorLastSeenRepository } from './state-store.js';

export class SqlConductorLastSeenRepository implements ConductorLastSeenRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  // Three atomic statements instead of one engine-specific upsert (MySQL's affected-row count
  // cannot tell "inserted" from "left alone"): raise the stored time, else insert the first one,
  // else someone inserted concurrently and the raise is tried once more against their row.
  async recordIfNewer(instanceId: string, method: string, sent: number): Promise<boolean> {
    if (await this.raise(instanceId, method, sent)) return true;
    const inserted = await this.ctx.dialect.insertIfAbsent(
      this.ctx.db.insertInto('conductor_last_seen').values({ instance_id: instanceId, method_name: method, sent }),
    );
    return inserted || this.raise(instanceId, method, sent);
  }

  private async raise(instanceId: string, method: string, sent: number): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('conductor_last_seen')
      .set({ sent })
      .where('instance_id', '=', instanceId)
      .where('method_name', '=', method)
      .where('sent', '<', sent)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }
}
