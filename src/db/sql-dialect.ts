import { sql, type InsertQueryBuilder, type InsertResult, type Kysely, type UpdateObject } from 'kysely';
import type { StateStore } from './state-store.js';
import type { Database } from './schema.js';
import { constraintViolation } from './constraint-error.js';

// The only place where the repositories' SQL differs per engine: "insert unless the key exists",
// "insert or update", and how a transaction starts. Everything else is portable Kysely.

export type DialectName = StateStore['dialect'];

export interface SqlDialect {
  readonly name: DialectName;
  /** inserts the row unless it collides with a unique key; true when this call inserted it */
  insertIfAbsent<TB extends keyof Database>(query: InsertQueryBuilder<Database, TB, InsertResult>): Promise<boolean>;
  /** inserts the row, or applies `update` to the row that has the same `conflictColumns` */
  upsert<TB extends keyof Database>(
    query: InsertQueryBuilder<Database, TB, InsertResult>,
    conflictColumns: ReadonlyArray<keyof Database[TB] & string>,
    update: UpdateObject<Database, TB>,
  ): Promise<void>;
  transaction<T>(db: Kysely<Database>, fn: (tx: Kysely<Database>) => Promise<T>): Promise<T>;
}

export function sqlDialect(name: DialectName): SqlDialect {
  return name === 'mysql' ? mysql : name === 'postgres' ? postgres : sqlite;
}

// PostgreSQL and SQLite share the `on conflict` syntax. PostgreSQL must not see a failing
// statement inside a transaction (it aborts the transaction), so conflicts never raise there.
const onConflict = {
  async insertIfAbsent<TB extends keyof Database>(query: InsertQueryBuilder<Database, TB, InsertResult>) {
    const result = await query.onConflict((oc) => oc.doNothing()).executeTakeFirst();
    return (result.numInsertedOrUpdatedRows ?? 0n) > 0n;
  },
  async upsert<TB extends keyof Database>(
    query: InsertQueryBuilder<Database, TB, InsertResult>,
    conflictColumns: ReadonlyArray<keyof Database[TB] & string>,
    update: UpdateObject<Database, TB>,
  ) {
    await query
      .onConflict((oc) => oc.columns(conflictColumns as never).doUpdateSet(update as never))
      .execute();
  },
};

const postgres: SqlDialect = {
  name: 'postgres',
  ...onConflict,
  transaction: (db, fn) => db.transaction().execute(fn),
};

const sqlite: SqlDialect = {
  name: 'sqlite',
  ...onConflict,
  // A deferred transaction that reads and then writes fails at once with SQLITE_BUSY when
  // another connection wrote in between; taking the write lock up front makes it wait instead.
  transaction: (db, fn) =>
    db.connection().execute(async (conn) => {
      await sql`begin immediate`.execute(conn);
      try {
        const result = await fn(conn);
        await sql`commit`.execute(conn);
        return result;
      } catch (err) {
        // SQLite may have rolled back on its own (SQLITE_FULL, SQLITE_IOERR...); the error that
        // caused it is the one worth reporting.
        await sql`rollback`.execute(conn).catch(() => undefined);
        throw err;
      }
    }),
};

const mysql: SqlDialect = {
  name: 'mysql',
  // Not `insert ignore`: it would also swallow foreign-key and truncation errors. MySQL rolls
  // back only the failing statement, so catching the duplicate is safe inside a transaction.
  async insertIfAbsent(query) {
    try {
      await query.execute();
      return true;
    } catch (err) {
      if (constraintViolation(err) === 'unique') return false;
      throw err;
    }
  },
  async upsert(query, _conflictColumns, update) {
    await query.onDuplicateKeyUpdate(update as never).execute();
  },
  transaction: (db, fn) => db.transaction().execute(fn),
};
