import type { Kysely } from 'kysely';
import { columnTypes } from './column-types.js';

// How far an instance's archived write-ahead log reaches: every change committed up to this time
// is stored, so a point-in-time restore can reach it (its guest reports it, walArchived). Null:
// nothing archived yet. The window's other end is the instance's first full backup taken while
// the log was archived, which the backups table holds.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('instances').addColumn('wal_archived_until', columnTypes(db).timestamp).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('instances').dropColumn('wal_archived_until').execute();
}
