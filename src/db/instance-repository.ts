import { sql, type ExpressionBuilder, type Selectable, type SelectQueryBuilder, type Updateable } from 'kysely';
import { CofferError, errors } from '../common/index.js';
import { mapConstraintErrors } from './constraint-error.js';
import { runReusable } from './reusable-query.js';
import type { RepositoryContext } from './repository-context.js';
import { fromJson, toBool, toDate, toJson, toNullableDate } from './row-codec.js';
import type { Database, InstancesTable } from './schema.js';
import { SqlServiceStatusRepository } from './service-status-repository.js';
import type {
  InstanceAccess,
  InstancePatch,
  InstanceRepository,
  InstanceRow,
  InstanceSummaryRow,
  InstanceTls,
  NewInstance,
  Page,
  TaskStatusName,
} from './state-store.js';

/**
 * A row's live replicas, read with it in the same statement (a correlated subquery on the
 * replica_of_id index): a page of instances shows each one's replicas at no statement more.
 */
function replicaIdsColumn(ctx: RepositoryContext) {
  const aggregate =
    ctx.dialect.name === 'postgres'
      ? sql<string | null>`string_agg(r.id, ',' order by r.id)`
      : ctx.dialect.name === 'mysql'
        ? sql<string | null>`group_concat(r.id order by r.id separator ',')`
        : sql<string | null>`group_concat(r.id, ',')`;
  return (eb: ExpressionBuilder<Database, 'instances'>) =>
    eb
      .selectFrom('instances as r')
      .select(aggregate.as('ids'))
      .whereRef('r.replica_of_id', '=', 'instances.id')
      .where('r.deleted', '=', false)
      .as('replica_ids');
}

function withReplicas(r: Selectable<InstancesTable> & { replica_ids: string | null }): InstanceRow {
  const row = instanceFromRow(r);
  const replicaIds = replicaIdsFrom(r.replica_ids);
  return replicaIds === undefined ? row : { ...row, replicaIds };
}

function replicaIdsFrom(text: string | null): string[] | undefined {
  // SQLite's group_concat keeps no order: sorted here for all
  return text === null || text === '' ? undefined : text.split(',').sort();
}

/** The columns of InstanceSummaryRow. */
const summaryColumns = [
  'id',
  'name',
  'tenant_id',
  'flavor_id',
  'volume_size_gb',
  'datastore_version_id',
  'task_status',
  'address',
  'port',
  'access',
  'created_at',
  'replica_of_id',
] as const;

function summaryFromRow(r: Pick<Selectable<InstancesTable>, (typeof summaryColumns)[number]> & { replica_ids: string | null }): InstanceSummaryRow {
  const replicaIds = replicaIdsFrom(r.replica_ids);
  return {
    id: r.id,
    name: r.name,
    tenantId: r.tenant_id,
    flavorId: r.flavor_id,
    volumeSizeGb: r.volume_size_gb,
    datastoreVersionId: r.datastore_version_id,
    taskStatus: r.task_status as TaskStatusName,
    address: r.address,
    port: r.port,
    access: fromJson<InstanceAccess>(r.access),
    createdAt: toDate(r.created_at),
    replicaOfId: r.replica_of_id,
    ...(replicaIds === undefined ? {} : { replicaIds }),
  };
}

type PageFilter = { tenantId?: string; limit: number; marker?: string; host?: string };

/** The live, listed instances of a page (InstanceRepository.list), one row past it. */
function pageOf<O>(query: SelectQueryBuilder<Database, 'instances', O>, [tenantId, host, marker, limit]: readonly [string | undefined, string | undefined, string | undefined, number]) {
  let q = query.where('deleted', '=', false).where('internal', '=', false);
  if (tenantId !== undefined) q = q.where('tenant_id', '=', tenantId);
  if (host !== undefined) q = q.where('host', '=', host);
  if (marker !== undefined) q = q.where('id', '>', marker);
  return q.orderBy('id').limit(limit);
}

