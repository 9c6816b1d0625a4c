import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { noEngineCapabilities } from '../../src/common/index.js';
import { json, memberSession, seededCapabilities, startHarness, type Harness, type Session } from './api-harness.js';
import { guestInstance, type GuestInstance } from './guest-instance.js';

let h: Harness;
let alice: Session;
let bob: Session;
let pg: GuestInstance;
let my: GuestInstance;

before(async () => {
  h = await startHarness();
  alice = await memberSession(h, 'alice');
  bob = await memberSession(h, 'bob');
  pg = await guestInstance(h, alice, { capabilities: seededCapabilities.postgresql });
  my = await guestInstance(h, alice, { manager: 'mysql', capabilities: seededCapabilities.mysql });
  for (const name of ['orders', 'billing']) pg.engine.databases.set(name, { name });
  for (const name of ['orders', 'billing']) my.engine.databases.set(name, { name });
});
after(async () => {
  await pg.close();
  await my.close();
  await h.close();
});

const headers = (s: Session) => ({ 'x-auth-token': s.token, host: 'db.example' });
const path = (id: string, rest = '', s: Session = alice) => `/v1.0/${s.projectId}/instances/${id}/users${rest}`;
function send(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown, s: Session = alice) {
  return h.app.inject({ method, url, headers: headers(s), ...(payload === undefined ? {} : { payload: payload as object }) });
}

function assertFault(res: { statusCode: number; body: string }, status: number, fault: string, message: string | RegExp): void {
  assert.equal(res.statusCode, status, res.body);
  const body = JSON.parse(res.body);
  assert.deepEqual(Object.keys(body), [fault]);
  if (typeof message === 'string') assert.equal(body[fault].message, message);
  else assert.match(body[fault].message, message);
}

