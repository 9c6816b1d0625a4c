import type { RepositoryContext } from './repository-context.js';
import { engineMetricsOf } from './service-status-repository.js';
import type { ConductorLastSeenRepository, InstanceHeartbeat, ServiceStatusName } from './state-store.js';

export class SqlConductorLastSeenRepository implements ConductorLastSeenRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  // Atomic statements instead of one engine-specific upsert (MySQL's affected-row count cannot
  // tell "inserted" from "left alone"): raise the stored time, else insert the first one, else
  // someone inserted concurrently and the raise is tried once more against their row.
  // The raise is tried first only when the row is there: inside a transaction on MySQL, an
  // UPDATE that finds no row locks the gap where it would be, and two first messages of two
  // instances would then deadlock on each other's gap when they insert.
  async recordIfNewer(instanceId: string, method: string, sent: number): Promise<boolean> {
    if (await this.exists(instanceId, method)) return this.raise(instanceId, method, sent);
    const inserted = await this.ctx.dialect.insertIfAbsent(
      this.ctx.db.insertInto('conductor_last_seen').values({ instance_id: instanceId, method_name: method, sent }),
    );
    return inserted || this.raise(instanceId, method, sent);
  }

  async listHeartbeats(): Promise<InstanceHeartbeat[]> {
    const rows = await this.ctx.db
      .selectFrom('conductor_last_seen as seen')
      .innerJoin('instances as i', 'i.id', 'seen.instance_id')
      .innerJoin('datastore_versions as v', 'v.id', 'i.datastore_version_id')
      .innerJoin('datastores as d', 'd.id', 'v.datastore_id')
      .leftJoin('service_statuses as s', 's.instance_id', 'seen.instance_id')
      .select(['seen.instance_id', 'seen.sent', 'i.tenant_id', 'd.name', 's.status', 's.engine_metrics', 's.engine_metrics_at'])
      .where('seen.method_name', '=', 'heartbeat')
      .where('i.deleted', '=', false)
      .orderBy('seen.instance_id')
      .execute();
    return rows.map((row) => {
      const metrics = engineMetricsOf(row.engine_metrics, row.engine_metrics_at);
      return {
        instanceId: row.instance_id,
        tenantId: row.tenant_id,
        datastore: row.name,
        sentAt: Number(row.sent),
        ...(row.status === null ? {} : { status: row.status as ServiceStatusName }),
        ...(metrics === undefined ? {} : { engineMetrics: metrics }),
      };
    });
  }

  private async exists(instanceId: string, method: string): Promise<boolean> {
    const row = await this.ctx.db
      .selectFrom('conductor_last_seen')
      .select('sent')
      .where('instance_id', '=', instanceId)
      .where('method_name', '=', method)
      .executeTakeFirst();
    return row !== undefined;
  }

  private async raise(instanceId: string, method: string, sent: number): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('conductor_last_seen')
      .set({ sent })
      .where('instance_id', '=', instanceId)
      .where('method_name', '=', method)
      .where('sent', '<', sent)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }
}
