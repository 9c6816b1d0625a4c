import assert from 'node:assert/strict';
import { test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import { connectSqlite } from '../../src/db/connect-sqlite.js';

// The SQLite connection reads rows as arrays and makes them into objects itself (faster than
// better-sqlite3's own objects): the objects must be the ones better-sqlite3 would have made,
// also for repeated names and for a statement kept across a schema change.

test('rows come back as better-sqlite3 makes them, a later column of the same name winning', async () => {
  const db = connectSqlite(':memory:');
  try {
    await sql`create table t (id integer primary key, name text, note text)`.execute(db);
    await sql`insert into t (id, name, note) values (1, 'a', null), (2, 'b', 'x')`.execute(db);
    const query = 'select t.*, 7 as extra, t.note as name from t order by id';
    const plain = new BetterSqlite3(':memory:');
    plain.exec("create table t (id integer primary key, name text, note text); insert into t values (1, 'a', null), (2, 'b', 'x')");
    const expected = plain.prepare(query).all();
    plain.close();
    for (let n = 0; n < 2; n++) assert.deepEqual((await sql.raw(query).execute(db)).rows, expected, 'the kept statement too');
    assert.deepEqual((await sql.raw('select * from t where id = 99').execute(db)).rows, []);
  } finally {
    await db.destroy();
  }
});

test('a column named __proto__ is a property of the row, not its prototype', async () => {
  const db = connectSqlite(':memory:');
  try {
    const [row] = (await sql.raw<Record<string, unknown>>(`select 1 as a, 'x' as "__proto__", 2 as "b c", 3 as "'"`).execute(db)).rows;
    assert.equal(Object.getPrototypeOf(row), Object.prototype);
    assert.deepEqual(Object.entries(row!), [['a', 1], ['__proto__', 'x'], ['b c', 2], ["'", 3]]);
  } finally {
    await db.destroy();
  }
});

test('a statement kept across a schema change reads the columns the table has now', async () => {
  const db = connectSqlite(':memory:');
  try {
    await sql`create table t (id integer primary key, name text)`.execute(db);
    await sql`insert into t (id, name) values (1, 'a')`.execute(db);
    assert.deepEqual((await sql`select * from t`.execute(db)).rows, [{ id: 1, name: 'a' }]);
    await sql`alter table t rename column name to title`.execute(db);
    assert.deepEqual((await sql`select * from t`.execute(db)).rows, [{ id: 1, title: 'a' }]);
    await sql`alter table t add column size integer default 3`.execute(db);
    assert.deepEqual((await sql`select * from t`.execute(db)).rows, [{ id: 1, title: 'a', size: 3 }]);
  } finally {
    await db.destroy();
  }
});
