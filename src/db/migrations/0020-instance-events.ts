import type { Kysely } from 'kysely';
import { columnTypes } from './column-types.js';

// What happened to an instance, as it happened (issue 12's events list): its service status
// changes (with the fault's first line when it failed) and the start and end of each task on it.
// Rows are written once and never changed; the newest few hundred per instance are kept.

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  const builder = db.schema
    .createTable('instance_events')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('instance_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('type', 'varchar(32)', (c) => c.notNull())
    .addColumn('name', 'varchar(64)', (c) => c.notNull())
    .addColumn('message', 'text')
    .addColumn('created_at', t.timestamp, (c) => c.notNull());
  await (t.tableOptions === undefined ? builder : builder.modifyEnd(t.tableOptions)).execute();
  await db.schema.createIndex('instance_events_instance_idx').on('instance_events').columns(['instance_id', 'created_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('instance_events').ifExists().execute();
}
