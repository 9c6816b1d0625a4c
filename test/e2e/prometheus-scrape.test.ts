// test-lane: parallel (coffer serve on a random loopback range, ports and a data directory of its own, and a Prometheus with its own port and storage; it checks processes of its own instance only)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request, trove, type Session } from '../support/api-client.js';
import { freePort } from '../support/coffer-process.js';
import { startPrometheus, type PrometheusServer } from '../support/prometheus-server.js';
import { eventually } from '../support/wait.js';
import { randomPool } from '../guest/engine-fixture.js';
import { createInstance, deleteAndVerifyGone, waitActive } from './instance-lifecycle.js';
import { startServe, type ServeRun } from './serve-run.js';

// A real Prometheus (Debian's package) scrapes a running `coffer serve` on its --metrics-address
// and answers PromQL over its HTTP API for what Coffer exported: API requests by route, the
// create task, the guest's heartbeats over the bus, and the heartbeat age and engine metrics of a
// real PostgreSQL instance (also read through the API), which leave the scrape once the instance
// is deleted.

const adminPassword = 'Prom-admin-pass-1234';
let run: ServeRun;
let session: Session;
let prometheus: PrometheusServer;
let metricsTarget: string;

before(async () => {
  metricsTarget = `127.0.0.1:${await freePort()}`;
  run = await startServe('coffer-e2e-prom', adminPassword, ['--address-pool', randomPool(), '--metrics-address', metricsTarget, '--warm-pool-size', '1']);
  session = run.session;
  prometheus = await startPrometheus([metricsTarget]);
});

after(async () => {
  await prometheus?.stop();
  await run?.stop();
});

/** The single value of `promql` once Prometheus' answer satisfies `ok`. */
async function scalar(promql: string, ok: (value: number) => boolean): Promise<number> {
  const samples = await eventually(
    `Prometheus to answer ${promql}`,
    () => prometheus.query(promql),
    (result) => result.length === 1 && ok(Number(result[0]!.value[1])),
    60_000,
  );
  return Number(samples[0]!.value[1]);
}

test('serve says where its metrics are, and its API port keeps them to itself', async () => {
  assert.match(run.serve.output(), new RegExp(`Metrics for Prometheus: http://${metricsTarget.replaceAll('.', '\\.')}/metrics`));
  assert.equal((await fetch(`${run.baseUrl}/metrics`)).status, 404);
  assert.equal((await fetch(`${run.baseUrl}/readyz`)).status, 200);
  assert.equal((await fetch(`http://${metricsTarget}/readyz`)).status, 200);
});

test('Prometheus scrapes Coffer and answers for request counts, the create task, bus casts and a live instance\'s heartbeat age', async () => {
  assert.equal(await scalar(`up{job="coffer",instance="${metricsTarget}"}`, (v) => v === 1), 1);

  for (let i = 0; i < 4; i++) {
    const res = await request('GET', trove(session, '/flavors'), { token: session.token });
    assert.equal(res.status, 200);
  }
  const flavors = `sum(coffer_http_request_duration_seconds_count{method="GET",route="/v1.0/:tenantId/flavors",status="200"})`;
  assert.equal(await scalar(flavors, (v) => v === 4), 4);

  const created = await createInstance(session, 'e2e-prom');
  await waitActive(session, created.id);
  assert.equal(await scalar(`sum(coffer_task_duration_seconds_count{kind="create_instance",outcome="done"})`, (v) => v === 1), 1);
  const heartbeats = await scalar(`sum(coffer_bus_call_duration_seconds_count{service="conductor",method="heartbeat",type="cast",outcome="ok"})`, (v) => v > 0);
  assert.ok(heartbeats >= 1);

  const age = `coffer_instance_heartbeat_age_seconds{instance_id="${created.id}"}`;
  const [sample] = await eventually(`Prometheus to have ${age}`, () => prometheus.query(age), (r) => r.length === 1, 60_000);
  assert.equal(sample!.metric['project_id'], session.projectId);
  assert.equal(sample!.metric['datastore'], 'postgresql');
  assert.equal(sample!.metric['job'], 'coffer');
  const seconds = Number(sample!.value[1]);
  assert.ok(Number.isFinite(seconds) && seconds >= 0, `heartbeat age ${sample!.value[1]}`);

  // what the guest measured of its engine: through Prometheus, and through the API to its project
  assert.equal(await scalar(`coffer_instance_up{instance_id="${created.id}"}`, (v) => v === 1), 1);
  const bytes = await scalar(`coffer_instance_database_bytes{instance_id="${created.id}",project_id="${session.projectId}",datastore="postgresql"}`, (v) => v > 0);
  const operations = await scalar(`coffer_instance_operations_total{instance_id="${created.id}"}`, (v) => v >= 0);
  const own = await request('GET', trove(session, `/instances/${created.id}/metrics`), { token: session.token });
  assert.equal(own.status, 200);
  const metrics = (own.body as { metrics: Record<string, unknown> }).metrics;
  assert.equal(metrics['instance_id'], created.id);
  assert.equal(metrics['up'], true);
  assert.equal(metrics['operating_status'], 'HEALTHY');
  assert.equal(typeof metrics['measured'], 'string');
  assert.ok(Number(metrics['database_bytes']) > 0 && Number(metrics['operations_total']) >= 0, JSON.stringify(metrics));
  assert.ok(Number(metrics['cache_hit_ratio']) >= 0 && Number(metrics['cache_hit_ratio']) <= 1, JSON.stringify(metrics));
  assert.ok(bytes > 0 && operations >= 0);

  const pool = await eventually('the warm pool gauge', () => prometheus.query('coffer_agent_warm_pool_clusters{host="local"}'), (r) => r.length > 0, 60_000);
  assert.ok(pool.every((s) => /^[a-z]+-[0-9.]+$/.test(s.metric['kind']!)), JSON.stringify(pool));

  // deleted: its series leaves the next scrape, and Prometheus marks it stale
  await deleteAndVerifyGone(session, created.id, run.dataDir.path);
  await eventually(`${age} to go stale`, () => prometheus.query(age), (r) => r.length === 0, 60_000);
});
