import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  conductorContract,
  conductorTopic,
  createRpcClient,
  defineService,
  call,
  cast,
  InProcessTransport,
  ObservedTransport,
  serveRpc,
} from '../../src/bus/index.js';
import { CofferError, newUuid, silentLogger } from '../../src/common/index.js';
import { startConductor } from '../../src/conductor/index.js';
import { openStateStore, type StateStore } from '../../src/db/index.js';
import { CofferMetrics, metricNames, parseListenAddress } from '../../src/metrics/index.js';
import { TaskRunner, type Flow } from '../../src/taskmanager/task-runner.js';
import { adminSession, seedDatastores, startHarness, type Harness } from '../api/api-harness.js';
import { eventually } from '../support/wait.js';
import { parseExposition, series, value } from './exposition.js';
import { z } from 'zod';

// What each role exports to Prometheus, by name and label, through the real parts that record
// it (the API's routes, the bus, the task runner, the conductor's state database). Label values
// must come from small sets: route patterns, contract methods, task kinds, live instances.

describe('API requests', () => {
  let h: Harness;
  const metrics = new CofferMetrics({ processMetrics: false });
  before(async () => {
    h = await startHarness({ requestObserver: metrics });
  });
  after(() => h.close());

  test('are counted and timed by method, route pattern and status, never by the URL', async () => {
    const admin = await adminSession(h.app);
    const auth = { 'x-auth-token': admin.token };
    for (let i = 0; i < 3; i++) {
      assert.equal((await h.app.inject({ method: 'GET', url: `/v1.0/${admin.projectId}/flavors`, headers: auth })).statusCode, 200);
    }
    const missing = newUuid();
    assert.equal((await h.app.inject({ method: 'GET', url: `/v1.0/${admin.projectId}/instances/${missing}`, headers: auth })).statusCode, 404);
    assert.equal((await h.app.inject({ method: 'GET', url: `/no/such/${missing}` })).statusCode, 404);
    assert.equal((await h.app.inject({ method: 'GET', url: `/v1.0/${admin.projectId}/flavors` })).statusCode, 401);

    const text = await metrics.render();
    const count = `${metricNames.httpRequest}_count`;
    assert.equal(value(text, count, { method: 'GET', route: '/v1.0/:tenantId/flavors', status: '200' }), 3);
    assert.equal(value(text, count, { method: 'GET', route: '/v1.0/:tenantId/flavors', status: '401' }), 1);
    assert.equal(value(text, count, { method: 'GET', route: '/v1.0/:tenantId/instances/:instanceId', status: '404' }), 1);
    assert.equal(value(text, count, { method: 'GET', route: 'unmatched', status: '404' }), 1);
    assert.equal(value(text, count, { method: 'POST', route: '/identity/v3/auth/tokens', status: '201' }), 1);
    // the histogram's buckets are cumulative and end with +Inf, which holds every request
    assert.equal(value(text, `${metricNames.httpRequest}_bucket`, { route: '/v1.0/:tenantId/flavors', status: '200', le: '+Inf' }), 3);
    assert.ok(value(text, `${metricNames.httpRequest}_sum`, { route: '/v1.0/:tenantId/flavors', status: '200' })! > 0);
    // no id, project or token ever becomes a label value
    for (const secret of [missing, admin.projectId, admin.token]) assert.ok(!text.includes(secret), `${secret} leaked into the metrics`);
    const labelNames = new Set(series(text, count).flatMap((s) => Object.keys(s.labels)));
    assert.deepEqual([...labelNames].sort(), ['method', 'route', 'status']);
  });

  test("the API's own port answers /healthz and /readyz without a token, and does not serve /metrics", async () => {
    const health = await h.app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(health.statusCode, 200);
    assert.deepEqual(JSON.parse(health.body), { status: 'alive' });
    const ready = await h.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 200, ready.body);
    assert.deepEqual(JSON.parse(ready.body), { status: 'ready', checks: { stateDatabase: 'ok', bus: 'ok' } });
    const scraped = await h.app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(scraped.statusCode, 404);
    assert.doesNotMatch(scraped.body, /coffer_/);
  });
});