function pageValues(filter: PageFilter) {
  if (!Number.isInteger(filter.limit) || filter.limit < 1) {
    throw new CofferError('BadRequest', `limit must be a positive integer, not ${filter.limit}.`);
  }
  // One row past the page tells whether another page follows.
  return [filter.tenantId, filter.host, filter.marker, filter.limit + 1] as const;
}

function toPage<R, T extends { id: string }>(rows: readonly R[], limit: number, map: (row: R) => T): Page<T> {
  const items = rows.slice(0, limit).map(map);
  return { items, nextMarker: rows.length > limit ? (items[items.length - 1]?.id ?? null) : null };
}

/** A live primary that holds a lease: failover on, not a replica, not fenced by a failover. */
function leaseHolder(eb: ExpressionBuilder<Database, 'instances'>) {
  return eb.and([eb('deleted', '=', false), eb('failover', '=', true), eb('replica_of_id', 'is', null), eb('fenced_at', 'is', null)]);
}

/** Such a primary at rest whose lease was last renewed before `renewedBefore`: one to fail over. */
function lapsedBefore(renewedBefore: Date) {
  return (eb: ExpressionBuilder<Database, 'instances'>) => eb.and([leaseHolder(eb), eb('task_status', '=', 'NONE'), eb('lease_renewed_at', '<', renewedBefore)]);
}

export function instanceFromRow(r: Selectable<InstancesTable>): InstanceRow {
  return {
    id: r.id,
    name: r.name,
    tenantId: r.tenant_id,
    flavorId: r.flavor_id,
    volumeSizeGb: r.volume_size_gb,
    datastoreVersionId: r.datastore_version_id,
    taskStatus: r.task_status as TaskStatusName,
    taskDescription: r.task_description,
    taskStartTime: toNullableDate(r.task_start_time),
    host: r.host,
    address: r.address,
    port: r.port,
    access: fromJson<InstanceAccess>(r.access),
    tls: fromJson<InstanceTls>(r.tls),
    configurationId: r.configuration_id,
    // PostgreSQL and MariaDB drivers may hand integers back as text
    desiredGeneration: Number(r.desired_generation),
    appliedGeneration: Number(r.applied_generation),
    walArchivedUntil: toNullableDate(r.wal_archived_until),
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
    deleted: toBool(r.deleted),
    deletedAt: toNullableDate(r.deleted_at),
    internal: toBool(r.internal),
    replicaOfId: r.replica_of_id,
    failover: toBool(r.failover),
    synchronousReplication: toBool(r.synchronous_replication),
    leaseRenewedAt: toNullableDate(r.lease_renewed_at),
    fencedAt: toNullableDate(r.fenced_at),
  };
}

function toColumns(patch: InstancePatch): Updateable<InstancesTable> {
  return {
    ...(patch.name !== undefined && { name: patch.name }),
    ...(patch.flavorId !== undefined && { flavor_id: patch.flavorId }),
    ...(patch.datastoreVersionId !== undefined && { datastore_version_id: patch.datastoreVersionId }),
    ...(patch.volumeSizeGb !== undefined && { volume_size_gb: patch.volumeSizeGb }),
    ...(patch.taskStatus !== undefined && { task_status: patch.taskStatus }),
    ...(patch.taskDescription !== undefined && { task_description: patch.taskDescription }),
    ...(patch.taskStartTime !== undefined && { task_start_time: patch.taskStartTime }),
    ...(patch.host !== undefined && { host: patch.host }),
    ...(patch.address !== undefined && { address: patch.address }),
    ...(patch.port !== undefined && { port: patch.port }),
    ...(patch.access !== undefined && { access: toJson(patch.access) }),
    ...(patch.tls !== undefined && { tls: toJson(patch.tls) }),
    ...(patch.configurationId !== undefined && { configuration_id: patch.configurationId }),
    ...(patch.replicaOfId !== undefined && { replica_of_id: patch.replicaOfId }),
    ...(patch.failover !== undefined && { failover: patch.failover }),
    ...(patch.synchronousReplication !== undefined && { synchronous_replication: patch.synchronousReplication }),
    ...(patch.leaseRenewedAt !== undefined && { lease_renewed_at: patch.leaseRenewedAt }),
    ...(patch.fencedAt !== undefined && { fenced_at: patch.fencedAt }),
  };
}

