import type { Kysely, LogConfig } from 'kysely';
import { redactUrl, silentLogger, type Logger } from '../common/index.js';
import { connectMysql } from './connect-mysql.js';
import { connectPostgres } from './connect-postgres.js';
import { connectSqlite } from './connect-sqlite.js';
import { parseDatabaseUrl, type DatabaseTarget } from './database-url.js';
import { migrateToLatest } from './migrate-to-latest.js';
import type { Database } from './schema.js';
import { sqlDialect, type DialectName } from './sql-dialect.js';
import { SqlStateStore } from './sql-state-store.js';
import type { StateStore } from './state-store.js';

export interface OpenStateStoreOptions {
  logger?: Logger;
  /** apply pending migrations before returning (default true) */
  migrate?: boolean;
  /** told the text of every statement run and how long it took, once it ran: lets tests and benchmarks count them */
  onStatement?: (sql: string, durationMs: number) => void;
}

// A role makes few queries at a time; eight connections serve ~20,000 simple queries/s.
const poolSize = 8;

/**
 * Opens the state database named by `url` (sqlite:, mysql:, mariadb:, postgres:, postgresql:),
 * creating the MySQL or PostgreSQL database when it does not exist yet, and migrates it.
 */
export async function openStateStore(url: string, options: OpenStateStoreOptions = {}): Promise<StateStore> {
  const logger = options.logger ?? silentLogger();
  const target = parseDatabaseUrl(url);
  const { db, dialect } = await connect(target, logger, statementLog(options.onStatement));
  try {
    if (options.migrate !== false) await migrateToLatest(db, dialect, logger);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  logger.info({ dialect, database: redactUrl(url) }, 'state database open');
  return new SqlStateStore(db, sqlDialect(dialect));
}

function statementLog(onStatement: OpenStateStoreOptions['onStatement']): LogConfig | undefined {
  if (onStatement === undefined) return undefined;
  return (event) => {
    if (event.level === 'query') onStatement(event.query.sql, event.queryDurationMillis);
  };
}

async function connect(
  target: DatabaseTarget,
  logger: Logger,
  log: LogConfig | undefined,
): Promise<{ db: Kysely<Database>; dialect: DialectName }> {
  switch (target.engine) {
    case 'sqlite':
      return { db: connectSqlite(target.path, log), dialect: 'sqlite' };
    case 'mysql':
      return { db: await connectMysql(target, poolSize, log), dialect: 'mysql' };
    case 'postgres':
      return { db: await connectPostgres(target, poolSize, logger, log), dialect: 'postgres' };
  }
}
