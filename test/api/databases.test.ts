import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CofferError, noEngineCapabilities } from '../../src/common/index.js';
import { adminSession, json, memberSession, seedDatastores, seededCapabilities, startHarness, type Harness, type Session } from './api-harness.js';
import { guestInstance, type GuestInstance } from './guest-instance.js';

let h: Harness;
let admin: Session;
let alice: Session;
let bob: Session;
let pg: GuestInstance;

before(async () => {
  h = await startHarness();
  admin = await adminSession(h.app);
  alice = await memberSession(h, 'alice');
  bob = await memberSession(h, 'bob');
  await seedDatastores(h.store);
  pg = await guestInstance(h, alice, { capabilities: seededCapabilities.postgresql });
});
after(async () => {
  await pg.close();
  await h.close();
});

const headers = (s: Session) => ({ 'x-auth-token': s.token, host: 'db.example' });
const path = (s: Session, id: string, rest = '') => `/v1.0/${s.projectId}/instances/${id}/databases${rest}`;
const get = (s: Session, id: string, rest = '') => h.app.inject({ method: 'GET', url: path(s, id, rest), headers: headers(s) });
const post = (s: Session, id: string, payload: unknown) =>
  h.app.inject({ method: 'POST', url: path(s, id), headers: headers(s), payload: payload as object });
const del = (s: Session, id: string, name: string) => h.app.inject({ method: 'DELETE', url: path(s, id, `/${name}`), headers: headers(s) });

function assertFault(res: { statusCode: number; body: string }, status: number, fault: string, message: string | RegExp): void {
  assert.equal(res.statusCode, status, res.body);
  const body = JSON.parse(res.body);
  assert.deepEqual(Object.keys(body), [fault]);
  assert.equal(body[fault].code, status);
  if (typeof message === 'string') assert.equal(body[fault].message, message);
  else assert.match(body[fault].message, message);
}

describe('databases of an instance', () => {
  test('create answers 202 with an empty JSON body once the guest has created them', async () => {
    const res = await post(alice, pg.id, { databases: [{ name: 'orders' }, { name: 'billing' }] });
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(res.body, '');
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.deepEqual([...pg.engine.databases.keys()].sort(), ['billing', 'orders']);
  });

  test('an existing name comes back from the guest as 400 with its message; a duplicate in the body never reaches it', async () => {
    assertFault(await post(alice, pg.id, { databases: [{ name: 'orders' }] }), 400, 'badRequest', 'A database with the name "orders" already exists.');
    const calls = pg.engine.calls.length;
    assertFault(await post(alice, pg.id, { databases: [{ name: 'x1' }, { name: 'x1' }] }), 400, 'badRequest', /share the same name/);
    assert.equal(pg.engine.calls.length, calls);
  });

  test('names and bodies are checked before any guest call: invalid, reserved, charsets the engine lacks, bad shapes', async () => {
    const calls = pg.engine.calls.length;
    assertFault(await post(alice, pg.id, { databases: [{ name: 'a;drop' }] }), 400, 'badRequest', "'a;drop' is not a valid schema name. A database name has letters, digits, '_' and '-' (at least two), with at most one run of spaces, '?', '#' or '@' between them.");
    assertFault(await post(alice, pg.id, { databases: [{ name: 'template1' }] }), 400, 'badRequest', /reserved list/);
    assertFault(await post(alice, pg.id, { databases: [{ name: 'latin', character_set: 'latin1' }] }), 400, 'badRequest', /take no character set or collation: leave out 'character_set'/);
    assertFault(await post(alice, pg.id, { databases: [] }), 400, 'badRequest', /^Validation error: databases/);
    assertFault(await post(alice, pg.id, { database: [{ name: 'x' }] }), 400, 'badRequest', "Validation error: 'databases' is a required property");
    assertFault(await del(alice, pg.id, 'postgres'), 400, 'badRequest', /reserved list/);
    assert.equal(pg.engine.calls.length, calls);
  });

  test('list pages by name, 20 at most, with a next link only while more follow', async () => {
    const many = await guestInstance(h, alice, { capabilities: seededCapabilities.postgresql });
    try {
      const names = Array.from({ length: 25 }, (_, i) => `db${String(i).padStart(2, '0')}`);
      for (const name of [...names].reverse()) many.engine.databases.set(name, { name });
      const first = json(await get(alice, many.id, '?limit=50'));
      assert.deepEqual(first.databases, names.slice(0, 20).map((name) => ({ name })));
      assert.deepEqual(first.links, [{ rel: 'next', href: `https://db.example${path(alice, many.id)}?limit=50&marker=db19` }]);
      const second = json(await get(alice, many.id, '?limit=50&marker=db19'));
      assert.deepEqual(second.databases.map((d: { name: string }) => d.name), names.slice(20));
      assert.equal('links' in second, false);
      const small = json(await get(alice, many.id, '?limit=2&marker=db03'));
      assert.deepEqual(small.databases.map((d: { name: string }) => d.name), ['db04', 'db05']);
      assert.equal(small.links[0].href, `https://db.example${path(alice, many.id)}?limit=2&marker=db05`);
      const exact = await guestInstance(h, alice, { capabilities: seededCapabilities.postgresql });
      for (const name of names.slice(0, 20)) exact.engine.databases.set(name, { name });
      assert.equal('links' in json(await get(alice, exact.id)), false);
      await exact.close();
    } finally {
      await many.close();
    }
  });

  test('delete answers 202, and 404 for a database the guest does not have', async () => {
    await post(alice, pg.id, { databases: [{ name: 'scratch' }] });
    const res = await del(alice, pg.id, 'scratch');
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(pg.engine.databases.has('scratch'), false);
    assertFault(await del(alice, pg.id, 'scratch'), 404, 'itemNotFound', 'Database scratch cannot be found on the instance.');
  });

  test('showing one database is 501, as in Trove', async () => {
    assertFault(await get(alice, pg.id, '/orders'), 501, 'notImplemented', /incapable of performing the requested operation/);
  });

  test("another project's or an unknown instance is 404; an admin reaches any through their own tenant path", async () => {
    assertFault(await get(bob, pg.id), 404, 'itemNotFound', `Resource ${pg.id} cannot be found.`);
    assertFault(await get(alice, 'no-such-instance'), 404, 'itemNotFound', 'Resource no-such-instance cannot be found.');
    assert.equal((await get(admin, pg.id)).statusCode, 200);
  });

  test('an engine without databases is 422 before any message reaches its guest', async () => {
    const redis = await guestInstance(h, alice, { manager: 'redis', capabilities: { ...noEngineCapabilities, users: true } });
    try {
      for (const res of [await get(alice, redis.id), await post(alice, redis.id, { databases: [{ name: 'd1' }] }), await del(alice, redis.id, 'd1')]) {
        assertFault(res, 422, 'unprocessableEntity', 'Operation not supported for datastore redis.');
      }
      assert.deepEqual(redis.engine.calls, []);
    } finally {
      await redis.close();
    }
  });

  test('an instance whose datastore is not running is 422 with its status, before any guest call', async () => {
    for (const status of ['BUILDING', 'SHUTDOWN', 'FAILED'] as const) {
      const down = await guestInstance(h, alice, { capabilities: seededCapabilities.postgresql, status });
      try {
        assertFault(await get(alice, down.id), 422, 'unprocessableEntity', new RegExp(`^Instance ${down.id} is not ready, status: ${status}\\. Databases, users and root need operating_status HEALTHY or ACTIVE; the instance shows (BUILD|SHUTDOWN|FAILED)\\.$`));
        assert.deepEqual(down.engine.calls, []);
      } finally {
        await down.close();
      }
    }
    // What reset_status leaves: show gives ACTIVE with operating_status ERROR, and the message says so.
    const reset = await guestInstance(h, alice, { capabilities: seededCapabilities.postgresql, status: 'UNKNOWN' });
    try {
      assertFault(
        await get(alice, reset.id),
        422,
        'unprocessableEntity',
        `Instance ${reset.id} is not ready, status: UNKNOWN. Its status was reset and is known again at the next heartbeat of its guest. ` +
          'Databases, users and root need operating_status HEALTHY or ACTIVE; the instance shows ERROR.',
      );
      const shown = JSON.parse((await h.app.inject({ method: 'GET', url: `/v1.0/${alice.projectId}/instances/${reset.id}`, headers: headers(alice) })).body);
      assert.deepEqual([shown.instance.status, shown.instance.operating_status], ['ACTIVE', 'ERROR']);
    } finally {
      await reset.close();
    }
    const running = await guestInstance(h, alice, { capabilities: seededCapabilities.postgresql, status: 'RUNNING' });
    assert.equal((await get(alice, running.id)).statusCode, 200);
    await running.close();
  });

  test('a guest failure comes back as the same error', async () => {
    const failing = await guestInstance(h, alice, {
      capabilities: seededCapabilities.postgresql,
      handlers: {
        listDatabases: async () => {
          throw new CofferError('GuestError', 'An error occurred communicating with the guest: disk full.');
        },
      },
    });
    try {
      assertFault(await get(alice, failing.id), 400, 'badRequest', 'An error occurred communicating with the guest: disk full.');
    } finally {
      await failing.close();
    }
  });
});

