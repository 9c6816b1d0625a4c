import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { conductorContract, conductorTopic, createRpcClient, InProcessTransport, listenInstanceStatus, type Subscription } from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/logger.js';
import { startConductor, type Conductor } from '../../src/conductor/index.js';
import { openStateStore, type StateStore } from '../../src/db/index.js';
import { taskSubjects } from '../../src/taskmanager/flow-support.js';
import { InstanceWaiter, type WatchedInstance } from '../../src/taskmanager/instance-waiter.js';

// The one wait of every flow, against the real conductor over the in-process bus and a SQLite
// state DB: what wakes it is the conductor's status event, the safety-net poll only covers a
// lost one. The safety net here is a minute unless a test is about it, so a wait that ends
// quickly was woken by an event.

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

let seq = 0;
async function makeInstance(): Promise<string> {
  const id = `i-wait-${++seq}`;
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
  return id;
}

/** A waiter fed by the conductor's events, as the taskmanager wires it; counts its DB reads. */
async function listeningWaiter(safetyPollMs: number): Promise<{ waiter: InstanceWaiter; reads: () => number; stop: () => Promise<void> }> {
  let reads = 0;
  const counted: StateStore = Object.create(store, {
    serviceStatuses: {
      value: { ...store.serviceStatuses, get: (id: string) => (reads++, store.serviceStatuses.get(id)) },
    },
  }) as StateStore;
  const waiter = new InstanceWaiter(counted, safetyPollMs);
  const events: Subscription = await listenInstanceStatus(transport, (event) => waiter.notify(event.instanceId), silentLogger());
  return { waiter, reads: () => reads, stop: () => events.close() };
}

const heartbeat = (instanceId: string, status: 'BUILDING' | 'HEALTHY') =>
  createRpcClient(transport, conductorContract, conductorTopic).heartbeat({ instanceId, status });

const allHealthy = (rows: WatchedInstance[]) => (rows.every((row) => row.status?.status === 'HEALTHY') ? rows.map((row) => row.id) : undefined);

test('a wait on a group of instances ends on the event of the last one to become healthy, not on a poll', async () => {
  const [a, b] = [await makeInstance(), await makeInstance()];
  // a task whose subject is a group names the others in its payload
  const subjects = taskSubjects({ instanceId: a, payload: { subjectInstanceIds: [b] } });
  assert.deepEqual(subjects, [a, b]);
  const { waiter, reads, stop } = await listeningWaiter(60_000);
  try {
    const started = Date.now();
    const waiting = waiter.waitFor(subjects, allHealthy, { timeoutMs: 30_000, signal: AbortSignal.timeout(30_000) });
    let settled = false;
    void waiting.finally(() => (settled = true));
    await heartbeat(a, 'HEALTHY');
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(settled, false, 'one healthy member does not end the wait');
    const readsAfterFirst = reads();
    assert.ok(readsAfterFirst >= 4, `the event for ${a} made the waiter read both rows again (${readsAfterFirst} reads)`);
    await heartbeat(b, 'HEALTHY');
    assert.deepEqual(await waiting, [a, b]);
    const took = Date.now() - started;
    assert.ok(took < 5_000, `woken by the events, not the one-minute safety net (${took} ms)`);
    // one read of each row at the start and after each of the two events, nothing in between
    assert.ok(reads() <= 8, `${reads()} status reads`);
  } finally {
    await stop();
  }
});

test('a status written without an event (a lost one) is seen at the next safety-net poll', async () => {
  const id = await makeInstance();
  const { waiter, stop } = await listeningWaiter(150);
  try {
    const waiting = waiter.waitFor([id], allHealthy, { timeoutMs: 10_000, signal: AbortSignal.timeout(10_000) });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: new Date() });
    assert.deepEqual(await waiting, [id]);
  } finally {
    await stop();
  }
});

test('a wait that times out says so with undefined, and an aborted one rejects with the reason', async () => {
  const id = await makeInstance();
  const { waiter, stop } = await listeningWaiter(60_000);
  try {
    const started = Date.now();
    assert.equal(await waiter.waitFor([id], allHealthy, { timeoutMs: 100, signal: AbortSignal.timeout(10_000) }), undefined);
    assert.ok(Date.now() - started < 2_000, 'the timeout, not the safety net, ended it');
    const controller = new AbortController();
    const waiting = waiter.waitFor([id], allHealthy, { timeoutMs: 10_000, signal: controller.signal });
    controller.abort(new Error('lease lost'));
    await assert.rejects(waiting, /lease lost/);
  } finally {
    await stop();
  }
});