export class SqlInstanceRepository implements InstanceRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async create(row: NewInstance): Promise<void> {
    await mapConstraintErrors(
      () =>
        this.ctx.db
          .insertInto('instances')
          .values({
            id: row.id,
            name: row.name,
            tenant_id: row.tenantId,
            flavor_id: row.flavorId,
            volume_size_gb: row.volumeSizeGb,
            datastore_version_id: row.datastoreVersionId,
            task_status: row.taskStatus,
            task_description: row.taskDescription,
            task_start_time: row.taskStartTime,
            host: null,
            address: null,
            port: null,
            access: toJson(row.access),
            tls: null,
            configuration_id: row.configurationId ?? null,
            // creating is the first change of what the instance should be
            desired_generation: 1,
            applied_generation: 0,
            created_at: row.createdAt,
            updated_at: row.updatedAt,
            deleted: false,
            deleted_at: null,
            internal: row.internal === true,
            replica_of_id: row.replicaOfId ?? null,
          })
          .execute(),
      { unique: (cause) => new CofferError('Conflict', `Instance ${row.id} already exists.`, { cause }) },
    );
  }

  async get(id: string, scope: { tenantId?: string; includeDeleted?: boolean } = {}): Promise<InstanceRow | undefined> {
    const [r] = await runReusable(this.ctx, `instances.get:${scope.includeDeleted === true}`, [id, scope.tenantId] as const, ([id, tenantId]) => {
      let query = this.ctx.db.selectFrom('instances').selectAll('instances').select(replicaIdsColumn(this.ctx)).where('id', '=', id);
      if (scope.includeDeleted !== true) query = query.where('deleted', '=', false);
      // a project's own view: Coffer's internal instances are not among its instances
      if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId).where('internal', '=', false);
      return query;
    });
    return r && withReplicas(r);
  }

  async list(filter: PageFilter): Promise<Page<InstanceRow>> {
    const rows = await runReusable(this.ctx, 'instances.list', pageValues(filter), (stand) =>
      pageOf(this.ctx.db.selectFrom('instances').selectAll('instances').select(replicaIdsColumn(this.ctx)), stand),
    );
    return toPage(rows, filter.limit, withReplicas);
  }

  async listSummaries(filter: PageFilter): Promise<Page<InstanceSummaryRow>> {
    const rows = await runReusable(this.ctx, 'instances.listSummaries', pageValues(filter), (stand) =>
      pageOf(this.ctx.db.selectFrom('instances').select(summaryColumns).select(replicaIdsColumn(this.ctx)), stand),
    );
    return toPage(rows, filter.limit, summaryFromRow);
  }

  async listAll(filter: { deleted?: boolean; tenantId?: string }): Promise<InstanceRow[]> {
    let query = this.ctx.db.selectFrom('instances').selectAll('instances').select(replicaIdsColumn(this.ctx));
    if (filter.deleted !== undefined) query = query.where('deleted', '=', filter.deleted);
    if (filter.tenantId !== undefined) query = query.where('tenant_id', '=', filter.tenantId);
    return (await query.orderBy('id').execute()).map(withReplicas);
  }

  /** applies to deleted instances too, so a delete flow can still record its progress */
  async update(id: string, patch: InstancePatch): Promise<void> {
    const result = await this.ctx.db
      .updateTable('instances')
      .set({ ...toColumns(patch), updated_at: new Date() })
      .where('id', '=', id)
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) throw errors.instanceNotFound(id);
  }

  async updateIfTask(id: string, from: readonly TaskStatusName[], patch: InstancePatch): Promise<boolean> {
    if (from.length === 0) return false;
    const result = await this.ctx.db
      .updateTable('instances')
      .set({ ...toColumns(patch), updated_at: new Date() })
      .where('id', '=', id)
      .where('task_status', 'in', from)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async renewLease(id: string, now: Date): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('instances')
      .set({ lease_renewed_at: now })
      .where('id', '=', id)
      .where(leaseHolder)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async claimFailover(id: string, renewedBefore: Date, patch: InstancePatch): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('instances')
      .set({ ...toColumns(patch), updated_at: new Date() })
      .where('id', '=', id)
      .where(lapsedBefore(renewedBefore))
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async lapsedLeases(renewedBefore: Date): Promise<InstanceRow[]> {
    const rows = await this.ctx.db
      .selectFrom('instances')
      .selectAll('instances')
      .select(replicaIdsColumn(this.ctx))
      .where(lapsedBefore(renewedBefore))
      .execute();
    return rows.map(withReplicas);
  }

  async fencedReplicas(): Promise<InstanceRow[]> {
    const rows = await this.ctx.db
      .selectFrom('instances')
      .selectAll()
      .where('deleted', '=', false)
      .where('fenced_at', 'is not', null)
      .where('replica_of_id', 'is not', null)
      .execute();
    return rows.map(instanceFromRow);
  }

  async bumpDesiredGeneration(id: string): Promise<void> {
    const result = await this.ctx.db
      .updateTable('instances')
      .set((eb) => ({ desired_generation: eb('desired_generation', '+', 1), updated_at: new Date() }))
      .where('id', '=', id)
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) throw errors.instanceNotFound(id);
  }

  async recordAppliedGeneration(id: string, generation: number): Promise<void> {
    // Conditional in SQL: of a late answer and a newer one, the higher generation stays.
    await this.ctx.db
      .updateTable('instances')
      .set({ applied_generation: generation, updated_at: new Date() })
      .where('id', '=', id)
      .where('applied_generation', '<', generation)
      .execute();
  }

  async recordWalArchived(id: string, through: Date): Promise<void> {
    await this.ctx.db
      .updateTable('instances')
      .set({ wal_archived_until: through })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('wal_archived_until', 'is', null), eb('wal_archived_until', '<', through)]))
      .execute();
  }

  /** idempotent: a second call keeps the first deletedAt */
  async markDeleted(id: string, now: Date): Promise<void> {
    const result = await this.ctx.db
      .updateTable('instances')
      .set({ deleted: true, deleted_at: now, updated_at: now })
      .where('id', '=', id)
      .where('deleted', '=', false)
      .executeTakeFirst();
    if (result.numUpdatedRows > 0n) {
      // what its guest measured and said goes with the instance; the status row stays (DELETED)
      await new SqlServiceStatusRepository(this.ctx).clearReport(id);
      return;
    }
    const exists = await this.ctx.db.selectFrom('instances').select('id').where('id', '=', id).executeTakeFirst();
    if (exists === undefined) throw errors.instanceNotFound(id);
  }

  async replicasOf(sourceIds: readonly string[]): Promise<Map<string, string[]>> {
    const found = new Map<string, string[]>();
    if (sourceIds.length === 0) return found;
    const rows = await this.ctx.db
      .selectFrom('instances')
      .select(['id', 'replica_of_id'])
      .where('replica_of_id', 'in', [...sourceIds])
      .where('deleted', '=', false)
      .orderBy('id')
      .execute();
    for (const row of rows) {
      const source = row.replica_of_id!;
      found.set(source, [...(found.get(source) ?? []), row.id]);
    }
    return found;
  }

  async countActive(tenantId: string): Promise<number> {
    const r = await this.ctx.db
      .selectFrom('instances')
      .select((eb) => eb.fn.countAll().as('count'))
      .where('tenant_id', '=', tenantId)
      .where('deleted', '=', false)
      .where('internal', '=', false)
      .executeTakeFirstOrThrow();
    // PostgreSQL counts in int8, which pg hands back as text.
    return Number(r.count);
  }

  async countLiveByHost(hosts: readonly string[]): Promise<Map<string, number>> {
    const counts = new Map(hosts.map((host) => [host, 0]));
    if (hosts.length === 0) return counts;
    const rows = await this.ctx.db
      .selectFrom('instances')
      .select(['host', (eb) => eb.fn.countAll().as('count')])
      .where('deleted', '=', false)
      .where('host', 'in', [...hosts])
      .groupBy('host')
      .execute();
    for (const row of rows) if (row.host !== null) counts.set(row.host, Number(row.count));
    return counts;
  }
}
