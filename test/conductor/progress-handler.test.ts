import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import {
  InProcessTransport,
  conductorContract,
  conductorTopic,
  createRpcClient,
  serveRpc,
  type BusMessage,
} from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/logger.js';
import { startConductor, type Conductor } from '../../src/conductor/index.js';
import { openStateStore, type StateStore } from '../../src/db/index.js';
import { eventually } from '../support/wait.js';

// reportProgress over the real in-process bus into a real (SQLite) state store: what a guest
// reports lands on the instance's running task, in the order it was sent.

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

/** an instance being built, with its create task claimed by a taskmanager */
async function buildingInstance(id: string): Promise<string> {
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
  const taskId = `t-${id}`;
  await store.tasks.create({
    id: taskId,
    instanceId: id,
    kind: 'create_instance',
    step: 'start',
    state: 'pending',
    owner: null,
    leaseExpiresAt: null,
    payload: {},
    attempts: 0,
    createdAt: now,
    updatedAt: now,
  });
  assert.ok(await store.tasks.claim(taskId, 'tm-1', 60_000, now));
  return taskId;
}

/** a progress report with a chosen `sent` stamp, as a late or duplicated message would carry */
function progressAt(instanceId: string, step: string, percent: number, sentAt: number): BusMessage {
  return {
    service: 'conductor',
    version: '1.2',
    method: 'reportProgress',
    args: { instanceId, step, percent },
    context: { requestId: 'req-test' },
    sentAt,
  };
}

const progressOf = async (taskId: string) => (await store.tasks.get(taskId))?.progress;

test("a progress report becomes the running task's progress; an older one arriving late is dropped", async () => {
  const taskId = await buildingInstance('i-1');
  const client = createRpcClient(transport, conductorContract, conductorTopic);
  const before = Date.now();
  await client.reportProgress({ instanceId: 'i-1', step: 'initialising', percent: 10 });
  const first = await eventually('the first step', () => progressOf(taskId), (p) => p?.step === 'initialising');
  assert.equal(first?.percent, 10);
  assert.ok(first!.updatedAt.getTime() >= before - 5, 'updated when the conductor stored it');

  const t0 = Date.now() + 1000;
  await transport.cast(conductorTopic, progressAt('i-1', 'creating databases and users', 70, t0 + 20));
  await eventually('the later step', () => progressOf(taskId), (p) => p?.step === 'creating databases and users');
  // sent before the one stored: a redelivery or an overtaken message
  await transport.cast(conductorTopic, progressAt('i-1', 'starting', 40, t0 + 10));
  await transport.cast(conductorTopic, progressAt('i-1', 'ready', 100, t0 + 30));
  await eventually('the last step', () => progressOf(taskId), (p) => p?.step === 'ready');
  assert.deepEqual({ ...(await progressOf(taskId)), updatedAt: undefined }, { step: 'ready', percent: 100, updatedAt: undefined });
});

test('a finished task clears its progress, and a report after it is dropped', async () => {
  const taskId = await buildingInstance('i-2');
  const client = createRpcClient(transport, conductorContract, conductorTopic);
  await client.reportProgress({ instanceId: 'i-2', step: 'starting', percent: 40 });
  await eventually('the step', () => progressOf(taskId), (p) => p?.step === 'starting');
  assert.ok(await store.tasks.finish(taskId, 'tm-1', 'done'));
  assert.equal(await progressOf(taskId), null);
  await client.reportProgress({ instanceId: 'i-2', step: 'ready', percent: 100 });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(await progressOf(taskId), null, 'a report with no running task stores nothing');
  assert.equal(await store.tasks.activeForInstance('i-2'), undefined);
});

test('a percent outside 0..100 or an empty step is refused before it reaches the state store', async () => {
  const taskId = await buildingInstance('i-3');
  const client = createRpcClient(transport, conductorContract, conductorTopic);
  await assert.rejects(client.reportProgress({ instanceId: 'i-3', step: 'starting', percent: 140 }), { code: 'BadRequest' });
  await assert.rejects(client.reportProgress({ instanceId: 'i-3', step: '', percent: 10 }), { code: 'BadRequest' });
  await transport.cast(conductorTopic, progressAt('i-3', 'starting', 40.5, Date.now()));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(await progressOf(taskId), null);
});

test('progress reports are stamped 1.2 while heartbeats keep 1.1: a 1.1 conductor refuses the one and still takes the other', async () => {
  const lines: { msg: string; err?: { code?: string } }[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const bus = new InProcessTransport();
  const beats: string[] = [];
  const reports: string[] = [];
  const older = { ...conductorContract, version: '1.1' };
  const subscription = await serveRpc(
    bus,
    older,
    conductorTopic,
    {
      heartbeat: async ({ status }) => void beats.push(status),
      heartbeats: async (args) => void beats.push(...args.beats.map((beat) => beat.status)),
      agentHeartbeat: async () => undefined,
      reportProgress: async ({ step }) => void reports.push(step),
      updateBackup: async () => undefined,
      walArchived: async () => undefined,
      renewLease: async () => ({ lease: 'none' as const }),
    },
    logger,
  );
  try {
    const client = createRpcClient(bus, conductorContract, conductorTopic);
    await client.reportProgress({ instanceId: 'i-4', step: 'starting', percent: 40 });
    await client.heartbeat({ instanceId: 'i-4', status: 'HEALTHY' });
    await eventually('the heartbeat', () => beats, (b) => b.length === 1);
    await eventually('the refusal logged', () => lines, (l) => l.some((line) => line.err?.code === 'ContractVersionUnsupported'));
    assert.deepEqual(reports, []);
  } finally {
    await subscription.close();
    await bus.close();
  }
});
