import type { Selectable } from 'kysely';
import { CofferError, configurationValues } from '../common/index.js';
import { mapConstraintErrors } from './constraint-error.js';
import { instanceFromRow } from './instance-repository.js';
import type { RepositoryContext } from './repository-context.js';
import { runReusable } from './reusable-query.js';
import { toBool, toDate, toNullableDate } from './row-codec.js';
import type { ConfigurationsTable } from './schema.js';
import type {
  ConfigurationPatch,
  ConfigurationRepository,
  ConfigurationRow,
  InstanceRow,
  NewConfiguration,
  Page,
} from './state-store.js';

// Trove's wording (reference 2.8).
const configurationNotFound = (id: string) =>
  new CofferError('NotFound', `Configuration group with ID ${id} could not be found.`);

function toRow(r: Selectable<ConfigurationsTable>): ConfigurationRow {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    name: r.name,
    description: r.description,
    datastoreVersionId: r.datastore_version_id,
    // Written through the same schema: a row that no longer parses is a bug, not user input.
    values: configurationValues.parse(JSON.parse(r.config_values)),
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
    deleted: toBool(r.deleted),
    deletedAt: toNullableDate(r.deleted_at),
  };
}

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) throw new CofferError('BadRequest', `limit must be a positive integer, not ${limit}.`);
}

/** One row past the page tells whether another page follows. */
function pageOf<T extends { id: string }>(rows: T[], limit: number): Page<T> {
  const items = rows.slice(0, limit);
  return { items, nextMarker: rows.length > limit ? (items[items.length - 1]?.id ?? null) : null };
}

export class SqlConfigurationRepository implements ConfigurationRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async create(row: NewConfiguration): Promise<void> {
    await mapConstraintErrors(
      () =>
        this.ctx.db
          .insertInto('configurations')
          .values({
            id: row.id,
            tenant_id: row.tenantId,
            name: row.name,
            description: row.description,
            datastore_version_id: row.datastoreVersionId,
            config_values: JSON.stringify(configurationValues.parse(row.values)),
            created_at: row.createdAt,
            updated_at: row.updatedAt,
            deleted: false,
            deleted_at: null,
          })
          .execute(),
      { unique: (cause) => new CofferError('Conflict', `Configuration group ${row.id} already exists.`, { cause }) },
    );
  }

  async get(id: string, scope: { tenantId?: string } = {}): Promise<ConfigurationRow | undefined> {
    let query = this.ctx.db.selectFrom('configurations').selectAll().where('id', '=', id).where('deleted', '=', false);
    if (scope.tenantId !== undefined) query = query.where('tenant_id', '=', scope.tenantId);
    const r = await query.executeTakeFirst();
    return r && toRow(r);
  }

  async getMany(ids: readonly string[]): Promise<Map<string, ConfigurationRow>> {
    if (ids.length === 0) return new Map();
    const rows = await runReusable(this.ctx, 'configurations.getMany', [ids] as const, ([ids]) =>
      this.ctx.db.selectFrom('configurations').selectAll().where('id', 'in', ids).where('deleted', '=', false),
    );
    return new Map(rows.map((r) => [r.id, toRow(r)]));
  }

  async list(filter: { tenantId?: string; limit: number; marker?: string }): Promise<Page<ConfigurationRow>> {
    checkLimit(filter.limit);
    let query = this.ctx.db.selectFrom('configurations').selectAll().where('deleted', '=', false);
    if (filter.tenantId !== undefined) query = query.where('tenant_id', '=', filter.tenantId);
    if (filter.marker !== undefined) query = query.where('id', '>', filter.marker);
    const rows = await query.orderBy('id').limit(filter.limit + 1).execute();
    return pageOf(rows.map(toRow), filter.limit);
  }

  async update(id: string, patch: ConfigurationPatch): Promise<void> {
    const result = await this.ctx.db
      .updateTable('configurations')
      .set({
        ...(patch.name !== undefined && { name: patch.name }),
        ...(patch.description !== undefined && { description: patch.description }),
        ...(patch.values !== undefined && { config_values: JSON.stringify(configurationValues.parse(patch.values)) }),
        updated_at: new Date(),
      })
      .where('id', '=', id)
      .where('deleted', '=', false)
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) throw configurationNotFound(id);
  }

  async markDeleted(id: string, now: Date): Promise<void> {
    const result = await this.ctx.db
      .updateTable('configurations')
      .set({ deleted: true, deleted_at: now, updated_at: now })
      .where('id', '=', id)
      .where('deleted', '=', false)
      .executeTakeFirst();
    if (result.numUpdatedRows > 0n) return;
    const exists = await this.ctx.db.selectFrom('configurations').select('id').where('id', '=', id).executeTakeFirst();
    if (exists === undefined) throw configurationNotFound(id);
  }

  async instances(id: string, filter: { tenantId?: string; limit: number; marker?: string }): Promise<Page<InstanceRow>> {
    checkLimit(filter.limit);
    let query = this.ctx.db.selectFrom('instances').selectAll().where('configuration_id', '=', id).where('deleted', '=', false);
    if (filter.tenantId !== undefined) query = query.where('tenant_id', '=', filter.tenantId);
    if (filter.marker !== undefined) query = query.where('id', '>', filter.marker);
    const rows = await query.orderBy('id').limit(filter.limit + 1).execute();
    return pageOf(rows.map(instanceFromRow), filter.limit);
  }

  async countInstances(id: string, scope: { tenantId?: string } = {}): Promise<number> {
    let query = this.ctx.db
      .selectFrom('instances')
      .select((eb) => eb.fn.countAll().as('count'))
      .where('configuration_id', '=', id)
      .where('deleted', '=', false);
    if (scope.tenantId !== undefined) query = query.where('tenant_id', '=', scope.tenantId);
    // PostgreSQL counts in int8, which pg hands back as text.
    return Number((await query.executeTakeFirstOrThrow()).count);
  }
}
