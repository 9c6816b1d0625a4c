import type { Kysely } from 'kysely';
import { columnTypes, type ColumnTypes } from './column-types.js';

// Per-project quota overrides (Trove's `quotas`: a project without a row for a resource gets the
// configured default) and one lock row per project. What a project uses is counted from its
// live instances, not stored, so there is no quota_usages table to drift; instead a quota check
// and the insert it allows run in one transaction that first takes the project's lock row, which
// makes concurrent creates of one project wait for each other on MySQL and PostgreSQL as well.

function createTable(db: Kysely<unknown>, types: ColumnTypes, name: string) {
  const builder = db.schema.createTable(name);
  return types.tableOptions === undefined ? builder : builder.modifyEnd(types.tableOptions);
}

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  await createTable(db, t, 'quotas')
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('resource', 'varchar(64)', (c) => c.notNull())
    .addColumn('hard_limit', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('quotas_pkey', ['tenant_id', 'resource'])
    .execute();

  await createTable(db, t, 'quota_locks')
    .addColumn('tenant_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('locked_at', t.timestamp, (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('quota_locks').ifExists().execute();
  await db.schema.dropTable('quotas').ifExists().execute();
}
