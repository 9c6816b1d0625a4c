import type { Kysely } from 'kysely';

// A backup schedule may verify what it makes (issue 10: "a schedule can run it"): `verify` asks
// for it, `last_verified_backup_id` is the newest backup of the schedule whose verification the
// taskmanager took on, set before it starts one, so each completed backup is verified once even
// when starting it failed or several taskmanagers saw it complete.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('backup_schedules').addColumn('verify', 'boolean', (c) => c.notNull().defaultTo(false)).execute();
  await db.schema.alterTable('backup_schedules').addColumn('last_verified_backup_id', 'varchar(64)').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('backup_schedules').dropColumn('last_verified_backup_id').execute();
  await db.schema.alterTable('backup_schedules').dropColumn('verify').execute();
}
