import type { Kysely } from 'kysely';
import { columnTypes } from './column-types.js';

// What a guest's heartbeats carry besides the status, kept beside it so that a page of instance
// views reads one row per instance and asks no guest: the bytes used in the instance's volume
// and when they were measured (NULL until the first measurement), and the engine's health as the
// guest last described it (a failure, a restart that keeps failing; NULL when it said nothing).

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  // one ALTER per column: SQLite adds only one at a time
  await db.schema.alterTable('service_statuses').addColumn('volume_used_bytes', 'bigint').execute();
  await db.schema.alterTable('service_statuses').addColumn('volume_measured_at', t.timestamp).execute();
  await db.schema.alterTable('service_statuses').addColumn('health_detail', t.longText).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const column of ['health_detail', 'volume_measured_at', 'volume_used_bytes']) {
    await db.schema.alterTable('service_statuses').dropColumn(column).execute();
  }
}
