// test-lane: parallel (an in-memory store, an in-process bus and a temporary directory of its own)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LocalDirectoryStorage } from '../../src/backup/index.js';
import { newUuid, nextCronRun } from '../../src/common/index.js';
import { noCapabilities } from '../support/fake-guest.js';
import { makeDataDir } from '../support/temp-dir.js';
import { adminSession, json, memberSession, startHarness, type Harness, type Session } from './api-harness.js';
import { guestInstance, type GuestInstance } from './guest-instance.js';

// PUT, GET and DELETE /instances/{id}/backup_schedule (Coffer's extension) over HTTP against the
// real API and a SQLite store. What a schedule does when it runs is tested with the taskmanager
// (test/taskmanager/backup-scheduler.test.ts).

let h: Harness;
let admin: Session;
let alice: Session;
let bob: Session;
let storageDir: Awaited<ReturnType<typeof makeDataDir>>;
const guests: GuestInstance[] = [];

before(async () => {
  storageDir = await makeDataDir('coffer-schedules-api');
  h = await startHarness({ backupStorage: new LocalDirectoryStorage(storageDir.path) });
  admin = await adminSession(h.app);
  alice = await memberSession(h, 'alice');
  bob = await memberSession(h, 'bob');
});

after(async () => {
  for (const g of guests) await g.close();
  await h.close();
  await storageDir.remove();
});

const fullOnly = { ...noCapabilities, backup: true };

async function instanceOf(s: Session, capabilities = fullOnly, manager = 'postgresql'): Promise<string> {
  const g = await guestInstance(h, s, { capabilities, manager });
  guests.push(g);
  return g.id;
}

function call(s: Session, method: 'GET' | 'PUT' | 'DELETE', instanceId: string, schedule?: unknown) {
  return h.app.inject({
    method,
    url: `/v1.0/${s.projectId}/instances/${instanceId}/backup_schedule`,
    headers: { 'x-auth-token': s.token },
    ...(schedule === undefined ? {} : { payload: { backup_schedule: schedule } as object }),
  });
}

function expectFault(res: { statusCode: number; body: string }, status: number, fault: string, message: string | RegExp): void {
  assert.equal(res.statusCode, status, res.body);
  const body = json(res as never);
  assert.deepEqual(Object.keys(body), [fault]);
  assert.equal(body[fault].code, status);
  if (typeof message === 'string') assert.equal(body[fault].message, message);
  else assert.match(body[fault].message, message);
}

