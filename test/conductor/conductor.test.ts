import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  InProcessTransport,
  conductorContract,
  conductorTopic,
  createRpcClient,
  listenInstanceStatus,
  type BusMessage,
} from '../../src/bus/index.js';
import { pino } from 'pino';
import { silentLogger } from '../../src/common/logger.js';
import { startConductor, type Conductor } from '../../src/conductor/index.js';
import { heartbeatHandler } from '../../src/conductor/heartbeat-handler.js';
import { HeartbeatBatch } from '../../src/guest/index.js';
import { openStateStore, type InstanceRepository, type Repositories, type StateStore } from '../../src/db/index.js';
import { noCapabilities } from '../support/fake-guest.js';
import { eventually } from '../support/wait.js';

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
  await eventually('HEALTHY', () => store.serviceStatuses.get('i-1'), (s) => s?.status === 'HEALTHY');
  await transport.cast(conductorTopic, heartbeatAt('i-1', 'BUILDING', t0));
  await transport.cast(conductorTopic, heartbeatAt('i-1', 'SHUTDOWN', t0 + 20));
  await eventually('SHUTDOWN', () => store.serviceStatuses.get('i-1'), (s) => s?.status === 'SHUTDOWN');
  await new Promise((r) => setTimeout(r, 30));
  assert.equal((await store.serviceStatuses.get('i-1'))?.status, 'SHUTDOWN');
});

test('a FAILED heartbeat with a message records it as the instance fault', async () => {
  await makeInstance('i-2');
  const client = createRpcClient(transport, conductorContract, conductorTopic);
  await client.heartbeat({ instanceId: 'i-2', status: 'FAILED', message: 'initdb: disk full' });
  const fault = await eventually('the fault', () => store.faults.latest('i-2'), (f) => f !== undefined);
  assert.equal(fault?.message, 'initdb: disk full');
  assert.equal((await store.serviceStatuses.get('i-2'))?.status, 'FAILED');
});

test("a failure's first line is the fault message tenants see; the engine's log after it goes into the details only", async () => {
  await makeInstance('i-2b');
  const client = createRpcClient(transport, conductorContract, conductorTopic);
  const log = '2026-12-02 21:00:00.000 UTC [42] FATAL:  could not bind IPv4 address "127.77.0.2": Address already in use\n' +
    '2026-12-02 21:00:00.001 UTC [42] LOG:  lock file "/var/lib/coffer/instances/i-2b/data/postmaster.pid" removed';
  const message = 'PostgreSQL exited (code 1) while starting: Address already in use.';
  await client.heartbeat({ instanceId: 'i-2b', status: 'FAILED', message: `${message}\n${log}` });
  const fault = await eventually('the fault', () => store.faults.latest('i-2b'), (f) => f !== undefined);
  assert.equal(fault?.message, message);
  assert.equal(fault?.details, `${message}\n${log}`);
});

test("a heartbeat's TLS report is recorded on the instance, and written again only when it changed", async () => {
  await makeInstance('i-tls');
  const tls = { caCertificate: '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n', expiresAt: '2027-03-02T21:33:47.000Z', port: 6380 };
  const beat = (sentAt: number, report: typeof tls): BusMessage => {
    const message = heartbeatAt('i-tls', 'HEALTHY', sentAt);
    return { ...message, args: { ...(message.args as object), tls: report } };
  };
  const t0 = Date.now();
  await transport.cast(conductorTopic, beat(t0, tls));
  const first = await eventually('the TLS report', () => store.instances.get('i-tls'), (i) => i?.tls !== null);
  assert.deepEqual(first?.tls, tls);
  await transport.cast(conductorTopic, beat(t0 + 10, tls));
  await eventually('the second heartbeat', () => store.serviceStatuses.get('i-tls'), (s) => (s?.updatedAt.getTime() ?? 0) > 0);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal((await store.instances.get('i-tls'))?.updatedAt.getTime(), first?.updatedAt.getTime(), 'the same report is not written again');
  const renewed = { ...tls, expiresAt: '2027-06-01T00:00:00.000Z' };
  await transport.cast(conductorTopic, beat(t0 + 20, renewed));
  await eventually('the renewed certificate', () => store.instances.get('i-tls'), (i) => i?.tls?.expiresAt === renewed.expiresAt);
});

