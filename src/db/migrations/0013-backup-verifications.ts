import type { Kysely } from 'kysely';
import { columnTypes } from './column-types.js';

// Backup verification (Coffer's): the latest verification of each backup, in a table of its own
// so the backups table keeps Trove's shape, and the `internal` mark on instances that Coffer
// makes for itself (a verification's scratch instance): its project never sees one in a list, a
// show or its quotas.

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  const builder = db.schema
    .createTable('backup_verifications')
    .addColumn('backup_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('message', 'text')
    // JSON: what the engine's own check counted
    .addColumn('checks', t.longText)
    .addColumn('scratch_instance_id', 'varchar(64)')
    .addColumn('started_at', t.timestamp, (c) => c.notNull())
    .addColumn('finished_at', t.timestamp)
    .addColumn('updated_at', t.timestamp, (c) => c.notNull());
  await (t.tableOptions === undefined ? builder : builder.modifyEnd(t.tableOptions)).execute();
  await db.schema.alterTable('instances').addColumn('internal', 'boolean', (c) => c.notNull().defaultTo(false)).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('instances').dropColumn('internal').execute();
  await db.schema.dropTable('backup_verifications').ifExists().execute();
}
