import type { Kysely } from 'kysely';
import { columnTypes, type ColumnTypes } from './column-types.js';

// The first schema. Children of hard-deleted parents (role assignments, tokens) cascade with
// them. Instances are only ever soft-deleted, so their statuses, faults and tasks carry the
// instance id without a foreign key (as Trove's tables do), which keeps those writes cheap.
// Constraint and index names carry their table's name: PostgreSQL wants them unique per schema.

function createTable(db: Kysely<unknown>, types: ColumnTypes, name: string) {
  const builder = db.schema.createTable(name);
  return types.tableOptions === undefined ? builder : builder.modifyEnd(types.tableOptions);
}

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  const id = 'varchar(64)';
  const name = 'varchar(255)';

  await createTable(db, t, 'projects')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('name', name, (c) => c.notNull())
    .addColumn('domain_id', id, (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('enabled', 'boolean', (c) => c.notNull())
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addUniqueConstraint('projects_domain_name_key', ['domain_id', 'name'])
    .execute();

  await createTable(db, t, 'users')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('name', name, (c) => c.notNull())
    .addColumn('domain_id', id, (c) => c.notNull())
    .addColumn('password_hash', 'varchar(512)', (c) => c.notNull())
    .addColumn('default_project_id', id)
    .addColumn('email', name)
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('enabled', 'boolean', (c) => c.notNull())
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addUniqueConstraint('users_domain_name_key', ['domain_id', 'name'])
    .execute();

  await createTable(db, t, 'roles')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('name', name, (c) => c.notNull())
    .addUniqueConstraint('roles_name_key', ['name'])
    .execute();

  await createTable(db, t, 'role_assignments')
    .addColumn('user_id', id, (c) => c.notNull())
    .addColumn('project_id', id, (c) => c.notNull())
    .addColumn('role_id', id, (c) => c.notNull())
    .addPrimaryKeyConstraint('role_assignments_pkey', ['user_id', 'project_id', 'role_id'])
    .addForeignKeyConstraint('role_assignments_user_fk', ['user_id'], 'users', ['id'], (c) =>
      c.onDelete('cascade'),
    )
    .addForeignKeyConstraint('role_assignments_project_fk', ['project_id'], 'projects', ['id'], (c) =>
      c.onDelete('cascade'),
    )
    .addForeignKeyConstraint('role_assignments_role_fk', ['role_id'], 'roles', ['id'], (c) =>
      c.onDelete('cascade'),
    )
    .execute();
  await db.schema.createIndex('role_assignments_project_idx').on('role_assignments').column('project_id').execute();
  await db.schema.createIndex('role_assignments_role_idx').on('role_assignments').column('role_id').execute();

  await createTable(db, t, 'tokens')
    .addColumn('token_hash', id, (c) => c.primaryKey())
    .addColumn('user_id', id, (c) => c.notNull())
    .addColumn('project_id', id, (c) => c.notNull())
    .addColumn('methods', 'text', (c) => c.notNull())
    .addColumn('audit_id', id, (c) => c.notNull())
    .addColumn('issued_at', t.timestamp, (c) => c.notNull())
    .addColumn('expires_at', t.timestamp, (c) => c.notNull())
    .addForeignKeyConstraint('tokens_user_fk', ['user_id'], 'users', ['id'], (c) => c.onDelete('cascade'))
    .addForeignKeyConstraint('tokens_project_fk', ['project_id'], 'projects', ['id'], (c) =>
      c.onDelete('cascade'),
    )
    .execute();
  await db.schema.createIndex('tokens_user_idx').on('tokens').column('user_id').execute();
  await db.schema.createIndex('tokens_project_idx').on('tokens').column('project_id').execute();
  await db.schema.createIndex('tokens_expires_idx').on('tokens').column('expires_at').execute();

  await createTable(db, t, 'flavors')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('name', name, (c) => c.notNull())
    .addColumn('ram_mb', 'integer', (c) => c.notNull())
    .addColumn('vcpus', 'integer', (c) => c.notNull())
    .addColumn('disk_gb', 'integer', (c) => c.notNull())
    .addColumn('ephemeral_gb', 'integer', (c) => c.notNull())
    .execute();

  await createTable(db, t, 'datastores')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('name', name, (c) => c.notNull())
    .addColumn('default_version_id', id)
    .addUniqueConstraint('datastores_name_key', ['name'])
    .execute();

  await createTable(db, t, 'datastore_versions')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('datastore_id', id, (c) => c.notNull())
    .addColumn('name', name, (c) => c.notNull())
    .addColumn('version', name, (c) => c.notNull())
    .addColumn('manager', name, (c) => c.notNull())
    .addColumn('active', 'boolean', (c) => c.notNull())
    .addColumn('inactive_reason', 'text')
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .addUniqueConstraint('datastore_versions_datastore_name_key', ['datastore_id', 'name'])
    .addForeignKeyConstraint('datastore_versions_datastore_fk', ['datastore_id'], 'datastores', ['id'])
    .execute();

  await createTable(db, t, 'instances')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('name', name, (c) => c.notNull())
    .addColumn('tenant_id', id, (c) => c.notNull())
    .addColumn('flavor_id', id, (c) => c.notNull())
    .addColumn('volume_size_gb', 'integer', (c) => c.notNull())
    .addColumn('datastore_version_id', id, (c) => c.notNull())
    .addColumn('task_status', 'varchar(64)', (c) => c.notNull())
    .addColumn('task_description', 'text', (c) => c.notNull())
    .addColumn('task_start_time', t.timestamp)
    .addColumn('host', name)
    .addColumn('address', name)
    .addColumn('port', 'integer')
    .addColumn('access', 'text')
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .addColumn('deleted', 'boolean', (c) => c.notNull())
    .addColumn('deleted_at', t.timestamp)
    .execute();
  await db.schema.createIndex('instances_tenant_idx').on('instances').columns(['tenant_id', 'deleted', 'id']).execute();
  await db.schema.createIndex('instances_host_idx').on('instances').column('host').execute();

  await createTable(db, t, 'service_statuses')
    .addColumn('instance_id', id, (c) => c.primaryKey())
    .addColumn('status', 'varchar(64)', (c) => c.notNull())
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .execute();

  await createTable(db, t, 'instance_faults')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('instance_id', id, (c) => c.notNull())
    .addColumn('message', 'text', (c) => c.notNull())
    .addColumn('details', t.longText, (c) => c.notNull())
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('instance_faults_instance_idx')
    .on('instance_faults')
    .columns(['instance_id', 'created_at'])
    .execute();

  await createTable(db, t, 'tasks')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('instance_id', id, (c) => c.notNull())
    .addColumn('kind', 'varchar(64)', (c) => c.notNull())
    .addColumn('step', name, (c) => c.notNull())
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('owner', name)
    .addColumn('lease_expires_at', t.timestamp)
    .addColumn('payload', t.longText)
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('tasks_instance_idx').on('tasks').columns(['instance_id', 'state']).execute();
  await db.schema.createIndex('tasks_state_idx').on('tasks').columns(['state', 'created_at']).execute();

  await createTable(db, t, 'conductor_last_seen')
    .addColumn('instance_id', id, (c) => c.notNull())
    .addColumn('method_name', name, (c) => c.notNull())
    .addColumn('sent', 'double precision', (c) => c.notNull())
    .addPrimaryKeyConstraint('conductor_last_seen_pkey', ['instance_id', 'method_name'])
    .execute();

  await createTable(db, t, 'agents')
    .addColumn('host', name, (c) => c.primaryKey())
    .addColumn('last_seen_at', t.timestamp, (c) => c.notNull())
    .addColumn('engines', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'agents',
    'conductor_last_seen',
    'tasks',
    'instance_faults',
    'service_statuses',
    'instances',
    'datastore_versions',
    'datastores',
    'flavors',
    'tokens',
    'role_assignments',
    'roles',
    'users',
    'projects',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
