import type { Kysely } from 'kysely';

// An administrator may take a datastore version out of service (PATCH
// /mgmt/datastore-versions/{id} with `active: false`, issue 13). Agents report `active` from the
// binaries their hosts have, again at every change and every conductor start, so the
// administrator's word is kept apart from it and wins: a version is active only when an agent can
// run it and no administrator disabled it.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('datastore_versions').addColumn('disabled_by_admin', 'boolean', (c) => c.notNull().defaultTo(false)).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('datastore_versions').dropColumn('disabled_by_admin').execute();
}