test("a host's periodic beats gathered into one message each reach the state database, an unknown instance's among them changing nothing", async () => {
  await makeInstance('i-batch-1');
  await makeInstance('i-batch-2');
  const client = createRpcClient(transport, conductorContract, conductorTopic);
  const batch = new HeartbeatBatch({ conductor: client, gatherMs: 10 });
  await client.heartbeat({ instanceId: 'i-batch-2', status: 'RUNNING' });
  await eventually('RUNNING', () => store.serviceStatuses.get('i-batch-2'), (s) => s?.status === 'RUNNING');
  await Promise.all([
    batch.send({ instanceId: 'i-batch-1', status: 'HEALTHY', volumeUsedBytes: 4096 }),
    batch.send({ instanceId: 'nope-batch', status: 'HEALTHY' }),
    batch.send({ instanceId: 'i-batch-2', status: 'HEALTHY' }),
  ]);
  const first = await eventually('the first beat', () => store.serviceStatuses.get('i-batch-1'), (s) => s?.status === 'HEALTHY');
  assert.equal(first?.volumeUsage?.usedBytes, 4096);
  await eventually('the second beat', () => store.serviceStatuses.get('i-batch-2'), (s) => s?.status === 'HEALTHY');
  const events = await store.instanceEvents.list('i-batch-2', { limit: 10 });
  assert.deepEqual(events.map((e) => e.name), ['HEALTHY', 'RUNNING'], 'a status changed in a batch is an event as any other');
  assert.equal(await store.serviceStatuses.get('nope-batch'), undefined);
});

test('a batch older than a beat already written for an instance changes nothing of it', async () => {
  await makeInstance('i-batch-stale');
  const t0 = Date.now();
  await transport.cast(conductorTopic, heartbeatAt('i-batch-stale', 'SHUTDOWN', t0 + 10));
  await eventually('SHUTDOWN', () => store.serviceStatuses.get('i-batch-stale'), (s) => s?.status === 'SHUTDOWN');
  await transport.cast(conductorTopic, {
    ...heartbeatAt('i-batch-stale', 'HEALTHY', t0),
    version: '1.9',
    method: 'heartbeats',
    args: { beats: [{ instanceId: 'i-batch-stale', status: 'HEALTHY' }] },
  });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await store.serviceStatuses.get('i-batch-stale'))?.status, 'SHUTDOWN');
});

test('heartbeats of unknown instances change nothing', async () => {
  const client = createRpcClient(transport, conductorContract, conductorTopic);
  await client.heartbeat({ instanceId: 'nope', status: 'HEALTHY' });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(await store.serviceStatuses.get('nope'), undefined);
});

test('heartbeats from instances the state database never had are logged once a minute as another deployment; a deleted one quietly', async () => {
  const lines: { level: number; msg: string; instanceId?: string; suppressedSinceLastLine?: number }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const handle = heartbeatHandler(store, logger);
  await makeInstance('gone-1');
  await store.instances.markDeleted('gone-1', new Date());
  await handle({ instanceId: 'gone-1', status: 'SHUTDOWN' }, { context: { requestId: 'r' }, sentAt: Date.now() });
  for (const id of ['stranger-1', 'stranger-2', 'stranger-3']) {
    await handle({ instanceId: id, status: 'HEALTHY' }, { context: { requestId: 'r' }, sentAt: Date.now() });
  }
  const warnings = lines.filter((l) => l.level === 40);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!.msg, /another Coffer deployment \(different bus key\) is using this vhost\?/);
  assert.equal(warnings[0]!.instanceId, 'stranger-1');
  assert.ok(lines.some((l) => l.level === 20 && l.instanceId === 'gone-1'), 'the deleted instance is a debug line');
});

