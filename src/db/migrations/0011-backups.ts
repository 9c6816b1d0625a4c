import type { Kysely } from 'kysely';
import { columnTypes, type ColumnTypes } from './column-types.js';

// Trove's backups (soft-deleted as Trove's are) with what Coffer adds: where the object lives
// (storage container and object name), the SHA-256 recorded when it was stored, the engine's
// facts about it (JSON: LSNs, WAL positions) that its children and restores need, and why it
// failed. Backup strategies choose a project's or an instance's container. Project keys are each
// project's data key, wrapped under the hosts' master key: the state DB never holds a usable key.

function createTable(db: Kysely<unknown>, types: ColumnTypes, name: string) {
  const builder = db.schema.createTable(name);
  return types.tableOptions === undefined ? builder : builder.modifyEnd(types.tableOptions);
}

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  await createTable(db, t, 'backups')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('name', 'varchar(255)', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('instance_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('parent_id', 'varchar(64)')
    .addColumn('datastore_version_id', 'varchar(64)')
    .addColumn('backup_type', 'varchar(16)', (c) => c.notNull())
    .addColumn('state', 'varchar(32)', (c) => c.notNull())
    .addColumn('container', 'varchar(255)', (c) => c.notNull())
    .addColumn('object_name', 'varchar(255)', (c) => c.notNull())
    .addColumn('size_bytes', 'bigint')
    .addColumn('data_bytes', 'bigint')
    .addColumn('sha256', 'varchar(64)')
    .addColumn('facts', t.longText)
    .addColumn('fail_reason', 'text')
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .addColumn('deleted', 'boolean', (c) => c.notNull())
    .addColumn('deleted_at', t.timestamp)
    .execute();
  await db.schema.createIndex('backups_tenant_idx').on('backups').columns(['tenant_id', 'deleted', 'updated_at']).execute();
  await db.schema.createIndex('backups_instance_idx').on('backups').columns(['instance_id', 'deleted', 'state']).execute();
  await db.schema.createIndex('backups_parent_idx').on('backups').columns(['parent_id', 'deleted']).execute();

  await createTable(db, t, 'backup_strategies')
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    // '' for the project-wide strategy, as Trove stores it
    .addColumn('instance_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('backend', 'varchar(32)', (c) => c.notNull())
    .addColumn('container', 'varchar(255)', (c) => c.notNull())
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addPrimaryKeyConstraint('backup_strategies_pk', ['tenant_id', 'instance_id'])
    .execute();

  await createTable(db, t, 'project_keys')
    .addColumn('tenant_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('wrapped_key', 'text', (c) => c.notNull())
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('project_keys').ifExists().execute();
  await db.schema.dropTable('backup_strategies').ifExists().execute();
  await db.schema.dropTable('backups').ifExists().execute();
}
