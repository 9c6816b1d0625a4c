// test-lane: parallel (SQLite files in a temporary directory of its own, the in-process bus)
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BusKey, conductorContract, conductorTopic, connectTransport, createRpcClient, type Transport } from '../../src/bus/index.js';
import { startConductor, type Conductor } from '../../src/conductor/index.js';
import { silentLogger, type PrimaryLeaseTimes } from '../../src/common/index.js';
import { openStateStore, type StateStore } from '../../src/db/index.js';
import { FailoverWatch } from '../../src/taskmanager/failover-watch.js';
import { instance, uid } from '../db/state-store-fixtures.js';
import { makeDataDir } from '../support/temp-dir.js';

// The control plane's half of the primary lease on a real SQLite store: the conductor renews a
// primary's lease over the bus and says why when it does not; the taskmanager's failover watch
// claims a primary whose lease lapsed, exactly once however many watches look, fences it with
// the claim (its guest is refused from then on), and rejoins it once its host's agent reports
// again.

const times: PrimaryLeaseTimes = { renewMs: 100, ttlMs: 400, failoverAfterMs: 600, restartHoldMs: 5_000 };

let dir: Awaited<ReturnType<typeof makeDataDir>>;
let store: StateStore;
let transport: Transport;
let conductor: Conductor;

before(async () => {
  dir = await makeDataDir('coffer-failover-watch');
  store = await openStateStore(`sqlite:${join(dir.path, 'state.db')}`);
  transport = await connectTransport('memory:', { key: BusKey.generate() });
  conductor = await startConductor({ store, transport, logger: silentLogger(), leaseTimes: times });
});

after(async () => {
  await conductor.stop();
  await transport.close();
  await store.close();
  await dir.remove();
});

function watch(started: string[]): FailoverWatch {
  return new FailoverWatch({
    store,
    logger: silentLogger(),
    times,
    intervalMs: 50,
    rejoinRetryMs: 60_000,
    runTask: async (taskId) => {
      started.push(taskId);
    },
  });
}

async function group(): Promise<{ primaryId: string; replicaId: string }> {
  const tenantId = `tenant-${uid()}`;
  const primary = { ...instance({ tenantId, taskStatus: 'NONE' }) };
  await store.instances.create(primary);
  await store.instances.update(primary.id, { host: `host-${uid()}` });
  const replica = instance({ tenantId, taskStatus: 'NONE', replicaOfId: primary.id });
  await store.instances.create(replica);
  return { primaryId: primary.id, replicaId: replica.id };
}

test('the conductor renews a primary’s lease only while it has replicas, failover on, and no failover took it', async () => {
  const client = createRpcClient(transport, conductorContract, conductorTopic);
  const ask = (instanceId: string) => client.renewLease({ instanceId }, { requestId: `req-${uid()}`, instanceId });
  const standalone = instance({ taskStatus: 'NONE' });
  await store.instances.create(standalone);
  assert.deepEqual(await ask(standalone.id), { lease: 'none' });
  assert.deepEqual(await ask(uid()), { lease: 'none' });

  const { primaryId, replicaId } = await group();
  const before = Date.now();
  assert.deepEqual(await ask(primaryId), { lease: 'held', ttlMs: times.ttlMs });
  assert.ok(((await store.instances.get(primaryId))?.leaseRenewedAt?.getTime() ?? 0) >= before - 1, 'the renewal is recorded');
  // a replica that still thinks itself a source (a switchover's old primary) must stay down
  assert.deepEqual(await ask(replicaId), { lease: 'fenced' });
  // an agent stopping for a restart holds the lease longer, up to the conductor's cap, recorded ahead
  const held = await client.renewLease({ instanceId: primaryId, holdMs: 60_000 }, { requestId: `req-${uid()}`, instanceId: primaryId });
  assert.deepEqual(held, { lease: 'held', ttlMs: times.restartHoldMs });
  const ahead = (await store.instances.get(primaryId))!.leaseRenewedAt!.getTime() - Date.now();
  assert.ok(ahead > times.restartHoldMs - times.ttlMs - 1_000, `the renewal is recorded ${ahead} ms ahead`);

  await store.instances.update(primaryId, { failover: false });
  assert.deepEqual(await ask(primaryId), { lease: 'none' });
  await store.instances.update(primaryId, { failover: true, fencedAt: new Date() });
  assert.deepEqual(await ask(primaryId), { lease: 'fenced' });
});

test('a lapsed lease is claimed once by one of two watches, which fences the primary and starts one failover', async () => {
  const { primaryId, replicaId } = await group();
  await store.instances.renewLease(primaryId, new Date());
  const started: string[] = [];
  const [first, second] = [watch(started), watch(started)];
  // still fresh
  await Promise.all([first.tick(new Date()), second.tick(new Date())]);
  assert.deepEqual(started, []);

  const later = new Date(Date.now() + times.failoverAfterMs + 1);
  await Promise.all([first.tick(later), second.tick(later)]);
  assert.equal(started.length, 1, 'exactly one failover');
  const task = await store.tasks.get(started[0]!);
  assert.equal(task?.kind, 'eject_replica_source');
  assert.equal(task?.instanceId, primaryId);
  assert.deepEqual(task?.payload, { automatic: true, replicaIds: [replicaId], requestId: (task?.payload as { requestId: string }).requestId });
  const claimed = await store.instances.get(primaryId);
  assert.equal(claimed?.taskStatus, 'EJECTING');
  assert.ok(claimed?.fencedAt instanceof Date);
  assert.equal((await store.instances.get(replicaId))?.taskStatus, 'EJECTING');
  // and no renewal gets past the claim
  assert.equal(await store.instances.renewLease(primaryId, new Date()), false);
  await Promise.all([first.tick(later), second.tick(later)]);
  assert.equal(started.length, 1);
});

test('a primary that never held a lease, or whose group has no replica, is never failed over', async () => {
  const { primaryId } = await group();
  const alone = instance({ taskStatus: 'NONE' });
  await store.instances.create(alone);
  await store.instances.renewLease(alone.id, new Date(Date.now() - 60_000));
  const started: string[] = [];
  await watch(started).tick(new Date(Date.now() + 60_000));
  assert.deepEqual(started, []);
  assert.equal((await store.instances.get(primaryId))?.taskStatus, 'NONE');
  assert.equal((await store.instances.get(alone.id))?.taskStatus, 'NONE');
});

test('a fenced former primary rejoins once its host’s agent reports after the fence, not before', async () => {
  const { primaryId, replicaId } = await group();
  const fencedAt = new Date();
  await store.instances.update(primaryId, { replicaOfId: replicaId, fencedAt });
  await store.instances.update(replicaId, { replicaOfId: null });
  const host = (await store.instances.get(primaryId))!.host!;
  await store.agents.heartbeat(host, new Date(fencedAt.getTime() - 1_000), []);
  const started: string[] = [];
  const w = watch(started);
  await w.tick(new Date());
  assert.deepEqual(started, [], 'its host has not reported since');

  await store.agents.heartbeat(host, new Date(fencedAt.getTime() + 1_000), []);
  await w.tick(new Date());
  assert.equal(started.length, 1);
  assert.equal((await store.tasks.get(started[0]!))?.kind, 'rejoin_replica');
  assert.equal((await store.instances.get(primaryId))?.taskStatus, 'EJECTING');
  // one at a time, and not again within the retry period after a failed attempt
  await store.instances.update(primaryId, { taskStatus: 'NONE' });
  await w.tick(new Date());
  assert.equal(started.length, 1);
});