test('agent reports register datastore versions; a host lacking a binary does not deactivate it', async () => {
  const client = createRpcClient(transport, conductorContract, conductorTopic);
  await client.agentHeartbeat({
    host: 'host-a',
    engines: [
      { datastore: 'postgresql', manager: 'postgresql', name: '15', version: '15.19', active: true, inactiveReason: null, capabilities: noCapabilities, parameters: [] },
      { datastore: 'postgresql', manager: 'postgresql', name: '17', version: '17', active: false, inactiveReason: 'no PostgreSQL 17 binaries', capabilities: noCapabilities, parameters: [] },
    ],
  });
  const datastore = await eventually('the datastore', () => store.datastores.getDatastoreByName('postgresql'), (d) => d?.defaultVersionId != null);
  const versions = await store.datastores.listVersions(datastore!.id);
  const byName = Object.fromEntries(versions.map((v) => [v.name, v]));
  assert.equal(byName['15']?.active, true);
  assert.equal(byName['15']?.version, '15.19');
  assert.equal(byName['17']?.active, false);
  assert.equal(byName['17']?.inactiveReason, 'no PostgreSQL 17 binaries');
  assert.equal(datastore!.defaultVersionId, byName['15']?.id);

  await client.agentHeartbeat({
    host: 'host-b',
    engines: [{ datastore: 'postgresql', manager: 'postgresql', name: '15', version: '15.19', active: false, inactiveReason: 'missing', capabilities: noCapabilities, parameters: [] }],
    contracts: { agent: '1.0', guest: '1.0' },
  });
  const alive = await eventually('both agents', () => store.agents.listAlive(new Date(Date.now() - 60_000)), (a) => a.length === 2);
  assert.deepEqual(alive.map((a) => a.host), ['host-a', 'host-b']);
  // the contract versions an agent serves are kept for the taskmanager; none reported, none kept
  assert.deepEqual(alive.map((a) => a.contracts), [{}, { agent: '1.0', guest: '1.0' }]);
  assert.equal((await store.datastores.getVersion(byName['15']!.id))?.active, true);
});

test('agent reports store each version\'s capabilities and parameters, and a changed report replaces them', async () => {
  const client = createRpcClient(transport, conductorContract, conductorTopic);
  const capabilities = { ...noCapabilities, databases: true, users: true, userAccess: true };
  const parameters = [{ name: 'maxmemory', type: 'string' as const, restartRequired: false }];
  const report = { datastore: 'redis', manager: 'redis', name: '7', version: '7.2.4', active: true, inactiveReason: null, capabilities, parameters };
  await client.agentHeartbeat({ host: 'host-c', engines: [report] });
  const datastore = await eventually('redis', () => store.datastores.getDatastoreByName('redis'), (d) => d?.defaultVersionId != null);
  const stored = await store.datastores.getVersion(datastore!.defaultVersionId!);
  assert.deepEqual(stored?.capabilities, capabilities);
  assert.deepEqual(stored?.parameters, parameters);

  await client.agentHeartbeat({ host: 'host-c', engines: [{ ...report, capabilities: { ...capabilities, root: true }, parameters: [] }] });
  const updated = await eventually('root capability', () => store.datastores.getVersion(stored!.id), (v) => v?.capabilities.root === true);
  assert.deepEqual(updated?.parameters, []);
});

test('the instances a restarted agent has yet to take up await adoption until their own next heartbeat', async () => {
  const client = createRpcClient(transport, conductorContract, conductorTopic);
  for (const id of ['i-ad-1', 'i-ad-2']) {
    await makeInstance(id);
    await client.heartbeat({ instanceId: id, status: 'HEALTHY' });
    await eventually(`${id} HEALTHY`, () => store.serviceStatuses.get(id), (s) => s?.status === 'HEALTHY');
  }
  await client.agentHeartbeat({ host: 'host-ad', engines: [], adopting: ['i-ad-1', 'i-ad-2', 'i-unknown'] });
  await eventually('both awaiting adoption', () => store.serviceStatuses.getMany(['i-ad-1', 'i-ad-2']), (m) => [...m.values()].every((s) => s.awaitingAdoption === true));
  assert.equal((await store.serviceStatuses.get('i-ad-1'))?.status, 'HEALTHY', 'the last status heard stays');

  await client.heartbeat({ instanceId: 'i-ad-1', status: 'HEALTHY' });
  await eventually('i-ad-1 adopted', () => store.serviceStatuses.get('i-ad-1'), (s) => s?.awaitingAdoption === undefined);
  assert.equal((await store.serviceStatuses.get('i-ad-2'))?.awaitingAdoption, true, 'the other one still waits');
});

