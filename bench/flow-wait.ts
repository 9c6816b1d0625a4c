// bench/flow-wait: what a create costs the state DB while it waits for the guest's HEALTHY
// heartbeat, and how long after that heartbeat the task ends.
//
//   node --import tsx bench/flow-wait.ts [--runs 5] [--engine-ms 3000] [--src <dir of another build's src>]
//
// The real taskmanager and conductor over the in-process bus and a SQLite state DB; a fake agent
// places the instance and its fake guest says BUILDING at once and HEALTHY `--engine-ms` later
// (an engine starting). Counted: every state-DB repository call the taskmanager makes from the
// prepare to the task's end. `--src` runs the same scenario on another build (say the commit
// before flows waited on events, unpacked with `git archive <commit> src | tar -x -C <dir>`).
// Prints, asserts nothing.
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { fakeGuestHandlers, noCapabilities } from '../test/support/fake-guest.js';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, 'engine-ms': { type: 'string', default: '3000' }, src: { type: 'string' } },
});
const runs = Number(values.runs);
const engineMs = Number(values['engine-ms']);
const src = resolve(values.src ?? new URL('../src', import.meta.url).pathname);
const load = (path: string) => import(pathToFileURL(`${src}/${path}`).href);

const bus = (await load('bus/index.ts')) as typeof import('../src/bus/index.js');
const { startConductor } = (await load('conductor/index.ts')) as typeof import('../src/conductor/index.js');
const { startTaskmanager } = (await load('taskmanager/index.ts')) as typeof import('../src/taskmanager/index.js');
const { openStateStore } = (await load('db/index.ts')) as typeof import('../src/db/index.js');
const { silentLogger } = (await load('common/index.ts')) as typeof import('../src/common/index.js');
type StateStore = import('../src/db/index.js').StateStore;

/** The store as the taskmanager sees it, counting each repository call while `on`. */
function counting(store: StateStore) {
  const meter = { on: false, calls: 0, finishedAt: new Map<string, number>() };
  const wrapped = new Proxy(store, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (key === 'transaction' && typeof value === 'function') {
        return (...args: unknown[]) => {
          if (meter.on) meter.calls++;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      if (typeof value !== 'object' || value === null) return value;
      return new Proxy(value, {
        get(repo, method) {
          const fn: unknown = Reflect.get(repo, method);
          if (typeof fn !== 'function') return fn;
          return (...args: unknown[]) => {
            if (meter.on) meter.calls++;
            const result = (fn as (...a: unknown[]) => unknown).apply(repo, args);
            if (key === 'tasks' && method === 'finish') meter.finishedAt.set(String(args[0]), performance.now());
            return result;
          };
        },
      });
    },
  });
  return { meter, wrapped };
}

const store = await openStateStore('sqlite::memory:');
const transport = new bus.InProcessTransport();
const logger = silentLogger();
const conductor = await startConductor({ store, transport, logger });
const { meter, wrapped } = counting(store);
const taskmanager = await startTaskmanager({ store: wrapped, transport, logger, sweepIntervalMs: 2_000 });
await store.flavors.upsert({ id: 'f-small', name: 'small', ramMb: 512, vcpus: 1, diskGb: 1, ephemeralGb: 0 });
const datastore = await store.datastores.ensureDatastore('postgresql', randomUUID());
const version = await store.datastores.upsertVersion({
  id: randomUUID(),
  datastoreId: datastore.id,
  name: '15',
  version: '15.19',
  manager: 'postgresql',
  active: true,
  inactiveReason: null,
  updatedAt: new Date(),
});

const conductorClient = bus.createRpcClient(transport, bus.conductorContract, bus.conductorTopic);
const healthySentAt = new Map<string, number>();
await bus.serveRpc(transport, bus.agentContract, bus.agentTopic('bench-host'), {
  createServer: async ({ instanceId }) => {
    await bus.serveRpc(
      transport,
      bus.guestContract,
      bus.guestTopic(instanceId),
      fakeGuestHandlers({
        prepare: async () => {
          meter.on = true;
          await conductorClient.heartbeat({ instanceId, status: 'BUILDING' });
          setTimeout(() => {
            healthySentAt.set(instanceId, performance.now());
            void conductorClient.heartbeat({ instanceId, status: 'HEALTHY' });
          }, engineMs);
        },
      }),
    );
    return { instanceId, host: 'bench-host', address: '127.77.0.9', port: 5432 };
  },
  deleteServer: async () => ({ deleted: true }),
  upgradeServer: async () => {
    throw new Error('no upgrade is asked of this agent');
  },
  listServers: async () => [],
});
const engines = [{ datastore: 'postgresql', manager: 'postgresql', name: '15', version: '15.19', active: true, inactiveReason: null, capabilities: noCapabilities, parameters: [] }];
await conductorClient.agentHeartbeat({
  host: 'bench-host',
  engines,
  contracts: { [bus.agentContract.name]: bus.agentContract.version, [bus.guestContract.name]: bus.guestContract.version },
});

console.log(`build: ${src}; engine start ${engineMs} ms; ${runs} creates, one at a time`);
const rows: { queries: number; latencyMs: number }[] = [];
for (let run = 0; run < runs; run++) {
  const instanceId = randomUUID();
  const taskId = randomUUID();
  const now = new Date();
  await store.transaction(async (tx) => {
    await tx.instances.create({
      id: instanceId,
      name: `bench-${run}`,
      tenantId: 'project-1',
      flavorId: 'f-small',
      volumeSizeGb: 1,
      datastoreVersionId: version.id,
      taskStatus: 'BUILDING',
      taskDescription: 'Building the initial instance.',
      taskStartTime: now,
      access: null,
      createdAt: now,
      updatedAt: now,
    });
    await tx.serviceStatuses.set({ instanceId, status: 'NEW', updatedAt: now });
    await tx.tasks.create({
      id: taskId,
      instanceId,
      kind: 'create_instance',
      step: 'start',
      state: 'pending',
      owner: null,
      leaseExpiresAt: null,
      payload: { databases: [], users: [], access: null },
      attempts: 0,
      createdAt: now,
      updatedAt: now,
    });
  });
  meter.calls = 0;
  await bus.createRpcClient(transport, bus.taskmanagerContract, bus.taskmanagerTopic).runTask({ taskId });
  while (!meter.finishedAt.has(taskId)) await new Promise((r) => setTimeout(r, 5));
  meter.on = false;
  const latencyMs = meter.finishedAt.get(taskId)! - healthySentAt.get(instanceId)!;
  rows.push({ queries: meter.calls, latencyMs });
  console.log(`create ${run + 1}: ${meter.calls} state-DB calls from prepare to the task's end; HEALTHY heartbeat -> task end ${latencyMs.toFixed(1)} ms`);
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(
  `mean: ${mean(rows.map((r) => r.queries)).toFixed(1)} state-DB calls per create while waiting; ${mean(rows.map((r) => r.latencyMs)).toFixed(1)} ms from HEALTHY heartbeat to task end`,
);
await taskmanager.stop();
await conductor.stop();
await transport.close();
await store.close();
