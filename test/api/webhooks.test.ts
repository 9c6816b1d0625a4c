import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { WebhookTargetGuard, newUuid, type ControlPlaneEndpoint } from '../../src/common/index.js';
import { json, memberSession, startHarness, type Harness, type Session } from './api-harness.js';

// Coffer's webhooks API over HTTP (issue 12): the secret is answered once, at creation; URLs are
// checked at the edge (scheme, credentials, where the host resolves, Coffer's own API address);
// another project's hook is 404; the delivery log shows what is on its way.

let h: Harness;
let alice: Session;
let mallory: Session;
let apiPort: number;
const controlPlane: ControlPlaneEndpoint[] = [];
const names: Record<string, string[]> = { 'hooks.example': ['192.0.2.10'], 'sneaky.example': ['192.0.2.11', '169.254.169.254'] };

before(async () => {
  const guard = new WebhookTargetGuard(
    { allowedCidrs: ['127.0.0.0/8', '192.0.2.0/24'], instanceCidrs: ['127.77.0.0/16'], controlPlane },
    async (host) => (names[host] ?? []).map((address) => ({ address, family: 4 })),
  );
  h = await startHarness({ webhookGuard: guard });
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  apiPort = (h.app.server.address() as AddressInfo).port;
  controlPlane.push({ host: '127.0.0.1', port: apiPort });
  alice = await memberSession(h, 'alice');
  mallory = await memberSession(h, 'mallory');
});
after(() => h.close());

const headers = (s: Session) => ({ 'x-auth-token': s.token, host: 'db.example' });
const send = (s: Session, method: 'GET' | 'POST' | 'DELETE', path: string, payload?: object) =>
  h.app.inject({ method, url: `/v1.0/${s.projectId}${path}`, headers: headers(s), ...(payload === undefined ? {} : { payload }) });

test('POST answers the generated secret once; GET, the list and the stored row keep it out of every later answer', async () => {
  const created = await send(alice, 'POST', '/webhooks', { webhook: { url: 'https://hooks.example/coffer?team=db' } });
  assert.equal(created.statusCode, 202, created.body);
  const hook = json(created).webhook;
  assert.deepEqual(Object.keys(hook).sort(), ['created', 'events', 'id', 'secret', 'url']);
  assert.equal(hook.url, 'https://hooks.example/coffer?team=db');
  assert.equal(hook.events, null);
  assert.match(hook.secret, /^[A-Za-z0-9_-]{43}$/, '32 random bytes');
  assert.equal((await h.store.webhooks.get(hook.id))!.secret, hook.secret, 'kept to sign with');

  const shown = await send(alice, 'GET', `/webhooks/${hook.id}`);
  assert.equal(shown.statusCode, 200);
  assert.deepEqual(json(shown), { webhook: { id: hook.id, url: hook.url, events: null, created: hook.created } });
  const listed = await send(alice, 'GET', '/webhooks');
  assert.ok(!listed.body.includes(hook.secret));
  assert.deepEqual(json(listed).webhooks.map((w: { id: string }) => w.id), [hook.id]);

  const own = await send(alice, 'POST', '/webhooks', {
    webhook: { url: 'http://192.0.2.20:8080/in', secret: 'a-secret-of-my-own-1234', events: ['org.coffer.instance.status', 'org.coffer.instance.task.failed'] },
  });
  assert.equal(own.statusCode, 202, own.body);
  assert.equal(json(own).webhook.secret, 'a-secret-of-my-own-1234');
  assert.deepEqual(json(own).webhook.events, ['org.coffer.instance.status', 'org.coffer.instance.task.failed']);
  assert.ok(!(await send(alice, 'GET', `/webhooks/${json(own).webhook.id}`)).body.includes('a-secret-of-my-own'));
});

test('malformed bodies and URLs are 400 in Trove\'s shape, and nothing is stored', async () => {
  const before = (await h.store.webhooks.list(alice.projectId)).length;
  const cases: Array<[object, RegExp]> = [
    [{}, /'webhook' is a required property/],
    [{ webhook: {} }, /'url' is a required property/],
    [{ webhook: { url: 'ftp://192.0.2.10/x' } }, /only http and https/],
    [{ webhook: { url: '/relative' } }, /not an absolute URL/],
    [{ webhook: { url: 'http://user:pw@192.0.2.10/x' } }, /user name or password/],
    [{ webhook: { url: 'http://192.0.2.10/x', secret: 'short' } }, /secret/],
    [{ webhook: { url: 'http://192.0.2.10/x', events: ['org.coffer.instance.exploded'] } }, /events/],
    [{ webhook: { url: 'http://192.0.2.10/x', events: [] } }, /events/],
    [{ webhook: { url: 'http://192.0.2.10/x', extra: 1 } }, /extra|Unrecognized/i],
    [{ webhook: { url: 'http://nowhere.example/x' } }, /does not resolve/],
    // a name one of whose addresses is refused: the client could be handed that one
    [{ webhook: { url: 'http://sneaky.example/x' } }, /169\.254\.169\.254/],
    [{ webhook: { url: 'http://0.0.0.0:9/x' } }, /may not reach/],
    [{ webhook: { url: 'http://127.77.0.12:5432/' } }, /may not reach/],
    [{ webhook: { url: 'http://[::ffff:127.77.0.12]:5432/' } }, /may not reach/],
    [{ webhook: { url: 'http://10.0.0.1/x' } }, /may not reach/],
  ];
  for (const [payload, message] of cases) {
    const res = await send(alice, 'POST', '/webhooks', payload);
    assert.equal(res.statusCode, 400, `${JSON.stringify(payload)}: ${res.body}`);
    assert.equal(json(res).badRequest.code, 400);
    assert.match(json(res).badRequest.message, message, JSON.stringify(payload));
  }
  assert.equal((await h.store.webhooks.list(alice.projectId)).length, before);
});

