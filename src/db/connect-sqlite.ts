import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, type LogConfig, type SqliteDatabase } from 'kysely';
import type { Database } from './schema.js';

/** How long a statement waits for another process's write lock before SQLITE_BUSY. */
export const sqliteBusyTimeoutMs = 5000;

export function connectSqlite(path: string, log?: LogConfig): Kysely<Database> {
  if (path !== ':memory:') mkdirSync(dirname(resolve(path)), { recursive: true });
  const raw = new BetterSqlite3(path);
  try {
    raw.pragma(`busy_timeout = ${sqliteBusyTimeoutMs}`);
    // WAL lets readers run while a role writes; NORMAL sync is durable across process crashes.
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = NORMAL');
    raw.pragma('foreign_keys = ON');
  } catch (err) {
    raw.close();
    throw err;
  }
  return new Kysely<Database>({ dialect: new SqliteDialect({ database: encodingParameters(raw) }), ...(log === undefined ? {} : { log }) });
}

// better-sqlite3 binds neither Dates nor booleans. Converting at this one boundary lets the
// repositories write the same values on every engine: ISO text keeps times sortable and exact
// to the millisecond, and 0/1 is what SQLite's booleans are.
function encodingParameters(raw: BetterSqlite3.Database): SqliteDatabase {
  const encode = (parameters: ReadonlyArray<unknown>) =>
    parameters.map((p) => (p instanceof Date ? p.toISOString() : typeof p === 'boolean' ? Number(p) : p));
  return {
    close: () => raw.close(),
    prepare(sqlText) {
      const statement = raw.prepare(sqlText);
      return {
        reader: statement.reader,
        all: (parameters) => statement.all(encode(parameters)),
        run: (parameters) => statement.run(encode(parameters)),
        iterate: (parameters) => statement.iterate(encode(parameters)),
      };
    },
  };
}