/** `store` whose instance reads (outside and inside transactions) first wait for `gate()`. */
function withGatedInstanceReads(real: StateStore, gate: () => Promise<void>): StateStore {
  const gated = (repo: InstanceRepository): InstanceRepository =>
    new Proxy(repo, {
      get(target, prop) {
        if (prop === 'get') {
          return async (...args: Parameters<InstanceRepository['get']>) => {
            await gate();
            return target.get(...args);
          };
        }
        const value: unknown = Reflect.get(target, prop);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  return new Proxy(real, {
    get(target, prop) {
      if (prop === 'instances') return gated(target.instances);
      if (prop === 'transaction') {
        return <T>(fn: (tx: Repositories) => Promise<T>) =>
          target.transaction((tx) => fn({ ...tx, instances: gated(tx.instances) }));
      }
      const value: unknown = Reflect.get(target, prop);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

test('of two heartbeats handled at once, the newer status is the one that stays', async () => {
  await makeInstance('i-race');
  let releaseOlder!: () => void;
  const olderMayGo = new Promise<void>((resolve) => (releaseOlder = resolve));
  let reads = 0;
  // The older heartbeat is held inside its handling; the newer one is handled meanwhile (or, when
  // the handling is serialised, waits for the older one: then a pause lets the older one go).
  const handle = heartbeatHandler(withGatedInstanceReads(store, () => (++reads === 1 ? olderMayGo : Promise.resolve())), silentLogger());
  const meta = (sentAt: number) => ({ context: { requestId: 'req-race' }, sentAt });
  const t0 = Date.now();
  const older = handle({ instanceId: 'i-race', status: 'BUILDING' }, meta(t0));
  const newer = handle({ instanceId: 'i-race', status: 'HEALTHY' }, meta(t0 + 1));
  await Promise.race([newer, new Promise((r) => setTimeout(r, 200))]);
  releaseOlder();
  await Promise.all([older, newer]);
  assert.equal((await store.serviceStatuses.get('i-race'))?.status, 'HEALTHY');
});

test('each status change is an instance event, a failure with its first line; a repeated status or a stale beat adds none', async () => {
  await makeInstance('i-status-events');
  const handle = heartbeatHandler(store, silentLogger());
  const meta = (sentAt: number) => ({ context: { requestId: 'req-status-events' }, sentAt });
  const t0 = Date.now();
  await handle({ instanceId: 'i-status-events', status: 'BUILDING' }, meta(t0));
  await handle({ instanceId: 'i-status-events', status: 'HEALTHY' }, meta(t0 + 1));
  await handle({ instanceId: 'i-status-events', status: 'HEALTHY' }, meta(t0 + 2));
  await handle({ instanceId: 'i-status-events', status: 'CRASHED', message: 'PostgreSQL exited (code 1)\nFATAL: secret log line' }, meta(t0 + 3));
  await handle({ instanceId: 'i-status-events', status: 'SHUTDOWN' }, meta(t0 + 1));
  const events = await store.instanceEvents.list('i-status-events', { limit: 10 });
  assert.deepEqual(
    events.map((e) => [e.type, e.name, e.message]),
    [
      ['status', 'CRASHED', 'PostgreSQL exited (code 1)'],
      ['status', 'HEALTHY', null],
      ['status', 'BUILDING', null],
    ],
  );
});

test('a guest repeating the same failure leaves one fault, a new failure another', async () => {
  await makeInstance('i-crash');
  const handle = heartbeatHandler(store, silentLogger());
  const meta = (sentAt: number) => ({ context: { requestId: 'req-crash' }, sentAt });
  const t0 = Date.now();
  await handle({ instanceId: 'i-crash', status: 'CRASHED', message: 'could not start: port in use' }, meta(t0));
  const first = await store.faults.latest('i-crash');
  await handle({ instanceId: 'i-crash', status: 'CRASHED', message: 'could not start: port in use' }, meta(t0 + 1));
  assert.equal((await store.faults.latest('i-crash'))?.id, first?.id, 'the repeated failure is not recorded again');
  await handle({ instanceId: 'i-crash', status: 'CRASHED', message: 'could not start: disk full' }, meta(t0 + 2));
  const second = await store.faults.latest('i-crash');
  assert.notEqual(second?.id, first?.id);
  assert.equal(second?.message, 'could not start: disk full');
});

test('a heartbeat carrying volume usage is kept with the status, measured when it was sent; beats without it keep it', async () => {
  await makeInstance('i-usage');
  const beat = (sentAt: number, status: string, volumeUsedBytes?: number): BusMessage => {
    const message = heartbeatAt('i-usage', status, sentAt);
    return { ...message, args: { ...(message.args as object), ...(volumeUsedBytes === undefined ? {} : { volumeUsedBytes }) } };
  };
  const sentAt = Date.now() - 5_000; // it waited in a queue
  await transport.cast(conductorTopic, beat(sentAt, 'HEALTHY', 123_456_789_012));
  const stored = await eventually('the usage', () => store.serviceStatuses.get('i-usage'), (s) => s?.volumeUsage !== undefined);
  assert.deepEqual(stored?.volumeUsage, { usedBytes: 123_456_789_012, measuredAt: new Date(Math.floor(sentAt)) });
  assert.equal(stored?.status, 'HEALTHY');

  await transport.cast(conductorTopic, beat(sentAt + 10, 'SHUTDOWN'));
  const later = await eventually('SHUTDOWN', () => store.serviceStatuses.get('i-usage'), (s) => s?.status === 'SHUTDOWN');
  assert.deepEqual(later?.volumeUsage, stored?.volumeUsage, 'a beat without usage leaves the last measurement');

  // a late beat is dropped whole: its older measurement does not replace the newer one
  await transport.cast(conductorTopic, beat(sentAt + 20, 'HEALTHY', 2048));
  await eventually('the newer usage', () => store.serviceStatuses.get('i-usage'), (s) => s?.volumeUsage?.usedBytes === 2048);
  await transport.cast(conductorTopic, beat(sentAt + 15, 'HEALTHY', 1024));
  // a newer beat after it: once that one is stored, the late one has been handled
  await transport.cast(conductorTopic, beat(sentAt + 25, 'SHUTDOWN'));
  await eventually('the beat after the late one', () => store.serviceStatuses.get('i-usage'), (s) => s?.status === 'SHUTDOWN');
  assert.equal((await store.serviceStatuses.get('i-usage'))?.volumeUsage?.usedBytes, 2048);
});

test("a measurement stamped ahead of the conductor's clock is kept as measured now", async () => {
  await makeInstance('i-ahead');
  const handle = heartbeatHandler(store, silentLogger());
  const before = Date.now();
  await handle({ instanceId: 'i-ahead', status: 'HEALTHY', volumeUsedBytes: 10 }, { context: { requestId: 'r' }, sentAt: before + 3_600_000 });
  const measuredAt = (await store.serviceStatuses.get('i-ahead'))?.volumeUsage?.measuredAt.getTime() ?? 0;
  assert.ok(measuredAt >= before && measuredAt <= Date.now(), `measured at ${new Date(measuredAt).toISOString()}`);
});

test("the engine's health detail: a failure's message, kept while the same failure repeats without it, cleared once healthy", async () => {
  await makeInstance('i-health');
  const handle = heartbeatHandler(store, silentLogger());
  const meta = (sentAt: number) => ({ context: { requestId: 'req-health' }, sentAt });
  const t0 = Date.now();
  await handle({ instanceId: 'i-health', status: 'HEALTHY' }, meta(t0));
  assert.equal((await store.serviceStatuses.get('i-health'))?.healthDetail, undefined);
  const failure = 'PostgreSQL exited (code 1) while starting: Address already in use.\nFATAL:  could not bind';
  await handle({ instanceId: 'i-health', status: 'CRASHED', message: failure }, meta(t0 + 1));
  assert.equal((await store.serviceStatuses.get('i-health'))?.healthDetail, failure);
  // the guest reports a restart failing the same way again without repeating the message
  await handle({ instanceId: 'i-health', status: 'CRASHED' }, meta(t0 + 2));
  assert.equal((await store.serviceStatuses.get('i-health'))?.healthDetail, failure);
  await handle({ instanceId: 'i-health', status: 'HEALTHY' }, meta(t0 + 3));
  assert.equal((await store.serviceStatuses.get('i-health'))?.healthDetail, undefined);
});

test('usage and health are kept while the status waits for a restart (RESTART_REQUIRED stays)', async () => {
  await makeInstance('i-pending');
  await store.serviceStatuses.set({ instanceId: 'i-pending', status: 'RESTART_REQUIRED', updatedAt: new Date() });
  const handle = heartbeatHandler(store, silentLogger());
  await handle({ instanceId: 'i-pending', status: 'HEALTHY', volumeUsedBytes: 4096 }, { context: { requestId: 'r' }, sentAt: Date.now() });
  const stored = await store.serviceStatuses.get('i-pending');
  assert.equal(stored?.status, 'RESTART_REQUIRED');
  assert.equal(stored?.volumeUsage?.usedBytes, 4096);
});

test("a deleted instance's usage goes with it, and a heartbeat arriving after the delete does not bring it back", async () => {
  await makeInstance('i-deleted');
  const handle = heartbeatHandler(store, silentLogger());
  const t0 = Date.now();
  await handle({ instanceId: 'i-deleted', status: 'CRASHED', message: 'disk full', volumeUsedBytes: 4096 }, { context: { requestId: 'r' }, sentAt: t0 });
  assert.equal((await store.serviceStatuses.get('i-deleted'))?.volumeUsage?.usedBytes, 4096);
  await store.instances.markDeleted('i-deleted', new Date());
  const cleared = await store.serviceStatuses.get('i-deleted');
  assert.equal(cleared?.volumeUsage, undefined);
  assert.equal(cleared?.healthDetail, undefined);
  await handle({ instanceId: 'i-deleted', status: 'HEALTHY', volumeUsedBytes: 8192 }, { context: { requestId: 'r' }, sentAt: t0 + 1 });
  assert.equal((await store.serviceStatuses.get('i-deleted'))?.volumeUsage, undefined);
});

test('a recorded status change is published to every listener; a repeated status is not', async () => {
  const id = 'i-events';
  await makeInstance(id);
  const heard: { first: string[]; second: string[] } = { first: [], second: [] };
  const first = await listenInstanceStatus(transport, (e) => e.instanceId === id && void heard.first.push(e.status ?? ''), silentLogger());
  const second = await listenInstanceStatus(transport, (e) => e.instanceId === id && void heard.second.push(e.status ?? ''), silentLogger());
  try {
    const client = createRpcClient(transport, conductorContract, conductorTopic);
    for (const status of ['BUILDING', 'BUILDING', 'HEALTHY', 'HEALTHY'] as const) await client.heartbeat({ instanceId: id, status });
    await eventually('both listeners heard the changes', () => heard, (h) => h.first.length === 2 && h.second.length === 2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(heard, { first: ['BUILDING', 'HEALTHY'], second: ['BUILDING', 'HEALTHY'] });
    assert.equal((await store.serviceStatuses.get(id))?.status, 'HEALTHY', 'the event followed the write');
  } finally {
    await first.close();
    await second.close();
  }
});

test('a full volume (BLOCKED): one fault with the first line and a status event; a warning while healthy is one event, cleared once gone', async () => {
  await makeInstance('i-volume');
  const handle = heartbeatHandler(store, silentLogger());
  const meta = (sentAt: number) => ({ context: { requestId: 'req-volume' }, sentAt });
  const t0 = Date.now();
  const warning = 'The volume is over 90% full: resize it (coffer instance resize-volume) before it fills; a full volume refuses writes.';
  const full = 'The volume is full (1.02 of 1 GB used): writes are refused until it is resized (coffer instance resize-volume).';
  await handle({ instanceId: 'i-volume', status: 'HEALTHY' }, meta(t0));
  await handle({ instanceId: 'i-volume', status: 'HEALTHY', message: warning }, meta(t0 + 1));
  // the guest repeats the warning on every beat while it holds: recorded once
  await handle({ instanceId: 'i-volume', status: 'HEALTHY', message: warning }, meta(t0 + 2));
  assert.equal((await store.serviceStatuses.get('i-volume'))?.healthDetail, warning);
  await handle({ instanceId: 'i-volume', status: 'BLOCKED', message: full }, meta(t0 + 3));
  // later beats of the full volume say BLOCKED without the message: no second fault
  await handle({ instanceId: 'i-volume', status: 'BLOCKED' }, meta(t0 + 4));
  const stored = await store.serviceStatuses.get('i-volume');
  assert.equal(stored?.status, 'BLOCKED');
  assert.equal(stored?.healthDetail, full);
  const fault = await store.faults.latest('i-volume');
  assert.equal(fault?.message, full);
  await handle({ instanceId: 'i-volume', status: 'HEALTHY' }, meta(t0 + 5));
  assert.equal((await store.serviceStatuses.get('i-volume'))?.healthDetail, undefined);
  assert.equal((await store.faults.latest('i-volume'))?.id, fault?.id, 'one fault for the full volume');
  const events = await store.instanceEvents.list('i-volume', { limit: 10 });
  assert.deepEqual(
    events.map((e) => [e.type, e.name, e.message]),
    [
      ['status', 'HEALTHY', null],
      ['status', 'BLOCKED', full],
      ['warning', 'HEALTHY', warning],
      ['status', 'HEALTHY', null],
    ],
  );
});
