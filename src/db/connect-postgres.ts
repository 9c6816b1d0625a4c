import { Kysely, PostgresDialect, type LogConfig } from 'kysely';
import pg from 'pg';
import { CofferError, redactUrl } from '../common/index.js';
import type { Logger } from '../common/index.js';
import type { DatabaseTarget } from './database-url.js';
import type { Database } from './schema.js';

type PostgresTarget = Extract<DatabaseTarget, { engine: 'postgres' }>;

const invalidCatalogName = '3D000';
const duplicateDatabase = '42P04';
const uniqueViolation = '23505'; // two CREATE DATABASE racing can also end in this

export async function connectPostgres(
  target: PostgresTarget,
  poolSize: number,
  logger: Logger,
  log?: LogConfig,
): Promise<Kysely<Database>> {
  await ensureDatabase(target);
  const pool = new pg.Pool({ connectionString: target.url, max: poolSize });
  // An idle client losing its server must not crash the process; the pool replaces it.
  pool.on('error', (err) => logger.warn({ err }, 'idle state database connection failed'));
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }), ...(log === undefined ? {} : { log }) });
}

// Probe first, so a user without CREATEDB can still use a database made for them.
async function ensureDatabase(target: PostgresTarget): Promise<void> {
  try {
    await withClient(target.url, async () => {});
    return;
  } catch (err) {
    if ((err as { code?: unknown }).code !== invalidCatalogName) throw unreachable(target, err);
  }
  const adminUrl = new URL(target.url);
  adminUrl.pathname = '/postgres';
  const name = `"${target.database.replaceAll('"', '""')}"`;
  try {
    // C collation orders text bytewise, as SQLite and our MySQL tables do.
    await withClient(adminUrl.href, (client) =>
      client.query(`create database ${name} template template0 encoding 'UTF8' lc_collate 'C' lc_ctype 'C'`),
    );
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code !== duplicateDatabase && code !== uniqueViolation) throw unreachable(target, err);
  }
}

async function withClient(url: string, fn: (client: pg.Client) => Promise<unknown>): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await fn(client);
  } finally {
    await client.end();
  }
}

function unreachable(target: PostgresTarget, cause: unknown): CofferError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new CofferError('Internal', `Cannot open the state database ${redactUrl(target.url)}: ${reason}`, {
    cause,
  });
}
