import type { Selectable } from 'kysely';
import { CofferError } from '../common/index.js';
import { mapConstraintErrors } from './constraint-error.js';
import type { RepositoryContext } from './repository-context.js';
import { fromJson, toDate } from './row-codec.js';
import type { TokensTable } from './schema.js';
import type { TokenRepository, TokenRow } from './state-store.js';

function toRow(r: Selectable<TokensTable>): TokenRow {
  return {
    tokenHash: r.token_hash,
    userId: r.user_id,
    projectId: r.project_id,
    methods: fromJson<string[]>(r.methods) ?? [],
    auditId: r.audit_id,
    issuedAt: toDate(r.issued_at),
    expiresAt: toDate(r.expires_at),
  };
}

export class SqlTokenRepository implements TokenRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async create(row: TokenRow): Promise<void> {
    await mapConstraintErrors(
      () =>
        this.ctx.db
          .insertInto('tokens')
          .values({
            token_hash: row.tokenHash,
            user_id: row.userId,
            project_id: row.projectId,
            methods: JSON.stringify(row.methods),
            audit_id: row.auditId,
            issued_at: row.issuedAt,
            expires_at: row.expiresAt,
          })
          .execute(),
      {
        unique: (cause) => new CofferError('Conflict', 'This token is already stored.', { cause }),
        foreignKey: (cause) =>
          new CofferError('NotFound', `User ${row.userId} or project ${row.projectId} does not exist.`, { cause }),
      },
    );
  }

  async get(tokenHash: string): Promise<TokenRow | undefined> {
    const r = await this.ctx.db
      .selectFrom('tokens')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .executeTakeFirst();
    return r && toRow(r);
  }

  async delete(tokenHash: string): Promise<void> {
    await this.ctx.db.deleteFrom('tokens').where('token_hash', '=', tokenHash).execute();
  }

  async deleteForUser(userId: string): Promise<number> {
    const result = await this.ctx.db.deleteFrom('tokens').where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async deleteForProject(projectId: string): Promise<number> {
    const result = await this.ctx.db.deleteFrom('tokens').where('project_id', '=', projectId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async deleteForUserOnProject(userId: string, projectId: string): Promise<number> {
    const result = await this.ctx.db
      .deleteFrom('tokens')
      .where('user_id', '=', userId)
      .where('project_id', '=', projectId)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** removes the tokens whose expiry is at or before `now`; returns how many */
  async deleteExpired(now: Date): Promise<number> {
    const result = await this.ctx.db.deleteFrom('tokens').where('expires_at', '<=', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
