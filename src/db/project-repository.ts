import type { Selectable } from 'kysely';
import { CofferError, errors } from '../common/index.js';
import { mapConstraintErrors } from './constraint-error.js';
import type { RepositoryContext } from './repository-context.js';
import { toBool, toDate } from './row-codec.js';
import type { ProjectsTable } from './schema.js';
import type { ProjectRepository, ProjectRow } from './state-store.js';

type ProjectPatch = Parameters<ProjectRepository['update']>[1];

export function projectFromRow(r: Selectable<ProjectsTable>): ProjectRow {
  return {
    id: r.id,
    name: r.name,
    domainId: r.domain_id,
    description: r.description,
    enabled: toBool(r.enabled),
    createdAt: toDate(r.created_at),
  };
}

const duplicateName = (name: string) => (cause: unknown) =>
  new CofferError('Conflict', `A project named ${name} already exists in this domain.`, { cause });

export class SqlProjectRepository implements ProjectRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async create(row: ProjectRow): Promise<void> {
    await mapConstraintErrors(
      () =>
        this.ctx.db
          .insertInto('projects')
          .values({
            id: row.id,
            name: row.name,
            domain_id: row.domainId,
            description: row.description,
            enabled: row.enabled,
            created_at: row.createdAt,
          })
          .execute(),
      { unique: duplicateName(row.name) },
    );
  }

  async get(id: string): Promise<ProjectRow | undefined> {
    const r = await this.ctx.db.selectFrom('projects').selectAll().where('id', '=', id).executeTakeFirst();
    return r && projectFromRow(r);
  }

  async getByName(name: string, domainId: string): Promise<ProjectRow | undefined> {
    const r = await this.ctx.db
      .selectFrom('projects')
      .selectAll()
      .where('name', '=', name)
      .where('domain_id', '=', domainId)
      .executeTakeFirst();
    return r && projectFromRow(r);
  }

  async list(filter: { name?: string; domainId?: string } = {}): Promise<ProjectRow[]> {
    let query = this.ctx.db.selectFrom('projects').selectAll();
    if (filter.name !== undefined) query = query.where('name', '=', filter.name);
    if (filter.domainId !== undefined) query = query.where('domain_id', '=', filter.domainId);
    const rows = await query.orderBy('name').orderBy('id').execute();
    return rows.map(projectFromRow);
  }

  async update(id: string, patch: ProjectPatch): Promise<void> {
    const set = {
      ...(patch.name !== undefined && { name: patch.name }),
      ...(patch.description !== undefined && { description: patch.description }),
      ...(patch.enabled !== undefined && { enabled: patch.enabled }),
    };
    if (Object.keys(set).length === 0) {
      if ((await this.get(id)) === undefined) throw errors.notFound(`project ${id}`);
      return;
    }
    const result = await mapConstraintErrors(
      () => this.ctx.db.updateTable('projects').set(set).where('id', '=', id).executeTakeFirst(),
      { unique: duplicateName(patch.name ?? '') },
    );
    if (result.numUpdatedRows === 0n) throw errors.notFound(`project ${id}`);
  }

  /** idempotent; the project's role assignments and tokens go with it */
  async delete(id: string): Promise<void> {
    await this.ctx.db.deleteFrom('projects').where('id', '=', id).execute();
  }
}
