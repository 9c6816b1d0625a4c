import type { RepositoryContext } from './repository-context.js';
import type { ProjectKeyRepository } from './state-store.js';

export class SqlProjectKeyRepository implements ProjectKeyRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async get(tenantId: string): Promise<string | undefined> {
    const r = await this.ctx.db.selectFrom('project_keys').select('wrapped_key').where('tenant_id', '=', tenantId).executeTakeFirst();
    return r?.wrapped_key;
  }

  async getOrCreate(tenantId: string, wrappedKey: string, now: Date): Promise<string> {
    await this.ctx.dialect.insertIfAbsent(
      this.ctx.db.insertInto('project_keys').values({ tenant_id: tenantId, wrapped_key: wrappedKey, created_at: now }),
    );
    // Keys are never replaced, so the one that won the insert is the project's.
    return (await this.get(tenantId)) ?? wrappedKey;
  }
}
