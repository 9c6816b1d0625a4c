import type { Kysely } from 'kysely';

// Whether the instance's host agent restarted and has not taken the instance up again yet (the
// agent says so with its heartbeat; the instance's own next heartbeat clears it): the views say
// so, instead of the instance looking silent for no reason.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('service_statuses')
    .addColumn('awaiting_adoption', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('service_statuses').dropColumn('awaiting_adoption').execute();
}
