import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { SqlDialect } from './sql-dialect.js';

/** What every repository is built from: the database (or one transaction on it) and its dialect. */
export interface RepositoryContext {
  db: Kysely<Database>;
  dialect: SqlDialect;
}
