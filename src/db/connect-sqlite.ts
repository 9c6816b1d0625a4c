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

/**
 * Prepared statements kept for reuse, by their text. Kysely asks for a statement on every query,
 * and preparing cost as much CPU as running on the read path (issue 14); the repositories' texts
 * are few (an IN list's length makes a text of its own), so the oldest make room past this many.
 */
const preparedStatementsKept = 500;

// better-sqlite3 binds neither Dates nor booleans. Converting at this one boundary lets the
// repositories write the same values on every engine: ISO text keeps times sortable and exact
// to the millisecond, and 0/1 is what SQLite's booleans are.
function encodingParameters(raw: BetterSqlite3.Database): SqliteDatabase {
  const encode = (parameters: ReadonlyArray<unknown>) =>
    parameters.map((p) => (p instanceof Date ? p.toISOString() : typeof p === 'boolean' ? Number(p) : p));
  const prepared = new Map<string, BetterSqlite3.Statement>();
  const statementFor = (sqlText: string): BetterSqlite3.Statement => {
    const kept = prepared.get(sqlText);
    // a statement still iterating rows cannot run again until it is done: that caller gets its own
    if (kept !== undefined) return kept.busy ? asArrays(raw.prepare(sqlText)) : kept;
    const statement = asArrays(raw.prepare(sqlText));
    prepared.set(sqlText, statement);
    if (prepared.size > preparedStatementsKept) prepared.delete(prepared.keys().next().value!);
    return statement;
  };
  return {
    close: () => raw.close(),
    prepare(sqlText) {
      // a schema change (a migration) may rename the columns a kept statement reads
      if (/^\s*(create|alter|drop)\s/i.test(sqlText)) prepared.clear();
      const statement = statementFor(sqlText);
      if (!statement.reader) {
        return {
          reader: false,
          all: (parameters) => statement.all(encode(parameters)),
          run: (parameters) => statement.run(encode(parameters)),
          iterate: (parameters) => statement.iterate(encode(parameters)),
        };
      }
      return {
        reader: true,
        all: (parameters) => {
          const rows = statement.all(encode(parameters)) as unknown[][];
          return rows.map(rowBuilder(statement, rows[0]));
        },
        run: (parameters) => statement.run(encode(parameters)),
        *iterate(parameters) {
          let build: ((row: unknown[]) => Record<string, unknown>) | undefined;
          for (const row of statement.iterate(encode(parameters)) as IterableIterator<unknown[]>) {
            build ??= rowBuilder(statement, row);
            yield build(row);
          }
        },
      };
    },
  };
}

// better-sqlite3 builds each row object property by property through V8's C++ API, which cost
// more than running the statements on the read path (issue 14: 20 instance rows of 29 columns,
// 0.17 ms as objects, 0.10 ms as arrays made into objects here). A reader statement hands back
// arrays; each becomes an object with the columns' names in order, a later column of the same
// name winning as in better-sqlite3's own objects. The object is an object literal made for the
// statement's columns: setting the properties one by one by name in a loop cost a tenth of a
// list page's CPU (V8 looks each name up anew), a literal gives every row the same shape at once.
const columnNames = new WeakMap<BetterSqlite3.Statement, { names: string[]; build: (row: unknown[]) => Record<string, unknown> }>();

function asArrays(statement: BetterSqlite3.Statement): BetterSqlite3.Statement {
  return statement.reader ? statement.raw(true) : statement;
}

function rowBuilder(statement: BetterSqlite3.Statement, sample: unknown[] | undefined): (row: unknown[]) => Record<string, unknown> {
  let kept = columnNames.get(statement);
  // another process's migration re-prepares the statement inside SQLite and may add or drop columns
  if (kept === undefined || (sample !== undefined && sample.length !== kept.names.length)) {
    const names = statement.columns().map((column) => column.name);
    kept = { names, build: literalBuilder(names) };
    columnNames.set(statement, kept);
  }
  return kept.build;
}

/** `(row) => ({ "a": row[0], "b": row[1] })` for these names; each name is a JSON string literal, never code. */
function literalBuilder(names: readonly string[]): (row: unknown[]) => Record<string, unknown> {
  // the last of the same name wins, in the place of the first, as when set one by one
  const last = new Map<string, number>();
  names.forEach((name, n) => last.set(name, n));
  // a literal's "__proto__" key would set the prototype; as a computed key it is a property
  const properties = [...last].map(([name, n]) => (name === '__proto__' ? `["__proto__"]: row[${n}]` : `${JSON.stringify(name)}: row[${n}]`));
  return new Function('row', `return { ${properties.join(', ')} };`) as (row: unknown[]) => Record<string, unknown>;
}