describe('bus calls', () => {
  const probe = defineService('probe', '1.0', {
    echo: call(z.object({ n: z.number() }), z.object({ n: z.number() }), 5_000),
    fail: call(z.object({}), z.object({}), 5_000),
    note: cast(z.object({ n: z.number() })),
  });

  test('are timed by contract service, method, call or cast, and outcome; never by topic', async () => {
    const metrics = new CofferMetrics({ processMetrics: false });
    const inner = new InProcessTransport();
    const transport = new ObservedTransport(inner, metrics);
    const topic = `probe.${newUuid()}`;
    const served = await serveRpc(inner, probe, topic, {
      echo: async ({ n }) => ({ n }),
      fail: async () => {
        throw new CofferError('Conflict', 'no');
      },
      note: async () => undefined,
    });
    try {
      const client = createRpcClient(transport, probe, topic);
      assert.deepEqual(await client.echo({ n: 1 }), { n: 1 });
      assert.deepEqual(await client.echo({ n: 2 }), { n: 2 });
      await assert.rejects(client.fail({}), { code: 'Conflict' });
      await client.note({ n: 3 });
      // nobody consumes this topic: the call waits out its timeout
      const lonely = createRpcClient(transport, probe, `probe.${newUuid()}`, { timeoutMs: 50 });
      await assert.rejects(lonely.echo({ n: 4 }), { code: 'BusTimeout' });
      await transport.close();
      await assert.rejects(client.echo({ n: 5 }), { code: 'BusUnavailable' });
    } finally {
      await served.close();
      await transport.close();
    }
    const text = await metrics.render();
    const count = `${metricNames.busCall}_count`;
    assert.equal(value(text, count, { service: 'probe', method: 'echo', type: 'call', outcome: 'ok' }), 2);
    assert.equal(value(text, count, { service: 'probe', method: 'fail', type: 'call', outcome: 'error' }), 1);
    assert.equal(value(text, count, { service: 'probe', method: 'note', type: 'cast', outcome: 'ok' }), 1);
    assert.equal(value(text, count, { service: 'probe', method: 'echo', type: 'call', outcome: 'timeout' }), 1);
    assert.equal(value(text, count, { service: 'probe', method: 'echo', type: 'call', outcome: 'unavailable' }), 1);
    assert.ok(!text.includes(topic), 'the topic is not a label');
    assert.ok(value(text, `${metricNames.busCall}_sum`, { method: 'fail' })! > 0);
  });
});

describe('task runs', () => {
  let store: StateStore;
  before(async () => {
    store = await openStateStore('sqlite::memory:');
  });
  after(() => store.close());

  test('are timed by kind and outcome', async () => {
    const metrics = new CofferMetrics({ processMetrics: false });
    const noop: Flow = async () => undefined;
    const failing: Flow = async () => {
      throw new Error('engine refused');
    };
    const runner = new TaskRunner({
      store,
      logger: silentLogger(),
      workerId: 'w',
      leaseMs: 5_000,
      sweepIntervalMs: 60_000,
      observer: metrics,
      flows: { create_instance: noop, delete_instance: noop, restart: failing, resize_flavor: noop, resize_volume: noop, update_access: noop, detach_replica: noop, promote_to_replica_source: noop, eject_replica_source: noop, rejoin_replica: noop, apply_configuration: noop, create_backup: noop, delete_backup: noop, import_backup: noop, verify_backup: noop, stop: noop, start: noop, upgrade: noop },
    });
    const now = new Date();
    const task = (id: string, kind: 'create_instance' | 'restart') => ({
      id,
      instanceId: `i-${id}`,
      kind,
      step: 'start',
      state: 'pending' as const,
      owner: null,
      leaseExpiresAt: null,
      payload: {},
      attempts: 0,
      createdAt: now,
      updatedAt: now,
    });
    for (const [id, kind] of [['t1', 'create_instance'], ['t2', 'create_instance'], ['t3', 'restart']] as const) {
      await store.tasks.create(task(id, kind));
      await runner.trigger(id);
    }
    try {
      const count = `${metricNames.task}_count`;
      const text = await eventually(
        'three task runs recorded',
        () => metrics.render(),
        (t) => series(t, count).reduce((sum, s) => sum + s.value, 0) === 3,
      );
      assert.equal(value(text, count, { kind: 'create_instance', outcome: 'done' }), 2);
      assert.equal(value(text, count, { kind: 'restart', outcome: 'failed' }), 1);
    } finally {
      await runner.stop();
    }
  });
});