describe('setting, showing and clearing a schedule', () => {
  test('PUT answers 200 with the schedule and its next run in UTC; GET shows it; a second PUT changes it and keeps its id', async () => {
    const id = await instanceOf(alice);
    const before = new Date();
    const res = await call(alice, 'PUT', id, { pattern: '30 2 * * *', retain_count: 7, name: 'nightly' });
    assert.equal(res.statusCode, 200, res.body);
    const schedule = json(res).backup_schedule;
    const expectedNext = nextCronRun('30 2 * * *', before).toISOString().slice(0, 19);
    assert.deepEqual(schedule, {
      id: schedule.id,
      instance_id: id,
      project_id: alice.projectId,
      name: 'nightly',
      pattern: '30 2 * * *',
      incremental: false,
      retain_count: 7,
      retain_days: null,
      verify: false,
      last_verified_backup_id: null,
      next_run: expectedNext,
      last_run: null,
      last_backup_id: null,
      last_error: null,
      created: schedule.created,
      updated: schedule.updated,
    });
    assert.match(schedule.next_run, /T02:30:00$/, 'the pattern is read in UTC');
    assert.deepEqual(json(await call(alice, 'GET', id)).backup_schedule, schedule);

    const changed = json(await call(alice, 'PUT', id, { pattern: '0  */6 * * *', retain_days: 30 })).backup_schedule;
    assert.equal(changed.id, schedule.id);
    assert.equal(changed.pattern, '0 */6 * * *');
    assert.equal(changed.name, null);
    assert.deepEqual([changed.retain_count, changed.retain_days], [null, 30]);
    assert.match(changed.next_run, /T(00|06|12|18):00:00$/);
  });

  test('verify: true is kept and shown; a PUT without it turns it off; anything but a boolean is 400', async () => {
    const id = await instanceOf(alice);
    const on = json(await call(alice, 'PUT', id, { pattern: '0 3 * * *', retain_count: 3, verify: true })).backup_schedule;
    assert.deepEqual([on.verify, on.last_verified_backup_id], [true, null]);
    assert.equal(json(await call(alice, 'GET', id)).backup_schedule.verify, true);
    assert.equal((await h.store.backupSchedules.get(id))?.verify, true);
    const off = json(await call(alice, 'PUT', id, { pattern: '0 3 * * *', retain_count: 3 })).backup_schedule;
    assert.equal(off.id, on.id);
    assert.equal(off.verify, false, 'a PUT sets the whole schedule, as for every other field');
    for (const bad of [1, 'true', null, {}]) {
      expectFault(await call(alice, 'PUT', id, { pattern: '0 3 * * *', retain_count: 3, verify: bad }), 400, 'badRequest', /^Validation error: backup_schedule\.verify /);
    }
    assert.equal(json(await call(alice, 'GET', id)).backup_schedule.verify, false, 'a refused PUT changes nothing');
  });

  test('DELETE answers 202 and the schedule is gone (404 after, for GET and DELETE)', async () => {
    const id = await instanceOf(alice);
    assert.equal((await call(alice, 'PUT', id, { pattern: '0 3 * * *', retain_count: 3 })).statusCode, 200);
    const res = await call(alice, 'DELETE', id);
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(res.body, '');
    expectFault(await call(alice, 'GET', id), 404, 'itemNotFound', `Instance ${id} has no backup schedule.`);
    expectFault(await call(alice, 'DELETE', id), 404, 'itemNotFound', `Instance ${id} has no backup schedule.`);
  });

  test('incremental where the engine has incremental backups', async () => {
    const id = await instanceOf(alice, { ...fullOnly, incrementalBackup: true }, 'mariadb');
    const res = await call(alice, 'PUT', id, { pattern: '0 * * * *', incremental: true, retain_count: 24, retain_days: 2 });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(json(res).backup_schedule.incremental, true);
  });

  test('deleting the instance deletes its schedule', async () => {
    const id = await instanceOf(alice);
    assert.equal((await call(alice, 'PUT', id, { pattern: '0 3 * * *', retain_count: 3 })).statusCode, 200);
    const res = await h.app.inject({ method: 'DELETE', url: `/v1.0/${alice.projectId}/instances/${id}`, headers: { 'x-auth-token': alice.token } });
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(await h.store.backupSchedules.get(id), undefined);
  });
});

