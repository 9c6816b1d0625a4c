// test-lane: parallel (pure functions)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkTableProblems } from '../../src/guest/engines/mysql-family/data-check.js';
import { amcheckProblems } from '../../src/guest/engines/postgresql/data-check.js';
import { rdbCheckProblems } from '../../src/guest/engines/redis/data-check.js';

// What the engines' check tools print, as Coffer reads it into problems: one per damaged
// relation or table, nothing for a sound report.

test("pg_amcheck's report: one problem per relation, its indented lines joined to it", () => {
  const report = [
    'heap table "app.public.rows", block 0, offset 3:',
    '    line pointer redirection to item at offset 59 exceeds maximum offset 58',
    'btree index "app.public.rows_id":',
    '    ERROR:  could not open relation',
    '',
  ].join('\n');
  assert.deepEqual(amcheckProblems(report), [
    'heap table "app.public.rows", block 0, offset 3: line pointer redirection to item at offset 59 exceeds maximum offset 58',
    'btree index "app.public.rows_id": ERROR:  could not open relation',
  ]);
  assert.deepEqual(amcheckProblems(''), []);
});

test("CHECK TABLE's rows: a table is sound when its last row is status OK, whatever notes came before", () => {
  const rows = [
    { table: 'app.a', type: 'status', text: 'OK' },
    { table: 'app.b', type: 'note', text: 'The storage engine for the table does not support check' },
    { table: 'app.b', type: 'status', text: 'Table is already up to date' },
    { table: 'app.c', type: 'Warning', text: 'InnoDB: The B-tree of index PRIMARY is corrupted.' },
    { table: 'app.c', type: 'error', text: 'Corrupt' },
  ];
  assert.deepEqual(checkTableProblems(rows), ['table app.c: InnoDB: The B-tree of index PRIMARY is corrupted.; Corrupt']);
  assert.deepEqual(checkTableProblems(rows.slice(0, 3)), []);
});

test("redis-check-rdb's report: what follows its error banner, without the closing counts", () => {
  const bad = [
    '[offset 0] Checking RDB file dump.rdb',
    "[offset 27] AUX FIELD redis-ver = '7.0.15'",
    '--- RDB ERROR DETECTED ---',
    '[offset 104] RDB CRC error',
    '[additional info] While doing: check-sum',
    '[info] 2 keys read',
    '[info] 0 expires',
  ].join('\n');
  assert.deepEqual(rdbCheckProblems(bad), ['[offset 104] RDB CRC error [additional info] While doing: check-sum']);
  assert.deepEqual(rdbCheckProblems('[offset 104] \\o/ RDB looks OK! \\o/\n[info] 2 keys read\n'), []);
});
