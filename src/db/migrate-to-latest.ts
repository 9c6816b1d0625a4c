import { Migrator, sql, type Kysely, type MigrationResultSet } from 'kysely';
import { CofferError, sleep } from '../common/index.js';
import type { Logger } from '../common/index.js';
import { sqliteBusyTimeoutMs } from './connect-sqlite.js';
import { migrations } from './migrations/index.js';
import type { Database } from './schema.js';
import type { DialectName } from './sql-dialect.js';

const provider = { getMigrations: async () => migrations };

/**
 * Applies the migrations not yet applied and returns their names. Safe when several roles start
 * at once: MySQL and PostgreSQL take Kysely's migration lock, SQLite the database's write lock.
 */
export async function migrateToLatest(db: Kysely<Database>, dialect: DialectName, logger: Logger): Promise<string[]> {
  const result =
    dialect === 'sqlite'
      ? await withSqliteWriteLock(db, (conn) => new Migrator({ db: conn, provider, disableTransactions: true }).migrateToLatest())
      : await new Migrator({ db, provider }).migrateToLatest();
  if (result.error !== undefined) {
    const reason = result.error instanceof Error ? result.error.message : String(result.error);
    throw new CofferError('Internal', `Migrating the state database failed: ${reason}`, { cause: result.error });
  }
  const applied = (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  logger.info({ dialect, applied }, applied.length > 0 ? 'state database migrated' : 'state database schema up to date');
  return applied;
}

// Kysely's SQLite "lock" is a no-op that trusts its single connection; two processes (or two
// stores in one process) need the file's write lock. It is awaited here rather than left to
// busy_timeout, which would block the event loop and, within one process, the lock's holder too.
async function withSqliteWriteLock(
  db: Kysely<Database>,
  migrate: (conn: Kysely<Database>) => Promise<MigrationResultSet>,
): Promise<MigrationResultSet> {
  return db.connection().execute(async (conn) => {
    await sql`pragma busy_timeout = 0`.execute(conn);
    try {
      await beginImmediate(conn, Date.now() + 60_000);
      const result = await migrate(conn);
      await sql.raw(result.error === undefined ? 'commit' : 'rollback').execute(conn);
      return result;
    } finally {
      await sql.raw(`pragma busy_timeout = ${sqliteBusyTimeoutMs}`).execute(conn);
    }
  });
}

async function beginImmediate(conn: Kysely<Database>, deadline: number): Promise<void> {
  for (;;) {
    try {
      await sql`begin immediate`.execute(conn);
      return;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code !== 'string' || !code.startsWith('SQLITE_BUSY') || Date.now() > deadline) throw err;
      await sleep(20 + Math.random() * 30);
    }
  }
}
