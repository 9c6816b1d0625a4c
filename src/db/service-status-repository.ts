import type { Selectable } from 'kysely';
import type { RepositoryContext } from './repository-context.js';
import { runReusable } from './reusable-query.js';
import { engineMetrics, type EngineMetricsSample } from '../common/index.js';
import { fromJson, toDate, toJson, toNullableDate } from './row-codec.js';
import type { ServiceStatusesTable } from './schema.js';
import type { GuestReport, ServiceStatusName, ServiceStatusRepository, ServiceStatusRow, ServiceStatusSummary } from './state-store.js';

/** the stored sample, when it is one this build reads (a row written by another version may not be) */
export function engineMetricsOf(text: string | null, at: Date | string | null): EngineMetricsSample | undefined {
  const measuredAt = toNullableDate(at);
  if (text === null || measuredAt === null) return undefined;
  const parsed = engineMetrics.safeParse(fromJson(text));
  return parsed.success ? { values: parsed.data, measuredAt } : undefined;
}

/** The columns of ServiceStatusSummary. */
const summaryColumns = ['instance_id', 'status', 'updated_at', 'volume_used_bytes', 'volume_measured_at', 'awaiting_adoption'] as const;

function toSummary(r: Pick<Selectable<ServiceStatusesTable>, (typeof summaryColumns)[number]>): ServiceStatusSummary {
  const measuredAt = toNullableDate(r.volume_measured_at);
  return {
    instanceId: r.instance_id,
    status: r.status as ServiceStatusName,
    updatedAt: toDate(r.updated_at),
    // bigint comes back as text from PostgreSQL; volumes stay far below 2^53 bytes
    ...(r.volume_used_bytes === null || measuredAt === null ? {} : { volumeUsage: { usedBytes: Number(r.volume_used_bytes), measuredAt } }),
    ...(r.awaiting_adoption === true || r.awaiting_adoption === 1 ? { awaitingAdoption: true as const } : {}),
  };
}

function toRow(r: Selectable<ServiceStatusesTable>): ServiceStatusRow {
  const { awaitingAdoption, ...summary } = toSummary(r);
  const metrics = engineMetricsOf(r.engine_metrics, r.engine_metrics_at);
  return {
    ...summary,
    ...(r.health_detail === null ? {} : { healthDetail: r.health_detail }),
    ...(metrics === undefined ? {} : { engineMetrics: metrics }),
    ...(awaitingAdoption === undefined ? {} : { awaitingAdoption }),
  };
}

export class SqlServiceStatusRepository implements ServiceStatusRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async get(instanceId: string): Promise<ServiceStatusRow | undefined> {
    const r = await this.ctx.db
      .selectFrom('service_statuses')
      .selectAll()
      .where('instance_id', '=', instanceId)
      .executeTakeFirst();
    return r && toRow(r);
  }

  async getMany(instanceIds: readonly string[]): Promise<Map<string, ServiceStatusSummary>> {
    if (instanceIds.length === 0) return new Map();
    const rows = await runReusable(this.ctx, 'service_statuses.getMany', [instanceIds] as const, ([instanceIds]) =>
      this.ctx.db.selectFrom('service_statuses').select(summaryColumns).where('instance_id', 'in', instanceIds),
    );
    return new Map(rows.map((r) => [r.instance_id, toSummary(r)]));
  }

  async set(row: Pick<ServiceStatusRow, 'instanceId' | 'status' | 'updatedAt'>): Promise<void> {
    const fields = { status: row.status, updated_at: row.updatedAt, awaiting_adoption: false };
    await this.ctx.dialect.upsert(
      this.ctx.db.insertInto('service_statuses').values({ instance_id: row.instanceId, ...fields }),
      ['instance_id'],
      fields,
    );
  }

  async markAwaitingAdoption(instanceIds: readonly string[]): Promise<void> {
    if (instanceIds.length === 0) return;
    await this.ctx.db.updateTable('service_statuses').set({ awaiting_adoption: true }).where('instance_id', 'in', [...instanceIds]).execute();
  }

  async report(instanceId: string, report: GuestReport): Promise<void> {
    const fields = {
      ...(report.volumeUsage === undefined
        ? {}
        : { volume_used_bytes: report.volumeUsage.usedBytes, volume_measured_at: report.volumeUsage.measuredAt }),
      ...(report.healthDetail === undefined ? {} : { health_detail: report.healthDetail }),
      ...(report.engineMetrics === undefined
        ? {}
        : { engine_metrics: toJson(report.engineMetrics.values), engine_metrics_at: report.engineMetrics.measuredAt }),
    };
    if (Object.keys(fields).length === 0) return;
    await this.ctx.db
      .updateTable('service_statuses')
      .set(fields)
      .where('instance_id', '=', instanceId)
      // a heartbeat handled while its instance is deleted must not bring back what the delete cleared
      .where((eb) =>
        eb.exists(eb.selectFrom('instances').select('id').where('id', '=', instanceId).where('deleted', '=', false)),
      )
      .execute();
  }

  async clearReport(instanceId: string): Promise<void> {
    await this.ctx.db
      .updateTable('service_statuses')
      .set({ volume_used_bytes: null, volume_measured_at: null, health_detail: null, engine_metrics: null, engine_metrics_at: null })
      .where('instance_id', '=', instanceId)
      .execute();
  }
}
