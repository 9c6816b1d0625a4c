import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { LocalDirectoryStorage } from '../../src/backup/index.js';
import type { GuestLogActionInput, GuestLogState } from '../../src/bus/index.js';
import { adminSession, json, memberSession, seededCapabilities, startHarness, type Harness, type Session } from './api-harness.js';
import { guestInstance, type GuestInstance } from './guest-instance.js';
import { makeDataDir } from '../support/temp-dir.js';

// Trove's log API over HTTP against a fake guest: the bodies, which logs a tenant and an admin
// see, what the guest is asked, the refusals Trove answers, and 501 where no storage exists.

let h: Harness;
let bare: Harness;
let alice: Session;
let bob: Session;
let admin: Session;
let bareAlice: Session;
let pg: GuestInstance;
let bareInstance: GuestInstance;
let storageDir: Awaited<ReturnType<typeof makeDataDir>>;
let storage: LocalDirectoryStorage;
const actions: GuestLogActionInput[] = [];

const general = (overrides: Partial<GuestLogState> = {}): GuestLogState => ({ name: 'general', type: 'USER', status: 'Disabled', published: 0, pending: 0, stored: false, ...overrides });

before(async () => {
  storageDir = await makeDataDir('coffer-api-logs');
  storage = new LocalDirectoryStorage(storageDir.path);
  h = await startHarness({ backupStorage: storage });
  alice = await memberSession(h, 'alice');
  bob = await memberSession(h, 'bob');
  admin = await adminSession(h.app);
  pg = await guestInstance(h, alice, {
    capabilities: seededCapabilities.postgresql,
    handlers: {
      guestLogs: async () => ({ logs: [general({ status: 'Published', published: 120, pending: 7, stored: true }), { ...general(), name: 'guest', type: 'SYS', status: 'Ready' }] }),
      guestLogAction: async (input) => {
        actions.push(input);
        return { log: general({ status: input.enable === true ? 'Enabled' : 'Disabled' }) };
      },
    },
  });
  bare = await startHarness();
  bareAlice = await memberSession(bare, 'alice');
  bareInstance = await guestInstance(bare, bareAlice, { capabilities: seededCapabilities.postgresql });
});
after(async () => {
  await pg.close();
  await bareInstance.close();
  await h.close();
  await bare.close();
  await storageDir.remove();
});

