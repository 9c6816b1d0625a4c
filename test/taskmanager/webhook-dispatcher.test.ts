import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { after, before, test } from 'node:test';
import { serviceApiStatus } from '../../src/api/index.js';
import { WebhookTargetGuard, newUuid, silentLogger, type ControlPlaneEndpoint } from '../../src/common/index.js';
import { openStateStore, type StateStore, type WebhookDeliveryRow } from '../../src/db/index.js';
import { InProcessTransport } from '../../src/bus/index.js';
import { WebhookDispatcher, cloudEvent, startTaskmanager, type WebhookDispatcherOptions } from '../../src/taskmanager/index.js';
import { startHarness, type Harness } from '../api/api-harness.js';
import { makeDataDir } from '../support/temp-dir.js';
import { eventually } from '../support/wait.js';

// Webhook delivery against a real HTTP server on loopback (allowed here by the operator's list,
// as --webhook-allowed-cidrs would): signed CloudEvents, retries after failures, redirects not
// followed, no request to Coffer's own API even when a name comes to resolve to it, and two
// taskmanagers on one state database delivering each event once.

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  path: string;
}

/** A receiver that answers each request with the next status of `script` (then the last one). */
class Receiver {
  readonly requests: Received[] = [];
  private readonly server: Server;
  constructor(private script: number[] = [200]) {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), path: req.url ?? '' });
        const status = this.script.length > 1 ? this.script.shift()! : this.script[0]!;
        res.writeHead(status, status >= 300 && status < 400 ? { location: `http://127.0.0.1:${this.port}/elsewhere` } : {}).end('ok');
      });
    });
  }
  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }
  url(path = '/hook'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let dir: Awaited<ReturnType<typeof makeDataDir>>;
let store: StateStore;
let api: Harness;
let apiRequests = 0;
const controlPlane: ControlPlaneEndpoint[] = [];
const receivers: Receiver[] = [];
const names: Record<string, string> = {};
const guard = new WebhookTargetGuard({ allowedCidrs: ['127.0.0.0/8'], instanceCidrs: ['127.77.0.0/16'], controlPlane }, async (host) =>
  names[host] === undefined ? [] : [{ address: names[host]!, family: 4 }],
);

before(async () => {
  dir = await makeDataDir('coffer-hooks');
  store = await openStateStore(`sqlite:${join(dir.path, 'state.sqlite')}`);
  api = await startHarness({ webhookGuard: guard });
  api.app.server.on('request', () => apiRequests++);
  await api.app.listen({ host: '127.0.0.1', port: 0 });
  controlPlane.push({ host: '127.0.0.1', port: (api.app.server.address() as AddressInfo).port });
});
after(async () => {
  for (const r of receivers) await r.close();
  await api.close();
  await store.close();
  await dir.remove();
});

async function receiver(script?: number[]): Promise<Receiver> {
  const r = await new Receiver(script).start();
  receivers.push(r);
  return r;
}

function dispatcher(overrides: Partial<WebhookDispatcherOptions> = {}): WebhookDispatcher {
  return new WebhookDispatcher({
    store,
    logger: silentLogger(),
    guard,
    workerId: `tm-${newUuid().slice(0, 8)}`,
    retryBaseMs: 20,
    timeoutMs: 5_000,
    statusName: (s) => (serviceApiStatus as Record<string, string>)[s] ?? s,
    ...overrides,
  });
}

/** An instance of a fresh project with one hook to `url`; answers both and the hook's secret. */
async function hookedInstance(url: string, on = store) {
  const tenantId = `tenant-${newUuid()}`;
  const instanceId = newUuid();
  const now = new Date();
  await on.instances.create({
    id: instanceId, name: 'orders-db', tenantId, flavorId: '2', volumeSizeGb: 1, datastoreVersionId: newUuid(),
    taskStatus: 'NONE', taskDescription: 'No tasks for the instance.', taskStartTime: null, access: null, createdAt: now, updatedAt: now,
  });
  const webhookId = newUuid();
  const secret = `secret-${newUuid()}`;
  await on.webhooks.create({ id: webhookId, tenantId, url, secret, events: null, createdAt: now });
  return { tenantId, instanceId, webhookId, secret };
}

function verifySignature(r: Received, secret: string): void {
  const timestamp = String(r.headers['x-coffer-timestamp']);
  assert.match(timestamp, /^\d+$/);
  const expected = `sha256=${createHmac('sha256', secret).update(`${timestamp}.${r.body}`).digest('hex')}`;
  assert.equal(r.headers['x-coffer-signature'], expected, 'the HMAC of timestamp.body under the secret');
}

const logOf = async (webhookId: string): Promise<WebhookDeliveryRow[]> => store.webhooks.deliveries(webhookId, 100);

test('an event reaches the hook as a signed CloudEvent, and the log says it was delivered', async () => {
  const r = await receiver([204]);
  const { tenantId, instanceId, webhookId, secret } = await hookedInstance(r.url('/hook?team=db'));
  const before = await hookedInstance(r.url('/unused'));
  await store.instanceEvents.record({ instanceId, type: 'status', name: 'RUNNING', message: null, createdAt: new Date('2026-12-04T16:00:00.123Z') });
  const [event] = await store.instanceEvents.list(instanceId, { limit: 1 });

  await dispatcher().tick();
  assert.equal(r.requests.length, 1);
  const [got] = r.requests;
  assert.equal(got!.path, '/hook?team=db');
  assert.equal(got!.headers['content-type'], 'application/cloudevents+json; charset=utf-8');
  assert.equal(got!.headers['x-coffer-event-id'], event!.id);
  verifySignature(got!, secret);
  assert.notEqual(got!.headers['x-coffer-signature'], `sha256=${createHmac('sha256', before.secret).update(`${String(got!.headers['x-coffer-timestamp'])}.${got!.body}`).digest('hex')}`);
  assert.deepEqual(JSON.parse(got!.body), {
    specversion: '1.0',
    id: event!.id,
    source: `/v1.0/${tenantId}/instances/${instanceId}`,
    type: 'org.coffer.instance.status',
    time: '2026-12-04T16:00:00.123Z',
    subject: instanceId,
    datacontenttype: 'application/json',
    data: { instance_id: instanceId, name: 'orders-db', status: 'ACTIVE', message: null },
  });
  const [delivery] = await logOf(webhookId);
  assert.equal(delivery!.state, 'delivered');
  assert.equal(delivery!.attempts, 1);
  assert.equal(delivery!.lastStatusCode, 204);
  assert.ok(delivery!.deliveredAt !== null);
  assert.deepEqual(await logOf(before.webhookId), [], "another project's hook got nothing");
  await dispatcher().tick();
  assert.equal(r.requests.length, 1, 'delivered once');
});

test('a hook that answers 500 twice gets the event again after a growing delay, and the third attempt delivers it', async () => {
  const r = await receiver([500, 500, 200]);
  const { instanceId, webhookId, secret } = await hookedInstance(r.url());
  await store.instanceEvents.record({ instanceId, type: 'task.failed', name: 'restart', message: 'the engine did not start', createdAt: new Date() });
  const d = dispatcher({ retryBaseMs: 50 });
  await d.tick();
  const [first] = await logOf(webhookId);
  assert.deepEqual([first!.state, first!.attempts, first!.lastStatusCode, first!.lastError], ['pending', 1, 500, 'answered 500']);
  assert.ok(first!.nextAttemptAt.getTime() >= first!.updatedAt.getTime() + 50, 'the retry waits the base delay');
  await d.tick(first!.updatedAt);
  assert.equal(r.requests.length, 1, 'not before its time');

  const delivered = await eventually('the delivery', async () => (await d.tick(), (await logOf(webhookId))[0]!), (x) => x.state !== 'pending');
  assert.deepEqual([delivered.state, delivered.attempts, delivered.lastStatusCode, delivered.lastError], ['delivered', 3, 200, null]);
  assert.equal(r.requests.length, 3);
  assert.equal(new Set(r.requests.map((q) => q.headers['x-coffer-event-id'])).size, 1, 'the same event each time');
  for (const q of r.requests) verifySignature(q, secret);
  assert.deepEqual(JSON.parse(r.requests[2]!.body).data, { instance_id: instanceId, name: 'orders-db', task: 'restart', message: 'the engine did not start' });
});

test('after its last attempt a delivery has failed for good; a redirect counts as a failure and is not followed', async () => {
  const r = await receiver([302]);
  const { instanceId, webhookId } = await hookedInstance(r.url());
  await store.instanceEvents.record({ instanceId, type: 'task.started', name: 'restart', message: null, createdAt: new Date() });
  const d = dispatcher({ maxAttempts: 2, retryBaseMs: 10 });
  const failed = await eventually('the last attempt', async () => (await d.tick(), (await logOf(webhookId))[0]!), (x) => x.state !== 'pending');
  assert.deepEqual([failed.state, failed.attempts, failed.lastStatusCode], ['failed', 2, 302]);
  assert.match(failed.lastError!, /redirects are not followed/);
  assert.deepEqual(r.requests.map((q) => q.path), ['/hook', '/hook'], 'never /elsewhere');
  await d.tick(new Date(Date.now() + 3_600_000));
  assert.equal(r.requests.length, 2, 'no attempt after the last');
});

test("a name that came to resolve to the API's own address gets no request: the attempt is refused and logged", async () => {
  const apiPort = controlPlane[0]!.port;
  names['rebind.example'] = '127.0.0.1';
  const { instanceId, webhookId } = await hookedInstance(`http://rebind.example:${apiPort}/v1.0/x/instances`);
  await store.instanceEvents.record({ instanceId, type: 'status', name: 'RUNNING', message: null, createdAt: new Date() });
  const seen = apiRequests;
  await dispatcher().tick();
  const [refused] = await logOf(webhookId);
  assert.deepEqual([refused!.state, refused!.attempts, refused!.lastStatusCode], ['pending', 1, null]);
  assert.match(refused!.lastError!, /Webhook URL refused: its host rebind\.example resolves to 127\.0\.0\.1/);
  assert.equal(apiRequests, seen, 'the API got no request');
});

test('two taskmanagers on one state database deliver each event exactly once', async () => {
  const r = await receiver([200]);
  const second = await openStateStore(`sqlite:${join(dir.path, 'state.sqlite')}`);
  try {
    const { instanceId, webhookId } = await hookedInstance(r.url());
    for (let n = 0; n < 20; n++) {
      await (n % 2 === 0 ? store : second).instanceEvents.record({ instanceId, type: 'status', name: n % 3 === 0 ? 'RUNNING' : 'SHUTDOWN', message: `event ${n}`, createdAt: new Date() });
    }
    const one = dispatcher({ intervalMs: 5 });
    const two = dispatcher({ intervalMs: 5, store: second });
    one.start();
    two.start();
    try {
      await eventually('every delivery', () => logOf(webhookId), (log) => log.length === 20 && log.every((x) => x.state === 'delivered'));
    } finally {
      await one.stop();
      await two.stop();
    }
    const ids = r.requests.map((q) => String(q.headers['x-coffer-event-id']));
    assert.equal(ids.length, 20);
    assert.equal(new Set(ids).size, 20, 'no event twice');
    assert.ok((await logOf(webhookId)).every((x) => x.attempts === 1));
  } finally {
    await second.close();
  }
});

test('a taskmanager started with webhooks delivers them', async () => {
  const r = await receiver([200]);
  const { instanceId, webhookId, secret } = await hookedInstance(r.url('/tm'));
  const transport = new InProcessTransport();
  const taskmanager = await startTaskmanager({ store, transport, logger: silentLogger(), webhooks: { guard, intervalMs: 10 } });
  try {
    await store.instanceEvents.record({ instanceId, type: 'task.done', name: 'restart', message: null, createdAt: new Date() });
    const [delivered] = await eventually('the delivery', () => logOf(webhookId), (log) => log[0]?.state === 'delivered');
    assert.equal(delivered!.attempts, 1);
    assert.equal(r.requests.length, 1);
    verifySignature(r.requests[0]!, secret);
    assert.equal(JSON.parse(r.requests[0]!.body).type, 'org.coffer.instance.task.done');
  } finally {
    await taskmanager.stop();
    await transport.close();
  }
});

test("the dispatcher's log names the delivery and the receiver's origin, never the secret or the URL's path and query", async () => {
  const r = await receiver([500, 200]);
  const { instanceId, webhookId, secret } = await hookedInstance(r.url('/private-path?token=receiver-token'));
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString('utf8');
      done();
    },
  });
  const d = dispatcher({ logger: pino({ level: 'trace' }, stream), retryBaseMs: 10 });
  await store.instanceEvents.record({ instanceId, type: 'status', name: 'RUNNING', message: null, createdAt: new Date() });
  await eventually('the delivery', async () => (await d.tick(), (await logOf(webhookId))[0]!), (x) => x.state === 'delivered');
  assert.match(text, new RegExp(`"deliveryId":"[^"]+".*"origin":"http://127\\.0\\.0\\.1:${r.port}".*webhook delivery attempt failed`));
  assert.match(text, /webhook delivered/);
  for (const hidden of [secret, 'private-path', 'receiver-token']) assert.ok(!text.includes(hidden), `the log shows ${hidden}`);
});