describe('heartbeat age', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test("one series per live instance, labelled with its project and datastore, from the conductor's state database; gone once deleted", async () => {
    const seeded = await seedDatastores(h.store);
    const conductor = await startConductor({ store: h.store, transport: h.transport, logger: silentLogger() });
    let clock = Date.now();
    const metrics = new CofferMetrics({ processMetrics: false, now: () => clock });
    metrics.watchHeartbeats(() => conductor.heartbeats());
    const made = new Date();
    const ids = [newUuid(), newUuid()];
    for (const [n, id] of ids.entries()) {
      await h.store.instances.create({
        id,
        name: `hb-${n}`,
        tenantId: `project-${n}`,
        flavorId: '1',
        volumeSizeGb: 1,
        datastoreVersionId: seeded.activeVersionId,
        taskStatus: 'NONE',
        taskDescription: '',
        taskStartTime: null,
        access: null,
        createdAt: made,
        updatedAt: made,
      });
    }
    try {
      const guest = createRpcClient(h.transport, conductorContract, conductorTopic);
      const before = Date.now();
      for (const id of ids) await guest.heartbeat({ instanceId: id, status: 'HEALTHY' });
      const [first] = await eventually('both heartbeats recorded', () => conductor.heartbeats(), (beats) => beats.length === 2);
      const sentAt = first!.sentAt;
      assert.ok(sentAt >= before && sentAt <= Date.now(), 'the guest\'s send time');
      clock = sentAt + 42_500;
      let text = await metrics.render();
      const name = metricNames.heartbeatAge;
      assert.equal(series(text, name).length, 2);
      const age = value(text, name, { instance_id: first!.instanceId });
      assert.equal(age, 42.5);
      const labels = series(text, name, { instance_id: ids[1]! })[0]!.labels;
      assert.deepEqual(labels, { instance_id: ids[1], project_id: 'project-1', datastore: 'postgresql' });

      await h.store.instances.markDeleted(ids[0]!, new Date());
      text = await metrics.render();
      assert.deepEqual(series(text, name).map((s) => s.labels['instance_id']), [ids[1]]);
    } finally {
      await conductor.stop();
    }
  });
});

describe('engine metrics', () => {
  test("each live instance's engine measures as gauges labelled like its heartbeat age; up follows the status; a measure the engine lacks has no series", async () => {
    const metrics = new CofferMetrics({ processMetrics: false });
    const measuredAt = new Date();
    let reads = 0;
    metrics.watchHeartbeats(async () => {
      reads += 1;
      return [
        {
          instanceId: 'i-pg',
          tenantId: 'p1',
          datastore: 'postgresql',
          sentAt: Date.now(),
          status: 'HEALTHY',
          engineMetrics: { values: { connections: 4, databaseBytes: 8_000_000, operations: 1234, cacheHitRatio: 0.99, replicationLagSeconds: 0.5 }, measuredAt },
        },
        { instanceId: 'i-redis', tenantId: 'p2', datastore: 'redis', sentAt: Date.now(), status: 'HEALTHY', engineMetrics: { values: { connections: 0, databaseBytes: 10, operations: 7 }, measuredAt } },
        { instanceId: 'i-down', tenantId: 'p2', datastore: 'mariadb', sentAt: Date.now(), status: 'SHUTDOWN' },
      ];
    });
    const text = await metrics.render();
    assert.equal(reads, 1, 'one read of the state DB per scrape');
    assert.equal(value(text, metricNames.instanceUp, { instance_id: 'i-pg' }), 1);
    assert.equal(value(text, metricNames.instanceUp, { instance_id: 'i-down' }), 0);
    assert.deepEqual(series(text, metricNames.instanceConnections, { instance_id: 'i-pg' })[0]!.labels, { instance_id: 'i-pg', project_id: 'p1', datastore: 'postgresql' });
    assert.equal(value(text, metricNames.instanceConnections, { instance_id: 'i-pg' }), 4);
    assert.equal(value(text, metricNames.instanceDatabaseBytes, { instance_id: 'i-pg' }), 8_000_000);
    assert.equal(value(text, metricNames.instanceOperations, { instance_id: 'i-redis' }), 7);
    assert.equal(value(text, metricNames.instanceCacheHitRatio, { instance_id: 'i-pg' }), 0.99);
    assert.equal(value(text, metricNames.instanceReplicationLag, { instance_id: 'i-pg' }), 0.5);
    assert.deepEqual(series(text, metricNames.instanceCacheHitRatio).map((s) => s.labels['instance_id']), ['i-pg']);
    assert.deepEqual(series(text, metricNames.instanceConnections).map((s) => s.labels['instance_id']).sort(), ['i-pg', 'i-redis']);
  });
});

