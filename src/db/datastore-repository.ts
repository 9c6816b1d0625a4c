import type { Selectable } from 'kysely';
import { z } from 'zod';
import {
  CofferError,
  configurationParameter,
  engineCapabilities,
  noEngineCapabilities,
  type ConfigurationParameter,
  type EngineCapabilities,
} from '../common/index.js';
import { mapConstraintErrors } from './constraint-error.js';
import type { RepositoryContext } from './repository-context.js';
import { runReusable } from './reusable-query.js';
import { toBool, toDate } from './row-codec.js';
import type { DatastoresTable, DatastoreVersionsTable } from './schema.js';
import type { DatastoreRepository, DatastoreRow, DatastoreVersionRow, NewDatastoreVersion } from './state-store.js';

function toDatastore(r: Selectable<DatastoresTable>): DatastoreRow {
  return { id: r.id, name: r.name, defaultVersionId: r.default_version_id };
}

// Rows outlive the code that wrote them: a capability this code knows and the row lacks is one
// the version did not report, so false; anything unreadable counts as no capabilities at all,
// which makes the API refuse the operation rather than send it to a guest that cannot do it.
function decodeCapabilities(text: string | null): EngineCapabilities {
  if (text === null) return { ...noEngineCapabilities };
  const stored = parseJson(text);
  if (stored === null || typeof stored !== 'object') return { ...noEngineCapabilities };
  const parsed = engineCapabilities.safeParse({ ...noEngineCapabilities, ...stored });
  return parsed.success ? parsed.data : { ...noEngineCapabilities };
}

const parameterList = z.array(configurationParameter);

