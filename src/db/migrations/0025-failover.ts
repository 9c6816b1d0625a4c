import type { Kysely } from 'kysely';
import { columnTypes } from './column-types.js';

// Automatic failover (issue 11). A replication group's settings live on its primary's row and
// move with the primary: `failover` (on unless its owner turned it off) and
// `synchronous_replication` (commits wait for a replica). `lease_renewed_at` is the last time the
// primary's guest renewed its lease: while it renews, its engine may take writes; once it stops,
// the guest stops the engine itself before the control plane promotes a replica (null: it never
// held one, and no failover happens without that guarantee). `fenced_at` marks a primary a
// failover replaced: its engine must not run as a primary again.

export async function up(db: Kysely<unknown>): Promise<void> {
  const types = columnTypes(db);
  await db.schema
    .alterTable('instances')
    .addColumn('failover', 'boolean', (c) => c.notNull().defaultTo(true))
    .execute();
  await db.schema
    .alterTable('instances')
    .addColumn('synchronous_replication', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
  await db.schema.alterTable('instances').addColumn('lease_renewed_at', types.timestamp).execute();
  await db.schema.alterTable('instances').addColumn('fenced_at', types.timestamp).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const column of ['fenced_at', 'lease_renewed_at', 'synchronous_replication', 'failover']) {
    await db.schema.alterTable('instances').dropColumn(column).execute();
  }
}
