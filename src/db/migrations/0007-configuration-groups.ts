import type { Kysely } from 'kysely';
import { columnTypes, type ColumnTypes } from './column-types.js';

// Trove's configuration groups: a project's named set of configuration values for one datastore
// version (the values as one JSON object, checked against the version's parameters before they
// are saved), soft-deleted as Trove's are, and the group an instance has attached (NULL: none).

function createTable(db: Kysely<unknown>, types: ColumnTypes, name: string) {
  const builder = db.schema.createTable(name);
  return types.tableOptions === undefined ? builder : builder.modifyEnd(types.tableOptions);
}

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  await createTable(db, t, 'configurations')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('name', 'varchar(255)', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('datastore_version_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('config_values', t.longText, (c) => c.notNull())
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .addColumn('deleted', 'boolean', (c) => c.notNull())
    .addColumn('deleted_at', t.timestamp)
    .execute();
  await db.schema
    .createIndex('configurations_tenant_idx')
    .on('configurations')
    .columns(['tenant_id', 'deleted', 'id'])
    .execute();

  await db.schema.alterTable('instances').addColumn('configuration_id', 'varchar(64)').execute();
  await db.schema.createIndex('instances_configuration_idx').on('instances').columns(['configuration_id', 'deleted']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('instances_configuration_idx').on('instances').execute();
  await db.schema.alterTable('instances').dropColumn('configuration_id').execute();
  await db.schema.dropTable('configurations').ifExists().execute();
}
