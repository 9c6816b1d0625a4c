import type { Kysely } from 'kysely';
import { columnTypes } from './column-types.js';

// How far a running task's long guest operation got (step and percent), as the guest last
// reported it through the conductor. It lives on the task row: a finished task clears it, and an
// instance without a running task has none to show.

const columns = ['progress_step', 'progress_percent', 'progress_updated_at'] as const;

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  // One column per statement: SQLite adds only one at a time.
  await db.schema.alterTable('tasks').addColumn('progress_step', 'varchar(100)').execute();
  await db.schema.alterTable('tasks').addColumn('progress_percent', 'integer').execute();
  await db.schema.alterTable('tasks').addColumn('progress_updated_at', t.timestamp).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const column of columns) await db.schema.alterTable('tasks').dropColumn(column).execute();
}
