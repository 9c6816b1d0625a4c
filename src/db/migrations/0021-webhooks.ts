import type { Kysely } from 'kysely';
import { columnTypes } from './column-types.js';

// Per-project webhooks (issue 12) and their delivery log. A delivery row is made for each hook of
// the instance's project when its event is recorded (so a hook never receives events older than
// itself, and none is missed between two dispatcher passes); it carries what the event said,
// since the event itself may be pruned before its last retry. Taskmanagers take a pending
// delivery by a lease (lease_owner, lease_until) in a guarded UPDATE, as tasks are taken.

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  const hooks = db.schema
    .createTable('webhooks')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('url', 'varchar(2048)', (c) => c.notNull())
    .addColumn('secret', 'varchar(512)', (c) => c.notNull())
    .addColumn('events', 'text')
    .addColumn('created_at', t.timestamp, (c) => c.notNull());
  await (t.tableOptions === undefined ? hooks : hooks.modifyEnd(t.tableOptions)).execute();
  await db.schema.createIndex('webhooks_tenant_idx').on('webhooks').columns(['tenant_id', 'created_at']).execute();

  const deliveries = db.schema
    .createTable('webhook_deliveries')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('webhook_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('event_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('event_type', 'varchar(64)', (c) => c.notNull())
    .addColumn('instance_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('instance_name', 'varchar(255)', (c) => c.notNull())
    .addColumn('event_name', 'varchar(64)', (c) => c.notNull())
    .addColumn('message', 'text')
    .addColumn('event_time', t.timestamp, (c) => c.notNull())
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('next_attempt_at', t.timestamp, (c) => c.notNull())
    .addColumn('lease_owner', 'varchar(255)')
    .addColumn('lease_until', t.timestamp)
    .addColumn('last_status_code', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .addColumn('delivered_at', t.timestamp);
  await (t.tableOptions === undefined ? deliveries : deliveries.modifyEnd(t.tableOptions)).execute();
  await db.schema.createIndex('webhook_deliveries_hook_idx').on('webhook_deliveries').columns(['webhook_id', 'created_at']).execute();
  await db.schema.createIndex('webhook_deliveries_due_idx').on('webhook_deliveries').columns(['state', 'next_attempt_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('webhook_deliveries').ifExists().execute();
  await db.schema.dropTable('webhooks').ifExists().execute();
}