describe('what PUT refuses', () => {
  test('a pattern that is not five cron fields: 400 saying what is wrong', async () => {
    const id = await instanceOf(alice);
    const put = (pattern: string) => call(alice, 'PUT', id, { pattern, retain_count: 1 });
    expectFault(await put('0 3 * *'), 400, 'badRequest', /^Invalid cron pattern "0 3 \* \*": it has 4 fields, not 5\. Give five fields, minute hour day-of-month month day-of-week, in UTC/);
    expectFault(await put('0 0 3 * * *'), 400, 'badRequest', /it has 6 fields, not 5/);
    expectFault(await put('61 * * * *'), 400, 'badRequest', /Invalid cron pattern "61 \* \* \* \*": constraint error, got value 61 expected range 0-59/);
    expectFault(await put('0 0 31 2 *'), 400, 'badRequest', /invalid explicit day of month definition/);
    expectFault(await put('@daily'), 400, 'badRequest', /it has 1 field, not 5/);
    expectFault(await put('H 3 * * *'), 400, 'badRequest', /the minute field "H" is not one cron takes/);
    expectFault(await put('0 3 * * ?'), 400, 'badRequest', /the day of week field/);
    assert.equal((await put('15 4 * * MON-FRI')).statusCode, 200);
  });

  test('retention: one limit at least, each within its range; unknown keys', async () => {
    const id = await instanceOf(alice);
    const put = (schedule: Record<string, unknown>) => call(alice, 'PUT', id, { pattern: '0 3 * * *', ...schedule });
    expectFault(await put({}), 400, 'badRequest', 'Validation error: backup_schedule needs retain_count (1 to 1000 backups) or retain_days (1 to 3650 days), or both');
    expectFault(await put({ retain_count: null, retain_days: null }), 400, 'badRequest', /needs retain_count/);
    expectFault(await put({ retain_count: 0 }), 400, 'badRequest', /^Validation error: backup_schedule\.retain_count /);
    expectFault(await put({ retain_count: 1001 }), 400, 'badRequest', /retain_count/);
    expectFault(await put({ retain_count: 1.5 }), 400, 'badRequest', /retain_count/);
    expectFault(await put({ retain_days: 3651 }), 400, 'badRequest', /retain_days/);
    expectFault(await put({ retain_count: 2, keep: 3 }), 400, 'badRequest', /keep/);
    expectFault(await put({ retain_count: 2, name: '' }), 400, 'badRequest', /name/);
    expectFault(await call(alice, 'PUT', id, { retain_count: 2 }), 400, 'badRequest', /'pattern' is a required property/);
    assert.equal((await put({ retain_count: 1000, retain_days: 3650 })).statusCode, 200);
  });

  test('incremental on an engine without incremental backups, or no backups at all: 501 as POST /backups', async () => {
    const pg = await instanceOf(alice);
    expectFault(
      await call(alice, 'PUT', pg, { pattern: '0 3 * * *', incremental: true, retain_count: 2 }),
      501,
      'notImplemented',
      'Incremental backups are not supported for datastore postgresql yet: schedule full backups (without incremental).',
    );
    const redis = await instanceOf(alice, noCapabilities, 'redis');
    expectFault(await call(alice, 'PUT', redis, { pattern: '0 3 * * *', retain_count: 2 }), 501, 'notImplemented', 'Backups are not supported for datastore redis.');
    assert.equal(await h.store.backupSchedules.get(pg), undefined, 'nothing stored');
  });

  test('another project’s instance or an unknown one: 404 for PUT, GET and DELETE; an admin reaches any', async () => {
    const bobs = await instanceOf(bob);
    for (const method of ['PUT', 'GET', 'DELETE'] as const) {
      const res = await call(alice, method, bobs, method === 'PUT' ? { pattern: '0 3 * * *', retain_count: 2 } : undefined);
      expectFault(res, 404, 'itemNotFound', `Resource ${bobs} cannot be found.`);
    }
    const unknown = newUuid();
    expectFault(await call(alice, 'GET', unknown), 404, 'itemNotFound', `Resource ${unknown} cannot be found.`);
    assert.equal((await call(admin, 'PUT', bobs, { pattern: '0 3 * * *', retain_count: 2 })).statusCode, 200);
    assert.equal(json(await call(bob, 'GET', bobs)).backup_schedule.project_id, bob.projectId, 'the schedule is the instance’s project’s');
  });

  test('a deployment without backup storage: 501', async () => {
    const bare = await startHarness();
    try {
      const s = await memberSession(bare, 'bare');
      const g = await guestInstance(bare, s, { capabilities: fullOnly });
      guests.push(g);
      const res = await bare.app.inject({
        method: 'PUT',
        url: `/v1.0/${s.projectId}/instances/${g.id}/backup_schedule`,
        headers: { 'x-auth-token': s.token },
        payload: { backup_schedule: { pattern: '0 3 * * *', retain_count: 2 } },
      });
      expectFault(res, 501, 'notImplemented', 'Backups are not configured on this deployment: it has no backup storage.');
    } finally {
      await bare.close();
    }
  });
});