function decodeParameters(text: string | null): ConfigurationParameter[] {
  if (text === null) return [];
  const parsed = parameterList.safeParse(parseJson(text));
  return parsed.success ? parsed.data : [];
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** the reason an inactive version gives when an administrator took it out of service */
export const disabledByAdmin = 'an administrator deactivated it';

function toVersion(r: Selectable<DatastoreVersionsTable>): DatastoreVersionRow {
  return {
    id: r.id,
    datastoreId: r.datastore_id,
    name: r.name,
    version: r.version,
    manager: r.manager,
    // an administrator's word wins over what agents report (migration 0024)
    active: toBool(r.active) && !toBool(r.disabled_by_admin),
    inactiveReason: toBool(r.disabled_by_admin) ? disabledByAdmin : r.inactive_reason,
    disabledByAdmin: toBool(r.disabled_by_admin),
    updatedAt: toDate(r.updated_at),
    capabilities: decodeCapabilities(r.capabilities),
    parameters: decodeParameters(r.parameters),
  };
}

// Trove's wording for these two errors.
const datastoreNotFound = (id: string, cause?: unknown) =>
  new CofferError('DatastoreNotFound', `Datastore '${id}' cannot be found.`, { cause });
const versionNotFound = (id: string) =>
  new CofferError('DatastoreVersionNotFound', `Datastore version '${id}' cannot be found.`);

export class SqlDatastoreRepository implements DatastoreRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async ensureDatastore(name: string, id: string): Promise<DatastoreRow> {
    await this.ctx.dialect.insertIfAbsent(
      this.ctx.db.insertInto('datastores').values({ id, name, default_version_id: null }),
    );
    const datastore = await this.getDatastoreByName(name);
    if (datastore === undefined) {
      throw new CofferError('Conflict', `Datastore id ${id} is already taken by another datastore than ${name}.`);
    }
    return datastore;
  }

  /** the version must belong to the datastore */
  async setDefaultVersion(datastoreId: string, versionId: string | null): Promise<void> {
    if (versionId !== null) {
      const version = await this.getVersion(versionId);
      if (version === undefined || version.datastoreId !== datastoreId) throw versionNotFound(versionId);
    }
    const result = await this.ctx.db
      .updateTable('datastores')
      .set({ default_version_id: versionId })
      .where('id', '=', datastoreId)
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) throw datastoreNotFound(datastoreId);
  }

  async getDatastore(id: string): Promise<DatastoreRow | undefined> {
    const r = await this.ctx.db.selectFrom('datastores').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toDatastore(r);
  }

  async getDatastores(ids: readonly string[]): Promise<Map<string, DatastoreRow>> {
    if (ids.length === 0) return new Map();
    const rows = await runReusable(this.ctx, 'datastores.getMany', [ids] as const, ([ids]) =>
      this.ctx.db.selectFrom('datastores').selectAll().where('id', 'in', ids),
    );
    return new Map(rows.map((r) => [r.id, toDatastore(r)]));
  }

  async getDatastoreByName(name: string): Promise<DatastoreRow | undefined> {
    const r = await this.ctx.db.selectFrom('datastores').selectAll().where('name', '=', name).executeTakeFirst();
    return r && toDatastore(r);
  }

  async listDatastores(): Promise<DatastoreRow[]> {
    const rows = await this.ctx.db.selectFrom('datastores').selectAll().orderBy('name').execute();
    return rows.map(toDatastore);
  }

  async upsertVersion(row: NewDatastoreVersion): Promise<DatastoreVersionRow> {
    const fields = {
      version: row.version,
      manager: row.manager,
      active: row.active,
      inactive_reason: row.inactiveReason,
      updated_at: row.updatedAt,
      capabilities: JSON.stringify(engineCapabilities.parse(row.capabilities ?? noEngineCapabilities)),
      parameters: JSON.stringify(parameterList.parse(row.parameters ?? [])),
    };
    await mapConstraintErrors(
      () =>
        this.ctx.dialect.upsert(
          this.ctx.db
            .insertInto('datastore_versions')
            .values({ id: row.id, datastore_id: row.datastoreId, name: row.name, ...fields }),
          ['datastore_id', 'name'],
          fields,
        ),
      {
        foreignKey: (cause) => datastoreNotFound(row.datastoreId, cause),
        unique: (cause) =>
          new CofferError('Conflict', `Datastore version id ${row.id} is already taken by another version.`, {
            cause,
          }),
      },
    );
    const stored = await this.getVersionByName(row.datastoreId, row.name);
    if (stored === undefined) {
      throw new CofferError('Conflict', `Datastore version id ${row.id} is already taken by another version.`);
    }
    return stored;
  }

  async getVersion(id: string): Promise<DatastoreVersionRow | undefined> {
    const r = await this.ctx.db
      .selectFrom('datastore_versions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return r && toVersion(r);
  }

  async getVersions(ids: readonly string[]): Promise<Map<string, DatastoreVersionRow>> {
    if (ids.length === 0) return new Map();
    const rows = await runReusable(this.ctx, 'datastore_versions.getMany', [ids] as const, ([ids]) =>
      this.ctx.db.selectFrom('datastore_versions').selectAll().where('id', 'in', ids),
    );
    return new Map(rows.map((r) => [r.id, toVersion(r)]));
  }

  async getVersionByName(datastoreId: string, name: string): Promise<DatastoreVersionRow | undefined> {
    const r = await this.ctx.db
      .selectFrom('datastore_versions')
      .selectAll()
      .where('datastore_id', '=', datastoreId)
      .where('name', '=', name)
      .executeTakeFirst();
    return r && toVersion(r);
  }

  async listVersions(datastoreId?: string): Promise<DatastoreVersionRow[]> {
    let query = this.ctx.db.selectFrom('datastore_versions').selectAll();
    if (datastoreId !== undefined) query = query.where('datastore_id', '=', datastoreId);
    const rows = await query.orderBy('datastore_id').orderBy('name').execute();
    return rows.map(toVersion);
  }

  async setDisabledByAdmin(id: string, disabled: boolean): Promise<void> {
    const result = await this.ctx.db.updateTable('datastore_versions').set({ disabled_by_admin: disabled }).where('id', '=', id).executeTakeFirst();
    if (result.numUpdatedRows === 0n) throw versionNotFound(id);
  }
}
