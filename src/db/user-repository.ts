import type { Selectable } from 'kysely';
import { CofferError, errors } from '../common/index.js';
import { mapConstraintErrors } from './constraint-error.js';
import type { RepositoryContext } from './repository-context.js';
import { toBool, toDate } from './row-codec.js';
import type { UsersTable } from './schema.js';
import type { UserRepository, UserRow } from './state-store.js';

type UserPatch = Parameters<UserRepository['update']>[1];

export function userFromRow(r: Selectable<UsersTable>): UserRow {
  return {
    id: r.id,
    name: r.name,
    domainId: r.domain_id,
    passwordHash: r.password_hash,
    defaultProjectId: r.default_project_id,
    email: r.email,
    description: r.description,
    enabled: toBool(r.enabled),
    createdAt: toDate(r.created_at),
  };
}

const duplicateName = (name: string) => (cause: unknown) =>
  new CofferError('Conflict', `A user named ${name} already exists in this domain.`, { cause });

export class SqlUserRepository implements UserRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async create(row: UserRow): Promise<void> {
    await mapConstraintErrors(
      () =>
        this.ctx.db
          .insertInto('users')
          .values({
            id: row.id,
            name: row.name,
            domain_id: row.domainId,
            password_hash: row.passwordHash,
            default_project_id: row.defaultProjectId,
            email: row.email,
            description: row.description,
            enabled: row.enabled,
            created_at: row.createdAt,
          })
          .execute(),
      { unique: duplicateName(row.name) },
    );
  }

  async get(id: string): Promise<UserRow | undefined> {
    const r = await this.ctx.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return r && userFromRow(r);
  }

  async getByName(name: string, domainId: string): Promise<UserRow | undefined> {
    const r = await this.ctx.db
      .selectFrom('users')
      .selectAll()
      .where('name', '=', name)
      .where('domain_id', '=', domainId)
      .executeTakeFirst();
    return r && userFromRow(r);
  }

  async list(filter: { name?: string; domainId?: string } = {}): Promise<UserRow[]> {
    let query = this.ctx.db.selectFrom('users').selectAll();
    if (filter.name !== undefined) query = query.where('name', '=', filter.name);
    if (filter.domainId !== undefined) query = query.where('domain_id', '=', filter.domainId);
    const rows = await query.orderBy('name').orderBy('id').execute();
    return rows.map(userFromRow);
  }

  async update(id: string, patch: UserPatch): Promise<void> {
    const set = {
      ...(patch.name !== undefined && { name: patch.name }),
      ...(patch.passwordHash !== undefined && { password_hash: patch.passwordHash }),
      ...(patch.defaultProjectId !== undefined && { default_project_id: patch.defaultProjectId }),
      ...(patch.email !== undefined && { email: patch.email }),
      ...(patch.description !== undefined && { description: patch.description }),
      ...(patch.enabled !== undefined && { enabled: patch.enabled }),
    };
    if (Object.keys(set).length === 0) {
      if ((await this.get(id)) === undefined) throw errors.notFound(`user ${id}`);
      return;
    }
    const result = await mapConstraintErrors(
      () => this.ctx.db.updateTable('users').set(set).where('id', '=', id).executeTakeFirst(),
      { unique: duplicateName(patch.name ?? '') },
    );
    if (result.numUpdatedRows === 0n) throw errors.notFound(`user ${id}`);
  }

  /** idempotent; the user's role assignments and tokens go with it */
  async delete(id: string): Promise<void> {
    await this.ctx.db.deleteFrom('users').where('id', '=', id).execute();
  }
}
