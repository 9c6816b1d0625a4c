import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { noEngineCapabilities } from '../../src/common/index.js';
import { json, memberSession, seededCapabilities, startHarness, type Harness, type Session } from './api-harness.js';
import { guestInstance, type GuestInstance } from './guest-instance.js';

let h: Harness;
let alice: Session;
let bob: Session;
let pg: GuestInstance;

before(async () => {
  h = await startHarness();
  alice = await memberSession(h, 'alice');
  bob = await memberSession(h, 'bob');
  pg = await guestInstance(h, alice, { capabilities: seededCapabilities.postgresql });
});
after(async () => {
  await pg.close();
  await h.close();
});

const url = (id: string, s: Session = alice) => `/v1.0/${s.projectId}/instances/${id}/root`;
function send(method: 'GET' | 'POST' | 'DELETE', id: string, payload?: unknown, s: Session = alice) {
  return h.app.inject({ method, url: url(id, s), headers: { 'x-auth-token': s.token }, ...(payload === undefined ? {} : { payload: payload as object }) });
}

function assertFault(res: { statusCode: number; body: string }, status: number, fault: string, message: string): void {
  assert.equal(res.statusCode, status, res.body);
  assert.deepEqual(JSON.parse(res.body), { [fault]: { code: status, message } });
}

test('root: never enabled, enabled with a generated password, disabled, and still reported as once enabled', async () => {
  assert.deepEqual(json(await send('GET', pg.id)), { rootEnabled: false });
  assertFault(await send('DELETE', pg.id), 404, 'itemNotFound', 'Root user has never been enabled on the instance.');
  assert.deepEqual(pg.engine.calls, []);

  const enabled = await send('POST', pg.id);
  assert.equal(enabled.statusCode, 200, enabled.body);
  const { user } = json(enabled);
  assert.equal(user.name, 'root');
  assert.match(user.password, /^[A-Za-z0-9]{36}$/);
  assert.equal(pg.engine.rootPassword, user.password);
  assert.notEqual(json(await send('POST', pg.id)).user.password, user.password);
  assert.deepEqual(json(await send('GET', pg.id)), { rootEnabled: true });
  assert.equal((await h.store.rootHistory.get(pg.id))?.userId, alice.userId);

  const disabled = await send('DELETE', pg.id);
  assert.equal(disabled.statusCode, 204);
  assert.equal(disabled.body, '');
  assert.equal(pg.engine.rootPassword, undefined);
  assert.deepEqual(json(await send('GET', pg.id)), { rootEnabled: true });
});

test('root enable takes the password given, and refuses one the engine could not be handed safely without quoting it', async () => {
  const other = await guestInstance(h, alice, { capabilities: seededCapabilities.postgresql });
  try {
    const res = await send('POST', other.id, { password: 'Chosen-Pass_123' });
    assert.deepEqual(json(res), { user: { name: 'root', password: 'Chosen-Pass_123' } });
    assert.equal(other.engine.rootPassword, 'Chosen-Pass_123');
    const bad = await send('POST', other.id, { password: "it's" });
    assertFault(bad, 400, 'badRequest', "The password of user 'root' is not a valid password.");
    assertFault(await send('POST', other.id, { password: 7 }), 400, 'badRequest', 'Validation error: password Invalid input: expected string, received number');
  } finally {
    await other.close();
  }
});

test('root on an engine without it is 422 on every route, before any guest call; not ready is 422; others\' instances 404', async () => {
  const bare = await guestInstance(h, alice, { manager: 'redis', capabilities: { ...noEngineCapabilities, users: true } });
  const building = await guestInstance(h, alice, { capabilities: seededCapabilities.postgresql, status: 'BUILDING' });
  try {
    for (const method of ['GET', 'POST', 'DELETE'] as const) {
      assertFault(await send(method, bare.id), 422, 'unprocessableEntity', 'Operation not supported for datastore redis.');
      assertFault(await send(method, building.id), 422, 'unprocessableEntity', `Instance ${building.id} is not ready, status: BUILDING. Databases, users and root need operating_status HEALTHY or ACTIVE; the instance shows BUILD.`);
    }
    assert.deepEqual([...bare.engine.calls, ...building.engine.calls], []);
    assertFault(await send('GET', pg.id, undefined, bob), 404, 'itemNotFound', `Resource ${pg.id} cannot be found.`);
  } finally {
    await bare.close();
    await building.close();
  }
});