describe('users of an instance', () => {
  test('create 202, then list and show in Trove\'s view; the password never comes back', async () => {
    const res = await send('POST', path(pg.id), { users: [{ name: 'app', password: 'app-secret', databases: [{ name: 'orders' }] }, { name: 'report', password: 'r-secret' }] });
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(res.body, '');
    assert.equal(pg.engine.users.get('app@%')?.password, 'app-secret');
    const list = await send('GET', path(pg.id));
    assert.deepEqual(json(list), {
      users: [
        { name: 'app', host: '%', databases: [{ name: 'orders' }] },
        { name: 'report', host: '%', databases: [] },
      ],
    });
    assert.doesNotMatch(list.body, /secret/);
    assert.deepEqual(json(await send('GET', path(pg.id, '/app'))), { user: { name: 'app', host: '%', databases: [{ name: 'orders' }] } });
  });

  test('an existing user comes back from the guest as 400; invalid names, hosts and passwords never reach it', async () => {
    assertFault(await send('POST', path(pg.id), { users: [{ name: 'app', password: 'pw' }] }), 400, 'badRequest', 'A user with the name "app" already exists.');
    const calls = pg.engine.calls.length;
    assertFault(await send('POST', path(pg.id), { users: [{ name: "o'neil", password: 'pw' }] }), 400, 'badRequest', `'o'neil' is not a valid user name. A user name may have any characters but quotes (' " \`), ';', ',', '/', backslashes and control characters, and may not start or end with a space.`);
    assertFault(await send('POST', path(pg.id), { users: [{ name: 'postgres', password: 'pw' }] }), 400, 'badRequest', /reserved list/);
    assertFault(await send('POST', path(pg.id), { users: [{ name: 'u2', password: 'pw', host: '10.0.0.1' }] }), 400, 'badRequest', /no host patterns: leave out 'host' for user 'u2'/);
    const badPassword = await send('POST', path(pg.id), { users: [{ name: 'u2', password: "x'; drop" }] });
    assertFault(badPassword, 400, 'badRequest', "The password of user 'u2' is not a valid password.");
    assertFault(await send('POST', path(pg.id), { users: [{ name: 'u2', password: 'pw', databases: [{ name: 'a;b' }] }] }), 400, 'badRequest', /not a valid schema name/);
    assertFault(await send('POST', path(pg.id), { users: [{ name: 'u2' }] }), 400, 'badRequest', "Validation error: users[0] 'password' is a required property");
    assert.equal(pg.engine.calls.length, calls);
  });

  test('path ids are percent-decoded once and split at the last @; without one the host is %', async () => {
    await send('POST', path(my.id), {
      users: [
        { name: 'bob.o', password: 'pw' },
        { name: 'a@b', password: 'pw', host: '10.0.0.1' },
        { name: 'pct', password: 'pw', host: '192.168.%.%' },
      ],
    });
    assert.equal(json(await send('GET', path(my.id, '/bob%2eo'))).user.name, 'bob.o');
    assert.deepEqual(json(await send('GET', path(my.id, '/bob.o@%25'))).user, { name: 'bob.o', host: '%', databases: [] });
    assert.deepEqual(json(await send('GET', path(my.id, '/a%40b%4010.0.0.1'))).user, { name: 'a@b', host: '10.0.0.1', databases: [] });
    assert.deepEqual(json(await send('GET', path(my.id, '/pct@192.168.%25.%25'))).user.host, '192.168.%.%');
    assertFault(await send('GET', path(my.id, '/a%40b')), 404, 'itemNotFound', 'User a@b cannot be found on the instance.');
  });

  test('list pages by name@host with the marker URL-encoded in the next link', async () => {
    const many = await guestInstance(h, alice, { manager: 'mysql', capabilities: seededCapabilities.mysql });
    try {
      const names = Array.from({ length: 22 }, (_, i) => `u${String(i).padStart(2, '0')}`);
      for (const name of names) many.engine.users.set(`${name}@%`, { name, host: '%', password: 'p', databases: new Set() });
      many.engine.users.set('u19@10.0.0.1', { name: 'u19', host: '10.0.0.1', password: 'p', databases: new Set() });
      const first = json(await send('GET', path(many.id)));
      assert.equal(first.users.length, 20);
      assert.deepEqual(first.users.slice(-2).map((u: { name: string; host: string }) => `${u.name}@${u.host}`), ['u18@%', 'u19@%']);
      assert.deepEqual(first.links, [{ rel: 'next', href: `https://db.example${path(many.id)}?marker=u19%40%25` }]);
      const second = json(await send('GET', first.links[0].href.replace('https://db.example', '')));
      assert.deepEqual(second.users.map((u: { name: string; host: string }) => `${u.name}@${u.host}`), ['u19@10.0.0.1', 'u20@%', 'u21@%']);
      assert.equal('links' in second, false);
    } finally {
      await many.close();
    }
  });

  test('update attributes renames, moves and re-passwords a user; 404 when absent; 400 when the new name is taken or the body is empty', async () => {
    await send('POST', path(my.id), { users: [{ name: 'old', password: 'pw' }, { name: 'taken', password: 'pw' }] });
    const res = await send('PUT', path(my.id, '/old'), { user: { name: 'new', host: '10.1.0.0/16', password: 'pw2' } });
    assert.equal(res.statusCode, 202, res.body);
    assert.deepEqual(pick(my.engine.users.get('new@10.1.0.0/16')), { name: 'new', host: '10.1.0.0/16', password: 'pw2' });
    assertFault(await send('PUT', path(my.id, '/old'), { user: { password: 'x' } }), 404, 'itemNotFound', 'User old cannot be found on the instance.');
    assertFault(await send('PUT', path(my.id, '/new@10.1.0.0%2F16'), { user: { name: 'taken', host: '%' } }), 400, 'badRequest', 'A user with the name "taken" already exists.');
    assertFault(await send('PUT', path(my.id, '/taken'), { user: {} }), 400, 'badRequest', /^Validation error: user does not have enough properties/);
    assertFault(await send('PUT', path(my.id, '/taken'), { user: { host: 'nowhere' } }), 400, 'badRequest', "'nowhere' is not a valid hostname.");
  });

  test('change passwords: 202 for existing users; one unknown user is 404 and changes nothing', async () => {
    await send('POST', path(pg.id), { users: [{ name: 'p1', password: 'one' }, { name: 'p2', password: 'two' }] });
    assert.equal((await send('PUT', path(pg.id), { users: [{ name: 'p1', password: 'uno' }, { name: 'p2', password: 'dos' }] })).statusCode, 202);
    assert.deepEqual([pg.engine.users.get('p1@%')?.password, pg.engine.users.get('p2@%')?.password], ['uno', 'dos']);
    assertFault(await send('PUT', path(pg.id), { users: [{ name: 'p1', password: 'eins' }, { name: 'ghost', password: 'x' }] }), 404, 'itemNotFound', 'User ghost@% cannot be found on the instance.');
    assert.equal(pg.engine.users.get('p1@%')?.password, 'uno');
  });

  test('delete 202, then 404; the engine\'s own users are never found, without asking the guest', async () => {
    await send('POST', path(pg.id), { users: [{ name: 'gone', password: 'pw' }] });
    assert.equal((await send('DELETE', path(pg.id, '/gone'))).statusCode, 202);
    assertFault(await send('DELETE', path(pg.id, '/gone')), 404, 'itemNotFound', 'User gone cannot be found on the instance.');
    const calls = pg.engine.calls.length;
    assertFault(await send('DELETE', path(pg.id, '/postgres')), 404, 'itemNotFound', 'User postgres cannot be found on the instance.');
    assertFault(await send('GET', path(pg.id, '/os_admin')), 404, 'itemNotFound', 'User os_admin cannot be found on the instance.');
    assert.equal(pg.engine.calls.length, calls);
  });

  test("another project's instance is 404", async () => {
    assertFault(await send('GET', path(pg.id, '', bob), undefined, bob), 404, 'itemNotFound', `Resource ${pg.id} cannot be found.`);
  });
});

