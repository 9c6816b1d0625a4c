import { MysqlAdapter, sql, type Kysely } from 'kysely';
import { columnTypes } from './column-types.js';

// Failed logins counted where every API process sees them (Keystone keeps its lockout count in
// its user table): one row per counted subject, a user (`user:<id>`) or a source address
// (`address:<ip>`), with the failures in a row and when the last one happened.
//
// And identity names that compare exactly as stored: MySQL's and MariaDB's `utf8mb4_bin` is a
// PAD SPACE collation, so `'admin ' = 'admin'` there (and a unique key refuses the second), while
// SQLite and PostgreSQL compare every byte. The NO PAD binary collation (MariaDB's
// `utf8mb4_nopad_bin`, MySQL 8's `utf8mb4_0900_bin`) makes MySQL agree with them.

const namedTables = ['users', 'projects', 'roles'] as const;

async function noPadBinaryCollation(db: Kysely<unknown>): Promise<string> {
  const found = await sql<{ Collation: string }>`show collation where ${sql.ref('Collation')} in ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin')`.execute(db);
  const names = found.rows.map((r) => r.Collation);
  const name = ['utf8mb4_nopad_bin', 'utf8mb4_0900_bin'].find((n) => names.includes(n));
  if (name === undefined) throw new Error('this MySQL server has no NO PAD binary utf8mb4 collation (MariaDB 10.2+ or MySQL 8 needed)');
  return name;
}

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  const failures = db.schema
    .createTable('login_failures')
    .addColumn('subject', 'varchar(128)', (c) => c.primaryKey())
    .addColumn('failures', 'integer', (c) => c.notNull())
    .addColumn('last_failure_at', t.timestamp, (c) => c.notNull());
  await (t.tableOptions === undefined ? failures : failures.modifyEnd(t.tableOptions)).execute();

  if (db.getExecutor().adapter instanceof MysqlAdapter) {
    const collation = sql.raw(await noPadBinaryCollation(db));
    for (const table of namedTables) {
      await sql`alter table ${sql.table(table)} modify ${sql.ref('name')} varchar(255) character set utf8mb4 collate ${collation} not null`.execute(db);
    }
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof MysqlAdapter) {
    for (const table of namedTables) {
      await sql`alter table ${sql.table(table)} modify ${sql.ref('name')} varchar(255) character set utf8mb4 collate utf8mb4_bin not null`.execute(db);
    }
  }
  await db.schema.dropTable('login_failures').ifExists().execute();
}
