import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { connectSqlite } from '../../src/db/connect-sqlite.js';
import { runReusable } from '../../src/db/reusable-query.js';
import { sqlDialect } from '../../src/db/sql-dialect.js';
import type { RepositoryContext } from '../../src/db/repository-context.js';

// A reusable query is built and compiled once per shape; every later call must run it with its
// own values, never the first call's, and a shape it was not built for gets SQL of its own.

async function withStore(fn: (ctx: RepositoryContext) => Promise<void>): Promise<void> {
  const db = connectSqlite(':memory:');
  try {
    await sql`create table tokens (token_hash text primary key, user_id text, project_id text)`.execute(db);
    await sql`insert into tokens values ('h1', 'u1', 'p1'), ('h2', 'u2', 'p2'), ('h3', 'u3', 'p1')`.execute(db);
    await fn({ db, dialect: sqlDialect('sqlite') });
  } finally {
    await db.destroy();
  }
}

test('each call runs with its own values, lists of any length, an absent value leaving its condition out', async () => {
  await withStore(async (ctx) => {
    let built = 0;
    const find = (project: string | undefined, hashes: readonly string[]) =>
      runReusable(ctx, 'test.find', [project, hashes] as const, ([project, hashes]) => {
        built += 1;
        let query = ctx.db.selectFrom('tokens').select('user_id').where('token_hash', 'in', hashes);
        if (project !== undefined) query = query.where('project_id', '=', project);
        return query.orderBy('user_id');
      });
    const users = async (project: string | undefined, hashes: readonly string[]) => (await find(project, hashes)).map((r) => r.user_id);
    assert.deepEqual(await users('p1', ['h1', 'h2', 'h3']), ['u1', 'u3']);
    assert.deepEqual(await users('p2', ['h1', 'h2', 'h3']), ['u2']);
    assert.deepEqual(await users('p1', ['h2', 'h3', 'h1']), ['u1', 'u3']);
    assert.equal(built, 1, 'one shape, built once');
    assert.deepEqual(await users('p1', ['h3']), ['u3']);
    assert.deepEqual(await users('p2', ['h3']), []);
    assert.deepEqual(await users(undefined, ['h2', 'h3']), ['u2', 'u3']);
    assert.deepEqual(await users(undefined, ['h1', 'h3']), ['u1', 'u3']);
    assert.equal(built, 3, 'a list of another length and an absent value are shapes of their own');
  });
});

test('a value that does not become a parameter of the SQL is refused, not frozen into it', async () => {
  await withStore(async (ctx) => {
    await assert.rejects(
      runReusable(ctx, 'test.unused', ['h1'] as const, () => ctx.db.selectFrom('tokens').select('user_id')),
      /used 0 of its 1 parameter values/,
    );
  });
});