function send(method: 'GET' | 'POST', s: Session, id: string, payload?: unknown, harness: Harness = h) {
  return harness.app.inject({
    method,
    url: `/v1.0/${s.projectId}/instances/${id}/log`,
    headers: { 'x-auth-token': s.token },
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
}

test('GET log: a member sees the exposed logs of its instance in Trove\'s shape, an admin every one', async () => {
  const listed = await send('GET', alice, pg.id);
  assert.equal(listed.statusCode, 200, listed.body);
  assert.deepEqual(json(listed), {
    logs: [
      {
        name: 'general',
        type: 'USER',
        status: 'Published',
        published: 120,
        pending: 7,
        container: 'database_logs',
        prefix: `${pg.id}/postgresql-general/`,
        metafile: 'None',
      },
    ],
  });
  const all = json(await send('GET', admin, pg.id)).logs as { name: string; container: string; prefix: string }[];
  assert.deepEqual(all.map((log) => log.name), ['general', 'guest']);
  assert.deepEqual([all[1]!.container, all[1]!.prefix], ['None', 'None'], 'nothing stored: Trove\'s "None" strings');
});

test('POST log: the flags reach the guest as booleans with the deployment\'s container, and the log comes back', async () => {
  actions.length = 0;
  const res = await send('POST', alice, pg.id, { name: 'general', enable: 1 });
  assert.equal(res.statusCode, 200, res.body);
  assert.deepEqual(json(res).log, { name: 'general', type: 'USER', status: 'Enabled', published: 0, pending: 0, container: 'None', prefix: 'None', metafile: 'None' });
  assert.deepEqual(actions, [{ name: 'general', enable: true, disable: false, publish: false, discard: false, container: 'database_logs' }]);
  const shown = await send('POST', alice, pg.id, { name: 'general' });
  assert.equal(json(shown).log.status, 'Disabled');
  assert.deepEqual(actions[1], { name: 'general', enable: false, disable: false, publish: false, discard: false, container: 'database_logs' });
});

test('POST log refuses enable with disable, a log a member may not see, and flags other than 0/1, before the guest is asked', async () => {
  actions.length = 0;
  const both = await send('POST', alice, pg.id, { name: 'general', enable: 1, disable: 1 });
  assert.equal(both.statusCode, 400, both.body);
  const hidden = await send('POST', alice, pg.id, { name: 'guest', publish: 1 });
  assert.equal(hidden.statusCode, 400, hidden.body);
  assert.match(hidden.body, /No log guest/);
  for (const body of [{ name: 'general', enable: 2 }, { enable: 1 }, { name: 'general', tail: 1 }]) {
    const res = await send('POST', alice, pg.id, body);
    assert.equal(res.statusCode, 400, `${JSON.stringify(body)}: ${res.body}`);
  }
  assert.deepEqual(actions, []);
  const adminShown = await send('POST', admin, pg.id, { name: 'guest' });
  assert.equal(adminShown.statusCode, 200, adminShown.body);
});

test('another project\'s instance is 404 for both routes, and its guest is never asked', async () => {
  actions.length = 0;
  assert.equal((await send('GET', bob, pg.id)).statusCode, 404);
  assert.equal((await send('POST', bob, pg.id, { name: 'general', publish: 1 })).statusCode, 404);
  assert.deepEqual(actions, []);
});

test('a deployment without a backup storage has no logs: 501, as Trove without Swift', async () => {
  for (const res of [await send('GET', bareAlice, bareInstance.id, undefined, bare), await send('POST', bareAlice, bareInstance.id, { name: 'general' }, bare)]) {
    assert.equal(res.statusCode, 501, res.body);
    assert.match(res.body, /no backup storage/);
  }
});

function read(s: Session, id: string, name: string, query = '', harness: Harness = h) {
  return harness.app.inject({ method: 'GET', url: `/v1.0/${s.projectId}/instances/${id}/log/${name}${query}`, headers: { 'x-auth-token': s.token } });
}

test('GET log/{name} reads the published objects back in order, a page of four at a time, from the number asked', async () => {
  await storage.ensureContainer('database_logs');
  for (let n = 0; n < 6; n += 1) {
    await storage.put('database_logs', `${pg.id}/postgresql-general/${String(n).padStart(8, '0')}`, Readable.from([Buffer.from(`line ${n}\n`)]));
  }
  // another instance's objects and a stray name under the prefix are never read
  await storage.put('database_logs', `${bareInstance.id}/postgresql-general/00000000`, Readable.from([Buffer.from('not yours\n')]));
  await storage.put('database_logs', `${pg.id}/postgresql-general/stray`, Readable.from([Buffer.from('stray\n')]));
  const first = await read(alice, pg.id, 'general');
  assert.equal(first.statusCode, 200, first.body);
  assert.deepEqual(json(first), { contents: { name: 'general', text: 'line 0\nline 1\nline 2\nline 3\n', next: 4, more: true } });
  assert.deepEqual(json(await read(alice, pg.id, 'general', '?from=4')).contents, { name: 'general', text: 'line 4\nline 5\n', next: 6, more: false });
  assert.deepEqual(json(await read(alice, pg.id, 'general', '?from=6')).contents, { name: 'general', text: '', next: 6, more: false });
});

test('GET log/{name} keeps the rules: another project 404, a hidden log 404 for a member, a bad from 400, no storage 501', async () => {
  assert.equal((await read(bob, pg.id, 'general')).statusCode, 404);
  assert.equal((await read(alice, pg.id, 'guest')).statusCode, 404);
  assert.equal((await read(admin, pg.id, 'guest')).statusCode, 200);
  for (const name of ['a.b', 'Upper', 'x%2Fy']) assert.equal((await read(admin, pg.id, name)).statusCode, 404, name);
  assert.equal((await read(alice, pg.id, 'general', '?from=-1')).statusCode, 400);
  assert.equal((await read(alice, pg.id, 'general', '?from=x')).statusCode, 400);
  assert.equal((await read(bareAlice, bareInstance.id, 'general', '', bare)).statusCode, 501);
});
