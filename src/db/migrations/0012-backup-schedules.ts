import type { Kysely } from 'kysely';
import { columnTypes, type ColumnTypes } from './column-types.js';

// A backup schedule per instance (Coffer's extension of Trove's backups): a five-field cron
// pattern in UTC, full or incremental, and how many and how old the schedule's backups may get.
// next_run_at is also the claim: a taskmanager takes a run by moving it on in an UPDATE guarded
// by the value it read, so of several taskmanagers one runs it. backups.schedule_id names the
// schedule that made a backup: retention deletes those only, never a backup someone asked for.

function createTable(db: Kysely<unknown>, types: ColumnTypes, name: string) {
  const builder = db.schema.createTable(name);
  return types.tableOptions === undefined ? builder : builder.modifyEnd(types.tableOptions);
}

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  await createTable(db, t, 'backup_schedules')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('instance_id', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('name', 'varchar(64)')
    .addColumn('pattern', 'varchar(255)', (c) => c.notNull())
    .addColumn('incremental', 'boolean', (c) => c.notNull())
    .addColumn('retain_count', 'integer')
    .addColumn('retain_days', 'integer')
    .addColumn('next_run_at', t.timestamp, (c) => c.notNull())
    .addColumn('last_run_at', t.timestamp)
    .addColumn('last_backup_id', 'varchar(64)')
    .addColumn('last_error', 'text')
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('backup_schedules_next_run_idx').on('backup_schedules').column('next_run_at').execute();
  await db.schema.alterTable('backups').addColumn('schedule_id', 'varchar(64)').execute();
  await db.schema.createIndex('backups_schedule_idx').on('backups').columns(['schedule_id', 'deleted']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('backups_schedule_idx').on('backups').execute();
  await db.schema.alterTable('backups').dropColumn('schedule_id').execute();
  await db.schema.dropTable('backup_schedules').ifExists().execute();
}
