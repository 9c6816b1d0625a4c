import type { Kysely } from 'kysely';

// Which bus contract versions each agent and the guests it hosts serve (JSON; NULL for agents
// that heartbeated before they reported them), so the taskmanager places an instance only on an
// agent that understands the messages it will send.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('agents').addColumn('contracts', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('agents').dropColumn('contracts').execute();
}
