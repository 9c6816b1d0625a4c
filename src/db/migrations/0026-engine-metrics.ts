import type { Kysely } from 'kysely';
import { columnTypes } from './column-types.js';

// What the guest last measured of its engine (connections, data size, operations, cache hit
// ratio, a replica's lag: src/common/engine-metrics.ts), as JSON beside the instance's status,
// and when it measured it: the metrics API and the Prometheus endpoints read it, never a guest.

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  // one ALTER per column: SQLite adds only one at a time
  await db.schema.alterTable('service_statuses').addColumn('engine_metrics', t.longText).execute();
  await db.schema.alterTable('service_statuses').addColumn('engine_metrics_at', t.timestamp).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const column of ['engine_metrics_at', 'engine_metrics']) {
    await db.schema.alterTable('service_statuses').dropColumn(column).execute();
  }
}
