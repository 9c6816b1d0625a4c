import type { Kysely } from 'kysely';

// Read replicas (issue 11): a replica names the instance it streams from. Null: not a replica.
// Indexed: a primary's view and its delete look its replicas up.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('instances').addColumn('replica_of_id', 'varchar(64)').execute();
  await db.schema.createIndex('instances_replica_of_idx').on('instances').column('replica_of_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('instances_replica_of_idx').on('instances').execute();
  await db.schema.alterTable('instances').dropColumn('replica_of_id').execute();
}
