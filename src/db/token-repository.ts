import type { Selectable } from 'kysely';
import { CofferError } from '../common/index.js';
import { mapConstraintErrors } from './constraint-error.js';
import type { RepositoryContext } from './repository-context.js';
import { runReusable } from './reusable-query.js';
import { fromJson, toDate } from './row-codec.js';
import type { TokensTable } from './schema.js';
import { projectFromRow } from './project-repository.js';
import type { TokenHolder, TokenRepository, TokenRow } from './state-store.js';
import { userFromRow } from './user-repository.js';

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
    const [r] = await runReusable(this.ctx, 'tokens.get', [tokenHash] as const, ([tokenHash]) =>
      this.ctx.db.selectFrom('tokens').selectAll().where('token_hash', '=', tokenHash),
    );
    return r && toRow(r);
  }

  async holder(tokenHash: string): Promise<TokenHolder | undefined> {
    // one row per role: validation runs on every request, so the four look-ups it needs are one
    const rows = await this.ctx.db
      .selectFrom('tokens')
      .innerJoin('users', 'users.id', 'tokens.user_id')
      .innerJoin('projects', 'projects.id', 'tokens.project_id')
      .innerJoin('role_assignments', (join) =>
        join.onRef('role_assignments.user_id', '=', 'tokens.user_id').onRef('role_assignments.project_id', '=', 'tokens.project_id'),
      )
      .innerJoin('roles', 'roles.id', 'role_assignments.role_id')
      .select([
        'tokens.token_hash',
        'tokens.user_id',
        'tokens.project_id',
        'tokens.methods',
        'tokens.audit_id',
        'tokens.issued_at',
        'tokens.expires_at',
        'users.name as user_name',
        'users.domain_id as user_domain_id',
        'users.password_hash as user_password_hash',
        'users.default_project_id as user_default_project_id',
        'users.email as user_email',
        'users.description as user_description',
        'users.enabled as user_enabled',
        'users.created_at as user_created_at',
        'projects.name as project_name',
        'projects.domain_id as project_domain_id',
        'projects.description as project_description',
        'projects.enabled as project_enabled',
        'projects.created_at as project_created_at',
        'roles.id as role_id',
        'roles.name as role_name',
      ])
      .where('tokens.token_hash', '=', tokenHash)
      .orderBy('roles.name')
      .execute();
    const [r] = rows;
    if (r === undefined) return undefined;
    return {
      token: toRow(r),
      user: userFromRow({
        id: r.user_id,
        name: r.user_name,
        domain_id: r.user_domain_id,
        password_hash: r.user_password_hash,
        default_project_id: r.user_default_project_id,
        email: r.user_email,
        description: r.user_description,
        enabled: r.user_enabled,
        created_at: r.user_created_at,
      }),
      project: projectFromRow({
        id: r.project_id,
        name: r.project_name,
        domain_id: r.project_domain_id,
        description: r.project_description,
        enabled: r.project_enabled,
        created_at: r.project_created_at,
      }),
      roles: rows.map((role) => ({ id: role.role_id, name: role.role_name })),
    };
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
