import type { Kysely } from 'kysely';
import { columnTypes } from './column-types.js';

// What each datastore version can do and which configuration settings it takes, as its agents
// report them (JSON; NULL for versions registered before agents reported them), and Trove's
// root_enabled_history: one row per instance, written the first time root is enabled and kept
// after root is disabled again (GET /root answers from it).

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  // One column per statement: SQLite adds only one at a time.
  await db.schema.alterTable('datastore_versions').addColumn('capabilities', 'text').execute();
  await db.schema.alterTable('datastore_versions').addColumn('parameters', t.longText).execute();

  const history = db.schema
    .createTable('root_enabled_history')
    .addColumn('instance_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('created_at', t.timestamp, (c) => c.notNull());
  await (t.tableOptions === undefined ? history : history.modifyEnd(t.tableOptions)).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('root_enabled_history').ifExists().execute();
  await db.schema.alterTable('datastore_versions').dropColumn('parameters').execute();
  await db.schema.alterTable('datastore_versions').dropColumn('capabilities').execute();
}