describe('user access', () => {
  test('show, grant and revoke a user\'s databases', async () => {
    await send('POST', path(pg.id), { users: [{ name: 'reader', password: 'pw' }] });
    assert.deepEqual(json(await send('GET', path(pg.id, '/reader/databases'))), { databases: [] });
    assert.equal((await send('PUT', path(pg.id, '/reader/databases'), { databases: [{ name: 'orders' }, { name: 'billing' }, { name: 'orders' }] })).statusCode, 202);
    assert.deepEqual([...pg.engine.users.get('reader@%')!.databases].sort(), ['billing', 'orders']);
    assert.equal((await send('DELETE', path(pg.id, '/reader/databases/orders'))).statusCode, 202);
    assert.deepEqual(json(await send('GET', path(pg.id, '/reader/databases'))), { databases: [{ name: 'billing' }] });
    assertFault(await send('DELETE', path(pg.id, '/reader/databases/orders')), 404, 'itemNotFound', 'User reader has no access to database orders.');
    assertFault(await send('PUT', path(pg.id, '/reader/databases'), { databases: [{ name: 'missing' }] }), 404, 'itemNotFound', 'Database missing cannot be found on the instance.');
    assertFault(await send('GET', path(pg.id, '/nobody/databases')), 404, 'itemNotFound', 'User nobody cannot be found on the instance.');
    assertFault(await send('PUT', path(pg.id, '/reader/databases'), { databases: [{ name: 'template0' }] }), 400, 'badRequest', /reserved list/);
    assert.equal((await send('POST', path(pg.id, '/reader/databases'), { databases: [] })).statusCode, 404);
  });

  test('users-only engines (Redis ACL users): users work, access is 422 and users with databases 400, before any guest call', async () => {
    const redis = await guestInstance(h, alice, { manager: 'redis', capabilities: { ...noEngineCapabilities, users: true } });
    try {
      assert.equal((await send('POST', path(redis.id), { users: [{ name: 'cache', password: 'pw' }] })).statusCode, 202);
      const calls = redis.engine.calls.length;
      assertFault(
        await send('POST', path(redis.id), { users: [{ name: 'c2', password: 'pw', databases: [{ name: 'd' }] }] }),
        400, 'badRequest', "Users of the 'redis' datastore cannot be given databases: leave out 'databases' for user 'c2'.",
      );
      for (const res of [
        await send('GET', path(redis.id, '/cache/databases')),
        await send('PUT', path(redis.id, '/cache/databases'), { databases: [{ name: 'd' }] }),
        await send('DELETE', path(redis.id, '/cache/databases/d')),
      ]) {
        assertFault(res, 422, 'unprocessableEntity', 'Operation not supported for datastore redis.');
      }
      assert.equal(redis.engine.calls.length, calls);
    } finally {
      await redis.close();
    }
  });

  test('an engine without users is 422 on every user route', async () => {
    const bare = await guestInstance(h, alice, { manager: 'memcached', capabilities: noEngineCapabilities });
    try {
      for (const res of [await send('GET', path(bare.id)), await send('POST', path(bare.id), { users: [{ name: 'u', password: 'p' }] }), await send('DELETE', path(bare.id, '/u'))]) {
        assertFault(res, 422, 'unprocessableEntity', 'Operation not supported for datastore memcached.');
      }
      assert.deepEqual(bare.engine.calls, []);
    } finally {
      await bare.close();
    }
  });
});

function pick(u: { name: string; host: string; password: string } | undefined) {
  return u && { name: u.name, host: u.host, password: u.password };
}
