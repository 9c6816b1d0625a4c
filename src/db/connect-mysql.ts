import { Kysely, MysqlDialect, type LogConfig } from 'kysely';
import { createPool } from 'mysql2';
import { createConnection, type ConnectionOptions } from 'mysql2/promise';
import { CofferError } from '../common/index.js';
import type { DatabaseTarget } from './database-url.js';
import type { Database } from './schema.js';

type MysqlTarget = Extract<DatabaseTarget, { engine: 'mysql' }>;

const unknownDatabase = 1049; // ER_BAD_DB_ERROR

export async function connectMysql(target: MysqlTarget, poolSize: number, log?: LogConfig): Promise<Kysely<Database>> {
  const options: ConnectionOptions = {
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    // DATETIME has no zone: writing and reading it as UTC is what makes Dates round-trip.
    timezone: 'Z',
    charset: 'UTF8MB4_BIN',
  };
  await ensureDatabase(target, options);
  const pool = createPool({ ...options, database: target.database, connectionLimit: poolSize });
  return new Kysely<Database>({ dialect: new MysqlDialect({ pool }), ...(log === undefined ? {} : { log }) });
}

// Probe first, so a user without CREATE rights can still use a database made for them.
async function ensureDatabase(target: MysqlTarget, options: ConnectionOptions): Promise<void> {
  try {
    await (await createConnection({ ...options, database: target.database })).end();
    return;
  } catch (err) {
    if ((err as { errno?: unknown }).errno !== unknownDatabase) throw unreachable(target, err);
  }
  const admin = await createConnection(options).catch((err: unknown) => {
    throw unreachable(target, err);
  });
  try {
    const name = `\`${target.database.replaceAll('`', '``')}\``;
    await admin.query(`create database if not exists ${name} character set utf8mb4 collate utf8mb4_bin`);
  } finally {
    await admin.end();
  }
}

function unreachable(target: MysqlTarget, cause: unknown): CofferError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new CofferError(
    'Internal',
    `Cannot open the state database ${target.database} on ${target.host}:${target.port} as ${target.user}: ${reason}`,
    { cause },
  );
}