describe('warm pool and process', () => {
  test("an agent's warm pool is one gauge per kind, read at each scrape", async () => {
    const metrics = new CofferMetrics({ processMetrics: false });
    let pool: Record<string, number> = { 'postgresql-15': 2 };
    metrics.watchWarmPool('host-a', async () => pool);
    let text = await metrics.render();
    assert.equal(value(text, metricNames.warmPool, { host: 'host-a', kind: 'postgresql-15' }), 2);
    pool = { 'postgresql-15': 1, 'postgresql-16': 0 };
    text = await metrics.render();
    assert.equal(value(text, metricNames.warmPool, { host: 'host-a', kind: 'postgresql-15' }), 1);
    assert.equal(value(text, metricNames.warmPool, { host: 'host-a', kind: 'postgresql-16' }), 0);
  });

  test("an agent's instances not yet re-adopted are one gauge per host, read at each scrape", async () => {
    const metrics = new CofferMetrics({ processMetrics: false });
    let adopting = 3;
    metrics.watchAdoption('host-a', () => adopting);
    assert.equal(value(await metrics.render(), metricNames.adopting, { host: 'host-a' }), 3);
    adopting = 0;
    assert.equal(value(await metrics.render(), metricNames.adopting, { host: 'host-a' }), 0);
  });

  test('a source that fails leaves its family empty instead of failing the scrape', async () => {
    const metrics = new CofferMetrics({ processMetrics: false });
    metrics.watchHeartbeats(async () => {
      throw new Error('state database gone');
    });
    metrics.watchWarmPool('host-a', async () => {
      throw new Error('pool directory gone');
    });
    const text = await metrics.render();
    assert.deepEqual(series(text, metricNames.heartbeatAge), []);
    assert.deepEqual(series(text, metricNames.warmPool), []);
    assert.match(text, new RegExp(`# TYPE ${metricNames.heartbeatAge} gauge`));
  });

  test("Node's process metrics are there by default, and every family has help and a type", async () => {
    const text = await new CofferMetrics().render();
    assert.ok(value(text, 'process_resident_memory_bytes')! > 0);
    for (const name of Object.values(metricNames)) {
      assert.match(text, new RegExp(`# HELP ${name} \\S`));
      assert.match(text, new RegExp(`# TYPE ${name} (histogram|gauge)`));
    }
    assert.ok(parseExposition(text).length > 10);
  });
});

describe('--metrics-address', () => {
  test('takes host:port, [v6]:port and :port (loopback)', () => {
    assert.deepEqual(parseListenAddress('127.0.0.1:9180'), { host: '127.0.0.1', port: 9180 });
    assert.deepEqual(parseListenAddress('0.0.0.0:0'), { host: '0.0.0.0', port: 0 });
    assert.deepEqual(parseListenAddress('[::1]:9180'), { host: '::1', port: 9180 });
    assert.deepEqual(parseListenAddress(':9180'), { host: '127.0.0.1', port: 9180 });
    assert.deepEqual(parseListenAddress('metrics.internal:9180'), { host: 'metrics.internal', port: 9180 });
  });

  test('refuses what is not one, saying what it wants', () => {
    for (const bad of ['9180', '127.0.0.1', '127.0.0.1:70000', '::1:9180', 'a b:1', '127.0.0.1:x', '']) {
      assert.throws(() => parseListenAddress(bad), (err: CofferError) => err.code === 'BadRequest' && /host:port/.test(err.message), bad);
    }
  });
});
