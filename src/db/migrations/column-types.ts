import { MysqlAdapter, PostgresAdapter, sql, type Expression, type Kysely } from 'kysely';

// The few places where one schema needs a different spelling per engine. Migrations are frozen
// once shipped, so they use only this file and never the runtime helpers.

type DataType = 'text' | 'timestamptz' | 'datetime(3)' | Expression<unknown>;

export interface ColumnTypes {
  /** an instant to the millisecond: timestamptz, DATETIME(3) written in UTC, ISO text in SQLite */
  timestamp: DataType;
  /** unbounded text (MySQL's TEXT stops at 64 KB) */
  longText: DataType;
  /** appended to CREATE TABLE: MySQL tables compare text bytewise, as the other engines do */
  tableOptions: Expression<unknown> | undefined;
}

export function columnTypes(db: Kysely<unknown>): ColumnTypes {
  const adapter = db.getExecutor().adapter;
  if (adapter instanceof PostgresAdapter) {
    return { timestamp: 'timestamptz', longText: 'text', tableOptions: undefined };
  }
  if (adapter instanceof MysqlAdapter) {
    return {
      timestamp: 'datetime(3)',
      longText: sql`mediumtext`,
      tableOptions: sql`engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin`,
    };
  }
  return { timestamp: 'text', longText: 'text', tableOptions: undefined };
}
