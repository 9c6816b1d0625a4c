import { escapeIdentifier } from 'pg';
import type { Client } from 'pg';
import type { DataCheckResult } from '../../../bus/index.js';
import { CofferError } from '../../../common/index.js';
import { isExecutable } from '../binary-discovery.js';
import { runCheckTool } from '../checked-tool.js';
import { adminRole, adminSessionOptions, withAdminClient, type AdminEndpoint } from './admin.js';
import type { BaseBackupSource } from './backup.js';

// PostgreSQL's own check of an instance's data: pg_amcheck over every database that takes
// connections, every table's heap pages and every B-tree index, with each index checked to hold
// every tuple of its table (`--heapallindexed`). It needs the amcheck extension in each
// database, which it creates itself as the guest's role (`--install-missing`): a verification
// checks a scratch instance that is deleted afterwards. A PostgreSQL without pg_amcheck (the
// npm package's builds lack contrib) still has every table read whole by a sequential scan,
// which fails on a page it cannot read.
//
// pg_amcheck runs as the engine's OS user with the guest's password in its environment, as
// pg_basebackup does (backup.ts), and the guest's session settings, so that a tenant's
// statement_timeout cannot cut the check short.

/** reading every page of a large cluster takes hours; past this something is wrong */
const checkTimeoutMs = 6 * 60 * 60 * 1000;
/** how many of the reported problems are passed on: the first ones say what is wrong */
const maxProblems = 20;

interface DatabaseCounts {
  tables: number;
  indexes: number;
}

/** The user tables (with materialized views) and B-tree indexes of one database: what a check covers besides the catalogs. */
async function countRelations(client: Client): Promise<DatabaseCounts> {
  const result = await client.query<{ tables: string; indexes: string }>(
    `SELECT count(*) FILTER (WHERE c.relkind IN ('r', 'm', 'p')) AS tables,
            count(*) FILTER (WHERE c.relkind = 'i' AND am.amname = 'btree') AS indexes
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_am am ON am.oid = c.relam
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'`,
  );
  return { tables: Number(result.rows[0]!.tables), indexes: Number(result.rows[0]!.indexes) };
}

/**
 * pg_amcheck's report: one line per problem (`heap table "db.s.t", block 3, offset 2:` or
 * `btree index "db.s.i":`) followed by indented lines saying what.
 */
export function amcheckProblems(stdout: string): string[] {
  const problems: string[] = [];
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    if (/^\s/.test(line) && problems.length > 0) problems[problems.length - 1] += ` ${line.trim()}`;
    else problems.push(line.trim());
  }
  return problems;
}

export async function checkPostgresqlData(source: BaseBackupSource, signal: AbortSignal): Promise<DataCheckResult> {
  if ((await source.running()) === undefined) {
    throw new CofferError('EngineError', 'PostgreSQL is not running: its data cannot be checked.');
  }
  const endpoint = await source.endpoint();
  const databases = await withAdminClient(endpoint, 'postgres', async (client) => {
    const result = await client.query<{ name: string }>('SELECT datname AS name FROM pg_database WHERE datallowconn ORDER BY datname');
    return result.rows.map((row) => row.name);
  });
  let tables = 0;
  let indexes = 0;
  for (const database of databases) {
    signal.throwIfAborted();
    const counts = await withAdminClient(endpoint, database, countRelations);
    tables += counts.tables;
    indexes += counts.indexes;
  }
  const amcheck = source.program('pg_amcheck');
  const problems = (await isExecutable(amcheck)) ? await runAmcheck(source, endpoint, amcheck, signal) : await readEveryTable(endpoint, databases, signal);
  return {
    checks: { databases: databases.length, tables, indexes, errors: problems.length },
    problems: problems.slice(0, maxProblems),
  };
}

async function runAmcheck(source: BaseBackupSource, endpoint: AdminEndpoint, program: string, signal: AbortSignal): Promise<string[]> {
  const run = await runCheckTool(source.runner, program, ['--all', '--heapallindexed', '--install-missing', '--no-password'], {
    timeoutMs: checkTimeoutMs,
    signal,
    env: {
      PGHOST: endpoint.socketDir,
      PGPORT: String(endpoint.port),
      PGUSER: adminRole,
      PGPASSWORD: endpoint.password,
      PGAPPNAME: 'coffer-check',
      PGOPTIONS: adminSessionOptions,
    },
  });
  const problems = amcheckProblems(run.stdout);
  // a failure status with a report is what pg_amcheck says when it found corruption; without
  // one the check itself did not run (no connection, the extension missing)
  if (run.failure !== undefined && problems.length === 0) throw run.failure;
  return problems;
}

/**
 * Without amcheck: every table of every database read whole with a sequential scan (no index
 * can stand in for its pages), each failure a problem.
 */
async function readEveryTable(endpoint: AdminEndpoint, databases: readonly string[], signal: AbortSignal): Promise<string[]> {
  const problems: string[] = [];
  for (const database of databases) {
    await withAdminClient(
      endpoint,
      database,
      async (client) => {
        await client.query('SET enable_indexscan = off; SET enable_indexonlyscan = off; SET enable_bitmapscan = off');
        const relations = await client.query<{ schema: string; name: string }>(
          `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'm') ORDER BY 1, 2`,
        );
        for (const { schema, name } of relations.rows) {
          signal.throwIfAborted();
          const table = `${escapeIdentifier(schema)}.${escapeIdentifier(name)}`;
          await client.query(`SELECT count(*) FROM ONLY ${table}`).catch((err: unknown) => {
            problems.push(`table "${database}.${schema}.${name}": ${err instanceof Error ? err.message : String(err)}`);
          });
        }
      },
      checkTimeoutMs / 6,
    );
  }
  return problems;
}
