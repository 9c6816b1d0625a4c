import type { Kysely } from 'kysely';

// An instance's desired state is versioned: every change of what it should be (create, flavor,
// access, configuration group) raises desired_generation with the task that carries it out, and
// applied_generation is the highest generation its guest reported applied. Equal: the change is live.

export async function up(db: Kysely<unknown>): Promise<void> {
  // One column per statement: SQLite adds only one at a time.
  await db.schema.alterTable('instances').addColumn('desired_generation', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('instances').addColumn('applied_generation', 'integer', (c) => c.notNull().defaultTo(0)).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('instances').dropColumn('applied_generation').execute();
  await db.schema.alterTable('instances').dropColumn('desired_generation').execute();
}