describe('POST /instances against what the version can do', () => {
  const create = (instance: Record<string, unknown>) =>
    h.app.inject({
      method: 'POST',
      url: `/v1.0/${alice.projectId}/instances`,
      headers: headers(alice),
      payload: { instance: { name: 'cache', flavorRef: '1', volume: { size: 1 }, ...instance } },
    });

  test('databases or users on an engine without them are 422 naming what to leave out; access on users-only engines is 400', async () => {
    const redis = await h.store.datastores.ensureDatastore('redis', 'redis-id');
    const none = await h.store.datastores.upsertVersion({
      id: 'redis-none', datastoreId: redis.id, name: '6', version: '6.2', manager: 'redis', active: true, inactiveReason: null, updatedAt: new Date(),
    });
    await h.store.datastores.upsertVersion({
      id: 'redis-acl', datastoreId: redis.id, name: '7', version: '7.2', manager: 'redis', active: true, inactiveReason: null, updatedAt: new Date(),
      capabilities: { ...noEngineCapabilities, users: true },
    });
    const before = (await h.store.instances.list({ limit: 1000 })).items.length;
    assertFault(
      await create({ datastore: { type: 'redis', version: none.name }, databases: [{ name: 'd1' }] }),
      422, 'unprocessableEntity', "The 'create database' operation is not supported for the 'redis' datastore: leave out 'databases'.",
    );
    assertFault(
      await create({ datastore: { type: 'redis', version: '6' }, users: [{ name: 'u1', password: 'pw' }] }),
      422, 'unprocessableEntity', "The 'create user' operation is not supported for the 'redis' datastore: leave out 'users'.",
    );
    assertFault(
      await create({ datastore: { type: 'redis', version: '7' }, users: [{ name: 'u1', password: 'pw', databases: [{ name: 'd1' }] }] }),
      400, 'badRequest', /^Users of the 'redis' datastore cannot be given databases/,
    );
    assert.equal((await h.store.instances.list({ limit: 1000 })).items.length, before);
    assert.equal((await create({ datastore: { type: 'redis', version: '7' }, users: [{ name: 'u1', password: 'pw' }] })).statusCode, 200);
  });
});
