// test-lane: parallel (a vhost, a user, a scratch database and a temp directory of its own; port 0)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApiServer } from '../../src/api/index.js';
import { BusKey, connectTransport, type Transport } from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/index.js';
import { openStateStore, type StateStore } from '../../src/db/index.js';
import { CofferMetrics, roleReadiness, startMetricsListener, type MetricsListener } from '../../src/metrics/index.js';
import { makeVhost } from '../support/rabbitmq-vhost.js';
import { scratchPostgresDatabase, type ScratchDatabase } from '../support/server-databases.js';
import { eventually } from '../support/wait.js';
import { value } from './exposition.js';

// /healthz and /readyz over real HTTP, on the API's port and on a role's metrics listener, with
// a real RabbitMQ and real state databases taken away under them: the broker drops the role's
// vhost (as it does when an operator removes it, or the role's user loses its rights), the
// PostgreSQL state database is dropped with its connections, the SQLite one is closed.

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function get(url: string): Promise<Answer> {
  const res = await fetch(url);
  const text = await res.text();
  return { status: res.status, body: res.headers.get('content-type')?.includes('json') === true ? (JSON.parse(text) as Record<string, unknown>) : { text } };
}

describe('the API port', () => {
  let vhost: ReturnType<typeof makeVhost>;
  let database: ScratchDatabase;
  let store: StateStore;
  let transport: Transport;
  let app: FastifyInstance;
  let base: string;

  before(async () => {
    vhost = makeVhost({ ownUser: true });
    database = await scratchPostgresDatabase();
    store = await openStateStore(database.url);
    transport = await connectTransport(vhost.url, { key: BusKey.generate(), reconnectDelayMs: 100 });
    app = await buildApiServer({ store, transport, logger: silentLogger() });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await app.close();
    await transport.close();
    await store.close();
    await database.drop();
    vhost.remove();
  });

  test('/healthz and /readyz answer 200 while the state database and the bus answer', async () => {
    assert.deepEqual(await get(`${base}/healthz`), { status: 200, body: { status: 'alive' } });
    assert.deepEqual(await get(`${base}/readyz`), { status: 200, body: { status: 'ready', checks: { stateDatabase: 'ok', bus: 'ok' } } });
  });

  test('/readyz answers 503 naming the bus while the broker refuses the role, and 200 once it is back', async () => {
    const user = new URL(vhost.url).username;
    execFileSync('rabbitmqctl', ['-q', 'delete_vhost', vhost.name]);
    const down = await eventually('readyz 503', () => get(`${base}/readyz`), (a) => a.status === 503);
    assert.deepEqual(down.body, { status: 'not ready', failing: ['bus'], checks: { stateDatabase: 'ok', bus: 'BusUnavailable' } });
    // alive all the same: a liveness probe must not restart a role for its broker's outage
    assert.equal((await get(`${base}/healthz`)).status, 200);
    assert.doesNotMatch(JSON.stringify(down.body), /amqp|127\.0\.0\.1|coffer-test/, 'no address or name of the broker');
    execFileSync('rabbitmqctl', ['-q', 'add_vhost', vhost.name]);
    execFileSync('rabbitmqctl', ['-q', 'set_permissions', '-p', vhost.name, user, '.*', '.*', '.*']);
    const up = await eventually('readyz 200 again', () => get(`${base}/readyz`), (a) => a.status === 200);
    assert.deepEqual(up.body, { status: 'ready', checks: { stateDatabase: 'ok', bus: 'ok' } });
  });

  test('/readyz answers 503 naming the state database once PostgreSQL has lost it', async () => {
    await database.drop();
    const down = await eventually('readyz 503', () => get(`${base}/readyz`), (a) => a.status === 503);
    assert.deepEqual(down.body, { status: 'not ready', failing: ['stateDatabase'], checks: { stateDatabase: 'Error', bus: 'ok' } });
    assert.equal((await get(`${base}/healthz`)).status, 200);
  });
});

describe('a role\'s metrics listener', () => {
  let dir: string;
  let vhost: ReturnType<typeof makeVhost>;
  let store: StateStore;
  let transport: Transport;
  let listener: MetricsListener;
  const metrics = new CofferMetrics();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coffer-health-'));
    vhost = makeVhost();
    store = await openStateStore(`sqlite:${join(dir, 'state.sqlite')}`);
    transport = await connectTransport(vhost.url, { key: BusKey.generate() });
    listener = await startMetricsListener({
      address: { host: '127.0.0.1', port: 0 },
      metrics,
      readiness: roleReadiness({ stateDatabase: store, bus: transport }),
      logger: silentLogger(),
    });
  });
  after(async () => {
    await listener.close();
    await transport.close();
    await store.close();
    vhost.remove();
    await rm(dir, { recursive: true, force: true });
  });

  test('serves /metrics in Prometheus text format, /healthz and /readyz, and nothing else', async () => {
    assert.match(listener.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${listener.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.ok(value(text, 'process_resident_memory_bytes')! > 0, 'process metrics');
    assert.match(text, /# TYPE coffer_http_request_duration_seconds histogram/);
    assert.deepEqual(await get(`${listener.url}/healthz`), { status: 200, body: { status: 'alive' } });
    assert.deepEqual(await get(`${listener.url}/readyz`), { status: 200, body: { status: 'ready', checks: { stateDatabase: 'ok', bus: 'ok' } } });
    assert.equal((await get(`${listener.url}/v1.0`)).status, 404);
  });

  test('/readyz answers 503 naming the state database once the SQLite store is closed; /metrics still answers', async () => {
    await store.close();
    const down = await eventually('readyz 503', () => get(`${listener.url}/readyz`), (a) => a.status === 503);
    assert.deepEqual(down.body, { status: 'not ready', failing: ['stateDatabase'], checks: { stateDatabase: 'Error', bus: 'ok' } });
    assert.equal((await fetch(`${listener.url}/metrics`)).status, 200);
  });
});
