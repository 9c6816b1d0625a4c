import type { RowDataPacket } from 'mysql2/promise';
import type { DataCheckResult } from '../../../bus/index.js';
import { CofferError } from '../../../common/index.js';
import type { MysqlFamilyAdmin } from './admin.js';
import { quoteId, systemDatabases } from './sql.js';

// The family's own check of an instance's data: CHECK TABLE … EXTENDED on every base table, the
// tenant's and the server's own (mysql.*, and the guest's registry, which a restored instance's
// accounts are rebuilt from), over the guest's admin session: no password on any command line.
// The virtual schemas (information_schema, performance_schema) have nothing stored to check.

type Row = RowDataPacket & Record<string, unknown>;

const virtualSchemas = ['information_schema', 'performance_schema'];
/** tables per CHECK TABLE statement: one result set stays small, and an abort waits for one batch at most */
const batchSize = 50;
const maxProblems = 20;

/** What CHECK TABLE's rows say: a table is sound when its last row is `status` `OK` (or says it needs no check). */
export function checkTableProblems(rows: ReadonlyArray<{ table: string; type: string; text: string }>): string[] {
  const last = new Map<string, { type: string; text: string }>();
  const messages = new Map<string, string[]>();
  for (const row of rows) {
    last.set(row.table, row);
    if (row.type.toLowerCase() === 'error' || row.type.toLowerCase() === 'warning') {
      messages.set(row.table, [...(messages.get(row.table) ?? []), row.text]);
    }
  }
  const problems: string[] = [];
  for (const [table, row] of last) {
    const sound = row.type.toLowerCase() === 'status' && /^(OK|Table is already up to date)$/i.test(row.text);
    const said = messages.get(table) ?? [];
    if (!sound) problems.push(`table ${table}: ${(said.includes(row.text) ? said : [...said, row.text]).join('; ')}`);
  }
  return problems;
}

export async function checkMysqlFamilyData(admin: MysqlFamilyAdmin, running: () => Promise<boolean>, signal: AbortSignal): Promise<DataCheckResult> {
  if (!(await running())) throw new CofferError('EngineError', `The ${admin.flavor.title} server is not running: its data cannot be checked.`);
  return admin.run(async (connection) => {
    const [tables] = await connection.query<Row[]>(
      `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS name FROM information_schema.TABLES
        WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN (?) ORDER BY TABLE_SCHEMA, TABLE_NAME`,
      [virtualSchemas],
    );
    const [schemata] = await connection.query<Row[]>('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA');
    const databases = schemata.map((row) => String(row.name)).filter((name) => !systemDatabases.has(name.toLowerCase()));
    const names = tables.map((row) => ({ db: String(row.db), name: String(row.name) }));
    const problems: string[] = [];
    for (let at = 0; at < names.length; at += batchSize) {
      signal.throwIfAborted();
      const batch = names.slice(at, at + batchSize);
      const [rows] = await connection.query<Row[]>(`CHECK TABLE ${batch.map((t) => `${quoteId(t.db)}.${quoteId(t.name)}`).join(', ')} EXTENDED`);
      problems.push(...checkTableProblems(rows.map((r) => ({ table: String(r.Table), type: String(r.Msg_type), text: String(r.Msg_text) }))));
    }
    const user = names.filter((t) => !systemDatabases.has(t.db.toLowerCase())).length;
    return {
      checks: { databases: databases.length, tables: user, system_tables: names.length - user, errors: problems.length },
      problems: problems.slice(0, maxProblems),
    };
  });
}