test('a warning event (a volume filling up) carries the status the instance kept, as a status event does; a task event its task; a backup event its backup; a replication event the primary', () => {
  const delivery = (eventType: string, eventName: string) =>
    ({ eventId: 'e1', tenantId: 'p1', instanceId: 'i1', instanceName: 'orders', eventType, eventName, eventTime: new Date(0), message: 'over 90%' }) as never;
  assert.deepEqual((cloudEvent(delivery('org.coffer.instance.warning', 'HEALTHY'), (s) => `api:${s}`) as { data: unknown }).data, {
    instance_id: 'i1',
    name: 'orders',
    status: 'api:HEALTHY',
    message: 'over 90%',
  });
  assert.deepEqual((cloudEvent(delivery('org.coffer.instance.task.done', 'restart'), (s) => s) as { data: { task?: string } }).data.task, 'restart');
  assert.deepEqual((cloudEvent(delivery('org.coffer.instance.backup.failed', 'b-1'), (s) => s) as { data: unknown }).data, {
    instance_id: 'i1',
    name: 'orders',
    backup_id: 'b-1',
    message: 'over 90%',
  });
  assert.deepEqual((cloudEvent(delivery('org.coffer.instance.replication.failover', 'i2'), (s) => s) as { data: unknown }).data, {
    instance_id: 'i1',
    name: 'orders',
    primary_id: 'i2',
    message: 'over 90%',
  });
});
