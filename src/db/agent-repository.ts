import type { RepositoryContext } from './repository-context.js';
import { fromJson, toDate } from './row-codec.js';
import type { AgentRepository, AgentRow } from './state-store.js';

export class SqlAgentRepository implements AgentRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async heartbeat(host: string, now: Date, engines: string[], contracts: Record<string, string> = {}): Promise<void> {
    const json = JSON.stringify(engines);
    const served = JSON.stringify(contracts);
    await this.ctx.dialect.upsert(
      this.ctx.db.insertInto('agents').values({ host, last_seen_at: now, engines: json, contracts: served }),
      ['host'],
      { last_seen_at: now, engines: json, contracts: served },
    );
  }

  async listAlive(since: Date): Promise<AgentRow[]> {
    const rows = await this.ctx.db
      .selectFrom('agents')
      .selectAll()
      .where('last_seen_at', '>=', since)
      .orderBy('host')
      .execute();
    return rows.map((r) => ({
      host: r.host,
      lastSeenAt: toDate(r.last_seen_at),
      engines: fromJson<string[]>(r.engines) ?? [],
      contracts: fromJson<Record<string, string>>(r.contracts) ?? {},
    }));
  }
}