test("the API's own address is refused, another port of the same host is not", async () => {
  const own = await send(alice, 'POST', '/webhooks', { webhook: { url: `http://127.0.0.1:${apiPort}/v1.0/${alice.projectId}/instances` } });
  assert.equal(own.statusCode, 400, own.body);
  assert.match(json(own).badRequest.message, /Coffer's own services/);
  const other = await send(alice, 'POST', '/webhooks', { webhook: { url: `http://127.0.0.1:${apiPort === 65535 ? 65534 : apiPort + 1}/hook` } });
  assert.equal(other.statusCode, 202, other.body);
});

test("another project's hook is 404 to show, delete and read the log of, and missing from its list", async () => {
  const hook = json(await send(alice, 'POST', '/webhooks', { webhook: { url: 'https://hooks.example/a' } })).webhook;
  for (const [method, path] of [
    ['GET', `/webhooks/${hook.id}`],
    ['DELETE', `/webhooks/${hook.id}`],
    ['GET', `/webhooks/${hook.id}/deliveries`],
  ] as const) {
    const res = await send(mallory, method, path);
    assert.equal(res.statusCode, 404, `${method} ${path}`);
    assert.match(json(res).itemNotFound.message, new RegExp(`Webhook ${hook.id} cannot be found`));
  }
  assert.deepEqual(json(await send(mallory, 'GET', '/webhooks')).webhooks, []);
  assert.ok((await h.store.webhooks.get(hook.id)) !== undefined, 'still there');
  const deleted = await send(alice, 'DELETE', `/webhooks/${hook.id}`);
  assert.equal(deleted.statusCode, 202);
  assert.equal((await send(alice, 'GET', `/webhooks/${hook.id}`)).statusCode, 404);
  assert.equal((await send(alice, 'DELETE', `/webhooks/${hook.id}`)).statusCode, 404);
});

test('the delivery log shows an event on its way; a project has at most 10 hooks', async () => {
  const carol = await memberSession(h, 'carol');
  const hook = json(await send(carol, 'POST', '/webhooks', { webhook: { url: 'https://hooks.example/log', events: ['org.coffer.instance.task.started'] } })).webhook;
  const instanceId = newUuid();
  const now = new Date();
  await h.store.instances.create({
    id: instanceId, name: 'logged', tenantId: carol.projectId, flavorId: '2', volumeSizeGb: 1, datastoreVersionId: newUuid(),
    taskStatus: 'NONE', taskDescription: 'No tasks for the instance.', taskStartTime: null, access: null, createdAt: now, updatedAt: now,
  });
  await h.store.instanceEvents.record({ instanceId, type: 'status', name: 'RUNNING', message: null, createdAt: now });
  await h.store.instanceEvents.record({ instanceId, type: 'task.started', name: 'restart', message: null, createdAt: now });
  const [event] = await h.store.instanceEvents.list(instanceId, { limit: 1 });
  const log = await send(carol, 'GET', `/webhooks/${hook.id}/deliveries`);
  assert.equal(log.statusCode, 200, log.body);
  const [delivery] = json(log).deliveries;
  assert.equal(json(log).deliveries.length, 1, 'the status event is not one it takes');
  assert.deepEqual({ ...delivery, id: undefined, created: undefined, updated: undefined, next_attempt: undefined }, {
    id: undefined, event_id: event!.id, type: 'org.coffer.instance.task.started', instance_id: instanceId, state: 'pending', attempts: 0,
    last_status_code: null, last_error: null, created: undefined, updated: undefined, delivered: null, next_attempt: undefined,
  });
  assert.match(delivery.next_attempt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);

  for (let n = 1; n < 10; n++) assert.equal((await send(carol, 'POST', '/webhooks', { webhook: { url: `https://hooks.example/${n}` } })).statusCode, 202);
  const eleventh = await send(carol, 'POST', '/webhooks', { webhook: { url: 'https://hooks.example/11' } });
  assert.equal(eleventh.statusCode, 413, eleventh.body);
  assert.match(json(eleventh).overLimit.message, /at most 10 webhooks/);
});
