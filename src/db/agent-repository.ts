import type { RepositoryContext } from './repository-context.js';
import { toDate } from './row-codec.js';
import type { AgentRepository, AgentRow } from './state-store.js';

export class SqlAgentRepository implements AgentRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async heartbeat(host: string, now: Date): Promise<void> {
    await this.ctx.dialect.upsert(
      this.ctx.db.insertInto('agents').values({ host, last_seen_at: now }),
      ['host'],
      { last_seen_at: now },
    );
  }

  async listAlive(since: Date): Promise<AgentRow[]> {
    const rows = await this.ctx.db
      .selectFrom('agents')
      .selectAll()
      .where('last_seen_at', '>=', since)
      .orderBy('host')
      .execute();
    return rows.map((r) => ({ host: r.host, lastSeenAt: toDate(r.last_seen_at) }));
  }
}
