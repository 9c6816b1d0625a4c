// test-lane: parallel (a vhost, a data directory and a random loopback range of its own; free ports)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { seedFlavors } from '../../src/api/index.js';
import { BusKey, conductorContract, conductorTopic, connectTransport, createRpcClient } from '../../src/bus/index.js';
import { newUuid } from '../../src/common/index.js';
import { openStateStore, type StateStore } from '../../src/db/index.js';
import { seedDatastores } from '../api/api-harness.js';
import { freePort, startRole, type RoleProcess } from '../support/coffer-process.js';
import { makeVhost } from '../support/rabbitmq-vhost.js';
import { makeDataDir } from '../support/temp-dir.js';
import { eventually } from '../support/wait.js';
import { randomPool } from '../guest/engine-fixture.js';
import { series, value } from '../metrics/exposition.js';

// The four roles run as an operator runs them, each with --metrics-address: the listener
// answers /healthz, /readyz (the agent has no state database to ask) and /metrics with the
// role's own families: the conductor's heartbeat age of an instance whose guest heartbeated
// over the real bus, the agent's warm pool, the taskmanager's task runs, the API's requests
// (which its public port does not show).

let vhost: ReturnType<typeof makeVhost>;
let dir: { path: string; remove: () => Promise<void> };
let store: StateStore;
let env: Record<string, string>;
const roles: Record<string, { process: RoleProcess; url: string }> = {};

let apiUrl: string;

async function start(role: 'conductor' | 'taskmanager' | 'agent' | 'api'): Promise<void> {
  const address = `127.0.0.1:${await freePort()}`;
  const apiPort = await freePort();
  const args =
    role === 'agent' ? ['agent', '--data-dir', join(dir.path, 'agent'), '--agent-host', `m-${randomBytes(3).toString('hex')}`, '--address-pool', randomPool(), '--warm-pool-size', '0']
    : role === 'api' ? ['api', '--port', String(apiPort), '--data-dir', join(dir.path, 'api')]
    : [role];
  const process = startRole([...args, '--metrics-address', address], { ...env, COFFER_ADMIN_PASSWORD: 'Role-metrics-admin-1234' });
  await process.waitFor(role === 'api' ? /api listening/ : new RegExp(`${role} running`), 90_000);
  roles[role] = { process, url: `http://${address}` };
  if (role === 'api') apiUrl = `http://127.0.0.1:${apiPort}`;
}

before(async () => {
  vhost = makeVhost({ ownUser: true });
  dir = await makeDataDir('coffer-role-metrics');
  const busKeyFile = join(dir.path, 'bus.key');
  await writeFile(busKeyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  const databaseUrl = `sqlite:${join(dir.path, 'state.sqlite')}`;
  store = await openStateStore(databaseUrl);
  env = { COFFER_DATABASE_URL: databaseUrl, COFFER_BUS_URL: vhost.url, COFFER_BUS_KEY_FILE: busKeyFile, COFFER_LOG_LEVEL: 'info' };
  await Promise.all([start('conductor'), start('taskmanager'), start('agent'), start('api')]);
});

after(async () => {
  for (const role of Object.values(roles)) await role.process.stop();
  await store?.close();
  await dir?.remove();
  vhost?.remove();
});

async function get(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text() };
}

test('each role says where it serves its metrics, and answers /healthz and /readyz there', async () => {
  for (const [role, { process, url }] of Object.entries(roles)) {
    assert.match(process.output(), new RegExp(`"url":"${url.replaceAll('.', '\\.')}".*serving /metrics, /healthz and /readyz`), role);
    assert.deepEqual(JSON.parse((await get(`${url}/healthz`)).text), { status: 'alive' }, role);
    const ready = await get(`${url}/readyz`);
    assert.equal(ready.status, 200, `${role}: ${ready.text}`);
    const checks = role === 'agent' ? { bus: 'ok' } : { stateDatabase: 'ok', bus: 'ok' };
    assert.deepEqual(JSON.parse(ready.text), { status: 'ready', checks }, role);
  }
});

test("the conductor exports the heartbeat age of an instance whose guest heartbeated over the bus", async () => {
  await seedFlavors(store);
  const seeded = await seedDatastores(store);
  const id = newUuid();
  const now = new Date();
  await store.instances.create({
    id,
    name: 'metrics',
    tenantId: 'project-m',
    flavorId: '1',
    volumeSizeGb: 1,
    datastoreVersionId: seeded.activeVersionId,
    taskStatus: 'NONE',
    taskDescription: '',
    taskStartTime: null,
    access: null,
    createdAt: now,
    updatedAt: now,
  });
  const guestBus = await connectTransport(vhost.url, { key: BusKey.fromText(await readFile(env['COFFER_BUS_KEY_FILE']!, 'utf8')) });
  try {
    await createRpcClient(guestBus, conductorContract, conductorTopic).heartbeat({ instanceId: id, status: 'HEALTHY' });
  } finally {
    await guestBus.close();
  }
  const text = await eventually(
    'the heartbeat in the metrics',
    async () => (await get(`${roles['conductor']!.url}/metrics`)).text,
    (t) => series(t, 'coffer_instance_heartbeat_age_seconds', { instance_id: id }).length === 1,
  );
  const [sample] = series(text, 'coffer_instance_heartbeat_age_seconds', { instance_id: id });
  assert.deepEqual(sample!.labels, { instance_id: id, project_id: 'project-m', datastore: 'postgresql' });
  assert.ok(sample!.value >= 0);
});

test("the agent exports its warm pool per engine version; the taskmanager its task runs", async () => {
  const agent = (await get(`${roles['agent']!.url}/metrics`)).text;
  const pool = series(agent, 'coffer_agent_warm_pool_clusters');
  assert.ok(pool.length > 0, 'the host has at least one engine with a warm pool');
  assert.ok(pool.every((s) => s.value === 0 && /^[a-z]+-[0-9.]+$/.test(s.labels['kind']!)), JSON.stringify(pool));
  const taskmanager = (await get(`${roles['taskmanager']!.url}/metrics`)).text;
  assert.match(taskmanager, /# TYPE coffer_task_duration_seconds histogram/);
  assert.ok(value(taskmanager, 'process_resident_memory_bytes')! > 0);
});

test("the api role counts its requests on its metrics address, never on its public port", async () => {
  assert.equal((await get(`${apiUrl}/v1.0`)).status, 404);
  assert.equal((await get(`${apiUrl}/metrics`)).status, 404);
  const text = (await get(`${roles['api']!.url}/metrics`)).text;
  assert.equal(value(text, 'coffer_http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status: '404' }), 2);
});
