import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IdleActivity, parseActivity, type ServerActivity } from '../../src/guest/engines/postgresql/idle-activity.js';

// What the health check's reading says of a PostgreSQL server's use, from two readings in a row;
// the real server's side of it is in postgresql-idle.int.test.ts.

const reading = (checkedAt: number, changedAt: number | null, more: Partial<ServerActivity> = {}): ServerActivity => ({
  sessions: '7',
  busy: 0,
  checkedAt,
  changedAt,
  ...more,
});

test('unknown until two readings, and after a check that read nothing', () => {
  const activity = new IdleActivity();
  activity.observe(reading(1000, 900));
  assert.equal(activity.idle, undefined);
  activity.observe(reading(1010, 900));
  assert.equal(activity.idle, true);
  activity.observe(undefined);
  assert.equal(activity.idle, undefined);
  activity.observe(reading(1020, 900));
  assert.equal(activity.idle, undefined, 'one reading since the gap');
});

test('a statement that ended a fraction of a millisecond after the previous check is use', () => {
  // compared on the server's clock alone: the guest's millisecond clock once put such a statement
  // before the check that preceded it, and no later check saw it either
  const activity = new IdleActivity();
  activity.observe(reading(1000.0004, 900));
  activity.observe(reading(1000.0121, 1000.0007));
  assert.equal(activity.idle, false);
  activity.observe(reading(1000.0229, 1000.0007));
  assert.equal(activity.idle, true, 'the check after it: nothing new');
});

test('a new session, a session in a statement or transaction, or no statistics: not idle', () => {
  const activity = new IdleActivity();
  activity.observe(reading(1000, null));
  activity.observe(reading(1010, null, { sessions: '8' }));
  assert.equal(activity.idle, false, 'a session opened (and maybe closed) since');
  activity.observe(reading(1020, 900, { sessions: '8', busy: 1 }));
  assert.equal(activity.idle, false, 'a session in a statement');
  activity.observe(reading(1030, 900, { sessions: null }));
  assert.equal(activity.idle, undefined, 'a server without session counts');
});

test('reads the row as the pg client returns it', () => {
  assert.deepEqual(parseActivity({ sessions: '12', busy: '0', checked_at: 1000.5, changed_at: null }), {
    sessions: '12',
    busy: 0,
    checkedAt: 1000.5,
    changedAt: null,
  });
});
