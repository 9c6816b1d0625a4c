import type { Kysely } from 'kysely';
import { columnTypes } from './column-types.js';

// An instance's TLS as its guest last reported it (JSON: the CA certificate that signed the
// instance's certificate, when that expires, the port TLS clients use); NULL until the first
// report. Whether TLS is required is part of the instance's `access`.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('instances').addColumn('tls', columnTypes(db).longText).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('instances').dropColumn('tls').execute();
}
