import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  InProcessTransport,
  conductorContract,
  conductorTopic,
  createRpcClient,
  type BusMessage,
} from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/logger.js';
import { startConductor, type Conductor } from '../../src/conductor/index.js';
import { openStateStore, type StateStore } from '../../src/db/index.js';

let store: StateStore;
let transport: InProcessTransport;
let conductor: Conductor;

before(async () => {
  store = await openStateStore('sqlite::memory:');
  transport = new InProcessTransport();
  conductor = await startConductor({ store, transport, logger: silentLogger() });
});

after(async () => {
  await conductor.stop();
  await transport.close();
  await store.close();
});

async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const value = await read();
    if (ok(value)) return value;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('condition never met');
}

async function makeInstance(id: string): Promise<void> {
  const now = new Date();
  await store.instances.create({
    id,
    name: id,
    tenantId: 'p1',
    flavorId: '1',
    volumeSizeGb: 1,
    datastoreVersionId: 'v1',
    taskStatus: 'BUILDING',
    taskDescription: '',
    taskStartTime: now,
    access: null,
    createdAt: now,
    updatedAt: now,
  });
}

/** A heartbeat with a chosen `sent` stamp, as a late or duplicated message would carry. */
function heartbeatAt(instanceId: string, status: string, sentAt: number, message?: string): BusMessage {
  return {
    service: 'conductor',
    version: '1.0',
    method: 'heartbeat',
    args: { instanceId, status, ...(message === undefined ? {} : { message }) },
    context: { requestId: 'req-test' },
    sentAt,
  };
}

test('a heartbeat becomes the service status; an older one arriving late is dropped', async () => {
  await makeInstance('i-1');
  const t0 = Date.now();
  await transport.cast(conductorTopic, heartbeatAt('i-1', 'HEALTHY', t0 + 10));
  await eventually(() => store.serviceStatuses.get('i-1'), (s) => s?.status === 'HEALTHY');
  await transport.cast(conductorTopic, heartbeatAt('i-1', 'BUILDING', t0));
  await transport.cast(conductorTopic, heartbeatAt('i-1', 'SHUTDOWN', t0 + 20));
  await eventually(() => store.serviceStatuses.get('i-1'), (s) => s?.status === 'SHUTDOWN');
  await new Promise((r) => setTimeout(r, 30));
  assert.equal((await store.serviceStatuses.get('i-1'))?.status, 'SHUTDOWN');
});

test('a FAILED heartbeat with a message records it as the instance fault', async () => {
  await makeInstance('i-2');
  const client = createRpcClient(transport, conductorContract, conductorTopic);
  await client.heartbeat({ instanceId: 'i-2', status: 'FAILED', message: 'initdb: disk full' });
  const fault = await eventually(() => store.faults.latest('i-2'), (f) => f !== undefined);
  assert.equal(fault?.message, 'initdb: disk full');
  assert.equal((await store.serviceStatuses.get('i-2'))?.status, 'FAILED');
});

test('heartbeats of unknown instances change nothing', async () => {
  const client = createRpcClient(transport, conductorContract, conductorTopic);
  await client.heartbeat({ instanceId: 'nope', status: 'HEALTHY' });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(await store.serviceStatuses.get('nope'), undefined);
});

test('agent reports register datastore versions; a host lacking a binary does not deactivate it', async () => {
  const client = createRpcClient(transport, conductorContract, conductorTopic);
  await client.agentHeartbeat({
    host: 'host-a',
    engines: [
      { datastore: 'postgresql', manager: 'postgresql', name: '15', version: '15.19', active: true, inactiveReason: null },
      { datastore: 'postgresql', manager: 'postgresql', name: '17', version: '17', active: false, inactiveReason: 'no PostgreSQL 17 binaries' },
    ],
  });
  const datastore = await eventually(() => store.datastores.getDatastoreByName('postgresql'), (d) => d?.defaultVersionId != null);
  const versions = await store.datastores.listVersions(datastore!.id);
  const byName = Object.fromEntries(versions.map((v) => [v.name, v]));
  assert.equal(byName['15']?.active, true);
  assert.equal(byName['15']?.version, '15.19');
  assert.equal(byName['17']?.active, false);
  assert.equal(byName['17']?.inactiveReason, 'no PostgreSQL 17 binaries');
  assert.equal(datastore!.defaultVersionId, byName['15']?.id);

  await client.agentHeartbeat({
    host: 'host-b',
    engines: [{ datastore: 'postgresql', manager: 'postgresql', name: '15', version: '15.19', active: false, inactiveReason: 'missing' }],
  });
  const alive = await eventually(() => store.agents.listAlive(new Date(Date.now() - 60_000)), (a) => a.length === 2);
  assert.deepEqual(alive.map((a) => a.host), ['host-a', 'host-b']);
  assert.equal((await store.datastores.getVersion(byName['15']!.id))?.active, true);
});
