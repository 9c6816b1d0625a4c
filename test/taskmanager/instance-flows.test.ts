import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import {
  agentContract,
  agentTopic,
  conductorContract,
  conductorTopic,
  createRpcClient,
  guestContract,
  guestTopic,
  InProcessTransport,
  serveRpc,
  taskmanagerContract,
  taskmanagerTopic,
  type PrepareInput,
  type Subscription,
} from '../../src/bus/index.js';
import { CofferError } from '../../src/common/errors.js';
import { silentLogger } from '../../src/common/logger.js';
import { startConductor, type Conductor } from '../../src/conductor/index.js';
import { openStateStore, type InstanceRow, type StateStore, type TaskRow } from '../../src/db/index.js';
import { startTaskmanager, type Taskmanager, type TaskmanagerOptions } from '../../src/taskmanager/index.js';
import { fakeGuestHandlers, noCapabilities } from '../support/fake-guest.js';
import { activePostgresql15 } from './datastore-fixture.js';
import { eventually } from '../support/wait.js';

// The create and delete flows end to end inside one process: the real taskmanager and conductor
// over a SQLite store and the in-process bus, with a fake agent and fake guests that answer as
// the real ones do (the agent places, the guest heartbeats through the conductor).

type GuestBehaviour = { kind: 'healthy'; afterMs?: number } | { kind: 'fails'; message: string } | { kind: 'silent' };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class FakeAgent {
  readonly created: string[] = [];
  readonly deleted: string[] = [];
  readonly prepares: PrepareInput[] = [];
  private subscription: Subscription | undefined;
  private readonly guests = new Map<string, Subscription>();
  deleteError: CofferError | undefined;
  readonly upgraded: Array<{ instanceId: string; version: string }> = [];
  upgradeError: CofferError | undefined;
  /** the data moves, but the engine then reports FAILED on the new version */
  upgradeBreaksEngine = false;

  constructor(
    private readonly transport: InProcessTransport,
    readonly host: string,
    private readonly guest: GuestBehaviour,
    /** whether this host has the binaries of the world's only engine version, postgresql 15 */
    private readonly runsPostgresql = true,
    /** the contract versions it reports: by default this build's, as a real agent reports them */
    private readonly contracts: Record<string, string> = { [agentContract.name]: agentContract.version, [guestContract.name]: guestContract.version },
  ) {}

  /** serves agent.<host> and announces itself to the conductor, as a starting agent does */
  async start(): Promise<void> {
    const conductor = createRpcClient(this.transport, conductorContract, conductorTopic);
    this.subscription = await serveRpc(this.transport, agentContract, agentTopic(this.host), {
      createServer: async ({ instanceId }) => {
        this.created.push(instanceId);
        if (!this.guests.has(instanceId)) this.guests.set(instanceId, await this.serveGuest(instanceId));
        return { instanceId, host: this.host, address: '127.77.0.9', port: 5432 };
      },
      deleteServer: async ({ instanceId }) => {
        this.deleted.push(instanceId);
        if (this.deleteError !== undefined) throw this.deleteError;
        await this.guests.get(instanceId)?.close();
        this.guests.delete(instanceId);
        return { deleted: true };
      },
      upgradeServer: async ({ instanceId, version }) => {
        this.upgraded.push({ instanceId, version });
        if (this.upgradeError !== undefined) throw this.upgradeError;
        if (this.upgradeBreaksEngine) {
          await createRpcClient(this.transport, conductorContract, conductorTopic).heartbeat({ instanceId, status: 'FAILED', message: 'PostgreSQL exited (code 1) while starting.' });
        }
        return { method: 'dump' };
      },
      listServers: async () => [],
    });
    const engines = this.runsPostgresql
      ? [{ datastore: 'postgresql', manager: 'postgresql', name: '15', version: '15.19', active: true, inactiveReason: null, capabilities: noCapabilities, parameters: [] }]
      : [{ datastore: 'postgresql', manager: 'postgresql', name: '15', version: '15', active: false, inactiveReason: 'no binaries', capabilities: noCapabilities, parameters: [] }];
    await conductor.agentHeartbeat({ host: this.host, engines, contracts: this.contracts });
  }

  /** the agent process goes away: its topic is no longer served */
  async stop(): Promise<void> {
    await this.subscription?.close();
    for (const guest of this.guests.values()) await guest.close();
    this.guests.clear();
  }

  private serveGuest(instanceId: string): Promise<Subscription> {
    const conductor = createRpcClient(this.transport, conductorContract, conductorTopic);
    const beat = (status: 'BUILDING' | 'HEALTHY' | 'FAILED', message?: string) =>
      conductor.heartbeat({ instanceId, status, ...(message === undefined ? {} : { message }) });
    return serveRpc(
      this.transport,
      guestContract,
      guestTopic(instanceId),
      fakeGuestHandlers({
        addReplica: async ({ replicaId }) => ({ address: '127.0.0.9', port: 5432, user: `os_repl_${replicaId}`, password: 'grant-password', slot: replicaId, adminPassword: 'source-admin' }),
        prepare: async (input) => {
          this.prepares.push(input);
          if (this.guest.kind === 'silent') return;
          await beat('BUILDING');
          // an engine that takes a while to start reports HEALTHY after the flow began waiting
          if (this.guest.kind === 'healthy' && this.guest.afterMs !== undefined) setTimeout(() => void beat('HEALTHY'), this.guest.afterMs);
          else if (this.guest.kind === 'healthy') await beat('HEALTHY');
          else await beat('FAILED', this.guest.message);
        },
      }),
    );
  }
}

interface World {
  store: StateStore;
  transport: InProcessTransport;
  flavorId: string;
  versionId: string;
  close(): Promise<void>;
}

async function startWorld(
  options: Partial<TaskmanagerOptions> = {},
  taskmanagerStore: (store: StateStore) => StateStore = (store) => store,
): Promise<World & { taskmanager: Taskmanager }> {
  const store = await openStateStore('sqlite::memory:');
  const transport = new InProcessTransport();
  const conductor: Conductor = await startConductor({ store, transport, logger: silentLogger() });
  await store.flavors.upsert({ id: 'f-small', name: 'small', ramMb: 512, vcpus: 1, diskGb: 1, ephemeralGb: 0 });
  const version = await activePostgresql15(store);
  const taskmanager = await startTaskmanager({
    store: taskmanagerStore(store),
    transport,
    logger: silentLogger(),
    leaseMs: 2_000,
    sweepIntervalMs: 50,
    statusPollMs: 10,
    agentAliveWindowMs: 30_000,
    ...options,
  });
  return {
    store,
    transport,
    taskmanager,
    flavorId: 'f-small',
    versionId: version.id,
    async close() {
      await taskmanager.stop();
      await conductor.stop();
      await transport.close();
      await store.close();
    },
  };
}

interface NewInstanceOptions {
  payload?: unknown;
  host?: string;
  replicaOf?: string;
  step?: string;
  createdAt?: Date;
}

/** What the API writes for POST /instances: the instance in BUILD, its status NEW, a pending task. */
async function requestCreate(world: World, options: NewInstanceOptions = {}): Promise<{ instanceId: string; taskId: string }> {
  const instanceId = randomUUID();
  const taskId = randomUUID();
  const now = options.createdAt ?? new Date();
  await world.store.transaction(async (tx) => {
    await tx.instances.create({
      id: instanceId,
      name: 'db1',
      tenantId: 'project-1',
      flavorId: world.flavorId,
      volumeSizeGb: 1,
      datastoreVersionId: world.versionId,
      taskStatus: 'BUILDING',
      taskDescription: 'Building the initial instance.',
      taskStartTime: now,
      access: null,
      createdAt: now,
      updatedAt: now,
    });
    if (options.host !== undefined) await tx.instances.update(instanceId, { host: options.host });
    if (options.replicaOf !== undefined) await tx.instances.update(instanceId, { replicaOfId: options.replicaOf });
    await tx.serviceStatuses.set({ instanceId, status: 'NEW', updatedAt: now });
    await tx.tasks.create(task(taskId, instanceId, 'create_instance', options.payload ?? defaultPayload, options.step ?? 'start'));
  });
  await wake(world, taskId);
  return { instanceId, taskId };
}

const defaultPayload = {
  databases: [{ name: 'app' }],
  users: [{ name: 'app', password: 'App-user-pass-1234', databases: [{ name: 'app' }] }],
  access: null,
};

function task(id: string, instanceId: string, kind: TaskRow['kind'], payload: unknown, step = 'start'): TaskRow {
  const now = new Date();
  return { id, instanceId, kind, step, state: 'pending', owner: null, leaseExpiresAt: null, payload, attempts: 0, createdAt: now, updatedAt: now };
}

async function wake(world: World, taskId: string): Promise<void> {
  await createRpcClient(world.transport, taskmanagerContract, taskmanagerTopic).runTask({ taskId });
}

/** What the API does for DELETE /instances/{id} on an instance that is up. */
async function requestDelete(world: World, instanceId: string): Promise<string> {
  const taskId = randomUUID();
  await world.store.transaction(async (tx) => {
    await tx.instances.update(instanceId, { taskStatus: 'DELETING', taskDescription: 'Deleting the instance.' });
    await tx.tasks.create(task(taskId, instanceId, 'delete_instance', {}));
  });
  await wake(world, taskId);
  return taskId;
}

async function builtInstance(world: World, instanceId: string): Promise<InstanceRow> {
  const instance = await eventually('the build to end', () => world.store.instances.get(instanceId), (i) => i?.taskStatus !== 'BUILDING');
  return instance!;
}

async function endedTask(world: World, taskId: string): Promise<TaskRow> {
  const ended = await eventually('the task to end', () => world.store.tasks.get(taskId), (t) => t?.state === 'done' || t?.state === 'failed');
  return ended!;
}

test('create places the instance, prepares its guest and ends ACTIVE, clearing the secrets of the task', async () => {
  const world = await startWorld();
  const agent = new FakeAgent(world.transport, 'host-1', { kind: 'healthy' });
  try {
    await agent.start();
    const { instanceId, taskId } = await requestCreate(world);
    const instance = await builtInstance(world, instanceId);
    assert.equal(instance.taskStatus, 'NONE');
    assert.deepEqual([instance.desiredGeneration, instance.appliedGeneration], [1, 1], 'the create is live');
    assert.deepEqual([instance.host, instance.address, instance.port], ['host-1', '127.77.0.9', 5432]);
    assert.equal((await world.store.serviceStatuses.get(instanceId))?.status, 'HEALTHY');
    const ended = await endedTask(world, taskId);
    assert.equal(ended.state, 'done');
    assert.equal(ended.payload, null, 'user and admin passwords leave the task row');
    assert.equal(agent.prepares.length, 1);
    const prepare = agent.prepares[0]!;
    assert.deepEqual(prepare.users.map((u) => [u.name, u.password]), [['app', 'App-user-pass-1234']]);
    assert.deepEqual(prepare.databases.map((d) => d.name), ['app']);
    assert.equal(prepare.memoryMb, 512);
    assert.match(prepare.adminPassword, /^[A-Za-z0-9]{36}$/);
    assert.equal(prepare.generation, 1);
  } finally {
    await agent.stop();
    await world.close();
  }
});

test('create ends on the conductor\'s status event, not on a poll: with a one-minute safety net it still ends at once', async () => {
  const world = await startWorld({ statusPollMs: 60_000 });
  const agent = new FakeAgent(world.transport, 'host-1', { kind: 'healthy', afterMs: 500 });
  try {
    await agent.start();
    const started = Date.now();
    const { instanceId, taskId } = await requestCreate(world);
    const instance = await builtInstance(world, instanceId);
    assert.equal(instance.taskStatus, 'NONE');
    assert.equal((await endedTask(world, taskId)).state, 'done');
    assert.ok(Date.now() - started < 10_000, `ended in ${Date.now() - started} ms, long before the safety net`);
  } finally {
    await agent.stop();
    await world.close();
  }
});

test('create with no agent alive ends in ERROR with a fault telling to start one, before the build timeout', async () => {
  const world = await startWorld({ buildTimeoutMs: 60_000, noHostWaitMs: 300 });
  try {
    const { instanceId, taskId } = await requestCreate(world);
    const instance = await builtInstance(world, instanceId);
    assert.equal(instance.taskStatus, 'BUILDING_ERROR_SERVER');
    assert.match((await world.store.faults.latest(instanceId))?.message ?? '', /start one with `coffer agent`/);
    const ended = await endedTask(world, taskId);
    assert.equal(ended.state, 'failed');
    assert.equal(ended.payload, null, 'a failed task keeps no secrets either');
  } finally {
    await world.close();
  }
});

test('a build failure the database cannot record at first is recorded once it answers: never a failed task in BUILD', async () => {
  let refusals = 0;
  // The taskmanager's first transaction (recording the failure) meets a database that is away.
  const flaky = (store: StateStore): StateStore =>
    new Proxy(store, {
      get(target, prop) {
        if (prop === 'transaction') {
          return (fn: Parameters<StateStore['transaction']>[0]) => {
            if (++refusals === 1) return Promise.reject(new Error('Connection lost: The server closed the connection.'));
            return target.transaction(fn);
          };
        }
        const value: unknown = Reflect.get(target, prop);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  const world = await startWorld({ buildTimeoutMs: 300 }, flaky);
  try {
    const { instanceId, taskId } = await requestCreate(world);
    const ended = await endedTask(world, taskId);
    assert.equal(ended.state, 'failed');
    assert.equal((await world.store.instances.get(instanceId))?.taskStatus, 'BUILDING_ERROR_SERVER');
    assert.match((await world.store.faults.latest(instanceId))?.message ?? '', /coffer agent/);
    assert.ok(refusals >= 2);
  } finally {
    await world.close();
  }
});

test('a guest reporting FAILED ends the build in ERROR with the guest’s own message', async () => {
  const world = await startWorld();
  const agent = new FakeAgent(world.transport, 'host-1', { kind: 'fails', message: 'initdb: No space left on device' });
  try {
    await agent.start();
    const { instanceId, taskId } = await requestCreate(world);
    const instance = await builtInstance(world, instanceId);
    assert.equal(instance.taskStatus, 'BUILDING_ERROR_SERVER');
    assert.equal(instance.appliedGeneration, 0, 'a failed build applied nothing');
    assert.equal((await world.store.faults.latest(instanceId))?.message, 'initdb: No space left on device');
    assert.equal((await endedTask(world, taskId)).payload, null);
  } finally {
    await agent.stop();
    await world.close();
  }
});

test('a guest that never reports a healthy engine times out as BUILDING_ERROR_TIMEOUT_GA', async () => {
  const world = await startWorld({ buildTimeoutMs: 800 });
  const agent = new FakeAgent(world.transport, 'host-1', { kind: 'silent' });
  try {
    await agent.start();
    const { instanceId, taskId } = await requestCreate(world);
    const instance = await builtInstance(world, instanceId);
    assert.equal(instance.taskStatus, 'BUILDING_ERROR_TIMEOUT_GA');
    assert.equal((await world.store.serviceStatuses.get(instanceId))?.status, 'FAILED_TIMEOUT_GUESTAGENT');
    assert.match((await world.store.faults.latest(instanceId))?.message ?? '', /did not report a healthy engine in time/);
    const ended = await endedTask(world, taskId);
    assert.equal(ended.state, 'failed');
    assert.equal(ended.payload, null);
  } finally {
    await agent.stop();
    await world.close();
  }
});

test('a create task whose payload cannot be read fails the build instead of leaving it in BUILD', async () => {
  const world = await startWorld();
  const agent = new FakeAgent(world.transport, 'host-1', { kind: 'healthy' });
  try {
    await agent.start();
    const { instanceId, taskId } = await requestCreate(world, { payload: { users: 'not a list' } });
    const instance = await builtInstance(world, instanceId);
    assert.equal(instance.taskStatus, 'BUILDING_ERROR_SERVER');
    assert.ok((await world.store.faults.latest(instanceId)) !== undefined, 'the ERROR says why');
    assert.equal((await endedTask(world, taskId)).state, 'failed');
    assert.deepEqual(agent.created, [], 'nothing was placed');
  } finally {
    await agent.stop();
    await world.close();
  }
});

test('a create is placed only on a host that can run its engine version', async () => {
  const world = await startWorld();
  const without = new FakeAgent(world.transport, 'host-without', { kind: 'healthy' }, false);
  const able = new FakeAgent(world.transport, 'host-able', { kind: 'healthy' });
  try {
    await without.start();
    await able.start();
    // Six creates: a random pick over both hosts would miss host-without only once in 64 runs.
    for (let i = 0; i < 6; i++) {
      const { instanceId } = await requestCreate(world);
      assert.equal((await builtInstance(world, instanceId)).host, 'host-able');
    }
    assert.deepEqual(without.created, []);
  } finally {
    await without.stop();
    await able.stop();
    await world.close();
  }
});

test('creates go to the host holding the fewest instances: they spread over the hosts, and a host that joins takes the next ones', async () => {
  const world = await startWorld();
  const first = new FakeAgent(world.transport, 'host-first', { kind: 'healthy' });
  const joining = new FakeAgent(world.transport, 'host-joining', { kind: 'healthy' });
  try {
    await first.start();
    for (let i = 0; i < 3; i++) assert.equal((await builtInstance(world, (await requestCreate(world)).instanceId)).host, 'host-first');
    await joining.start();
    // host-first holds three: the next three go to the newcomer, then they alternate by load
    const hosts: string[] = [];
    for (let i = 0; i < 5; i++) hosts.push((await builtInstance(world, (await requestCreate(world)).instanceId)).host!);
    assert.deepEqual(hosts.slice(0, 3), ['host-joining', 'host-joining', 'host-joining']);
    assert.deepEqual(hosts.slice(3).sort(), ['host-first', 'host-joining']);
  } finally {
    await first.stop();
    await joining.stop();
    await world.close();
  }
});

test('replicas go to a host none of their group is on when there is one (anti-affinity), beside their source when asked (affinity), and anywhere when one host is all there is', async () => {
  const world = await startWorld();
  const agents = ['host-a', 'host-b', 'host-c'].map((host) => new FakeAgent(world.transport, host, { kind: 'healthy' }));
  try {
    await agents[0]!.start();
    const source = (await requestCreate(world)).instanceId;
    assert.equal((await builtInstance(world, source)).host, 'host-a');
    // one host only: the replica goes beside its source rather than nowhere
    const lonely = (await requestCreate(world, { replicaOf: source })).instanceId;
    assert.equal((await builtInstance(world, lonely)).host, 'host-a');
    await agents[1]!.start();
    await agents[2]!.start();
    // host-a holds the most, yet affinity puts the replica there
    const near = (await requestCreate(world, { replicaOf: source, payload: { ...defaultPayload, locality: 'affinity' } })).instanceId;
    assert.equal((await builtInstance(world, near)).host, 'host-a');
    // anti-affinity (the default): host-b or host-c, then the other one
    const first = (await builtInstance(world, (await requestCreate(world, { replicaOf: source })).instanceId)).host!;
    const second = (await builtInstance(world, (await requestCreate(world, { replicaOf: source })).instanceId)).host!;
    assert.deepEqual([first, second].sort(), ['host-b', 'host-c']);
  } finally {
    for (const agent of agents) await agent.stop();
    await world.close();
  }
});

test("a replica's prepare carries its source's newest completed backup chain and archived log to start from, and nothing when the source has none", async () => {
  const world = await startWorld();
  const agent = new FakeAgent(world.transport, 'host-a', { kind: 'healthy' });
  try {
    await agent.start();
    const source = (await requestCreate(world)).instanceId;
    await builtInstance(world, source);
    await builtInstance(world, (await requestCreate(world, { replicaOf: source })).instanceId);
    const wrappedKey = await world.store.projectKeys.getOrCreate('project-1', 'wrapped-project-key', new Date());
    const backup = async (id: string, at: number, options: { parentId?: string; state?: 'COMPLETED' | 'FAILED' } = {}) => {
      const when = new Date(Date.now() - 60_000 + at);
      await world.store.backups.create({
        id, tenantId: 'project-1', name: id, description: null, instanceId: source, parentId: options.parentId ?? null, datastoreVersionId: world.versionId,
        backupType: options.parentId === undefined ? 'full' : 'incremental', state: options.state ?? 'COMPLETED', container: 'database_backups',
        objectName: `${id}.postgresql.zst.enc`, createdAt: when, updatedAt: when,
      });
      await world.store.backups.update(id, { sha256: 'a'.repeat(64), sizeBytes: 1, facts: { 'wal-container': 'database_backups', 'wal-prefix': `${source}/wal` } });
    };
    await backup('full-1', 0);
    await backup('incremental-1', 1000, { parentId: 'full-1' });
    await backup('failed-later', 2000, { state: 'FAILED' });
    await builtInstance(world, (await requestCreate(world, { replicaOf: source })).instanceId);
    const [, plain, seeded] = agent.prepares;
    assert.ok(plain?.replicaOf !== undefined && plain.restore === undefined, 'no backup, no seed: the replica copies its source');
    assert.ok(seeded?.replicaOf !== undefined);
    assert.deepEqual(seeded.restore?.chain.map((link) => [link.backupId, link.kind, link.wrappedKey]), [
      ['full-1', 'full', wrappedKey],
      ['incremental-1', 'incremental', wrappedKey],
    ]);
    assert.deepEqual(seeded.restore?.pointInTime, { container: 'database_backups', prefix: `${source}/wal`, wrappedKey });
  } finally {
    await agent.stop();
    await world.close();
  }
});

test('a create with only hosts that lack its engine ends in ERROR saying what to install', async () => {
  const world = await startWorld({ noHostWaitMs: 300 });
  const without = new FakeAgent(world.transport, 'host-without', { kind: 'healthy' }, false);
  try {
    await without.start();
    const { instanceId } = await requestCreate(world);
    assert.equal((await builtInstance(world, instanceId)).taskStatus, 'BUILDING_ERROR_SERVER');
    assert.match((await world.store.faults.latest(instanceId))?.message ?? '', /can run postgresql 15: install its binaries/);
  } finally {
    await without.stop();
    await world.close();
  }
});

test('a create goes only to an agent that serves the contract versions the taskmanager sends', async () => {
  const world = await startWorld({ noHostWaitMs: 300 });
  const newer = new FakeAgent(world.transport, 'host-newer', { kind: 'healthy' }, true, { agent: '2.0', guest: '2.0' });
  const current = new FakeAgent(world.transport, 'host-current', { kind: 'healthy' }, true, {
    agent: agentContract.version,
    guest: guestContract.version,
  });
  try {
    await newer.start();
    await current.start();
    for (let i = 0; i < 4; i++) {
      const { instanceId } = await requestCreate(world);
      assert.equal((await builtInstance(world, instanceId)).taskStatus, 'NONE');
    }
    assert.equal(newer.created.length, 0, 'never placed on an agent of another major version');
    assert.equal(current.created.length, 4);
  } finally {
    await newer.stop();
    await current.stop();
    await world.close();
  }
});

test('a create whose only capable agents speak other contract versions ends in ERROR saying which', async () => {
  const world = await startWorld({ noHostWaitMs: 300 });
  const older = new FakeAgent(world.transport, 'host-older', { kind: 'healthy' }, true, { agent: agentContract.version, guest: '0.9' });
  try {
    await older.start();
    const { instanceId } = await requestCreate(world);
    assert.equal((await builtInstance(world, instanceId)).taskStatus, 'BUILDING_ERROR_SERVER');
    assert.deepEqual(older.created, []);
    const fault = (await world.store.faults.latest(instanceId))?.message ?? '';
    assert.match(fault, new RegExp(`host-older does not serve guest ${guestContract.version.replace('.', '\\.')} \\(it serves 0\\.9\\)`));
    assert.match(fault, /Run the same Coffer version on the taskmanager and the agents/);
  } finally {
    await older.stop();
    await world.close();
  }
});

test('a resumed create does not send to its recorded host once that agent speaks other contract versions', async () => {
  const world = await startWorld();
  const agent = new FakeAgent(world.transport, 'host-a', { kind: 'healthy' }, true, { agent: '2.0', guest: '2.0' });
  try {
    await agent.start();
    const { instanceId } = await requestCreate(world, { host: 'host-a' });
    assert.equal((await builtInstance(world, instanceId)).taskStatus, 'BUILDING_ERROR_SERVER');
    assert.deepEqual(agent.created, []);
    assert.match((await world.store.faults.latest(instanceId))?.message ?? '', new RegExp(`host-a does not serve agent ${agentContract.version.replace(".", "\\.")} \\(it serves 2\\.0\\), guest`));
  } finally {
    await agent.stop();
    await world.close();
  }
});

test('a create resumed after its host was recorded goes back to that host, not another', async () => {
  const world = await startWorld();
  const hostA = new FakeAgent(world.transport, 'host-a', { kind: 'healthy' });
  const hostB = new FakeAgent(world.transport, 'host-b', { kind: 'healthy' });
  try {
    await hostA.start();
    await hostB.start();
    // The taskmanager died after recording the host and before recording the step.
    const { instanceId } = await requestCreate(world, { host: 'host-b' });
    assert.equal((await builtInstance(world, instanceId)).taskStatus, 'NONE');
    assert.deepEqual(hostA.created, []);
    assert.deepEqual(hostB.created, [instanceId]);
  } finally {
    await hostA.stop();
    await hostB.stop();
    await world.close();
  }
});

test('a create resumed after placing resends prepare with the password it recorded, without placing again', async () => {
  const world = await startWorld();
  const agent = new FakeAgent(world.transport, 'host-a', { kind: 'healthy' });
  try {
    await agent.start();
    const recorded = 'Recorded-admin-password-0123456789ab';
    const { instanceId } = await requestCreate(world, { host: 'host-a', step: 'placed', payload: { ...defaultPayload, adminPassword: recorded } });
    // The server the dead taskmanager had placed: its guest serves the instance's topic.
    await createRpcClient(world.transport, agentContract, agentTopic('host-a')).createServer({
      instanceId,
      engine: { manager: 'postgresql', version: '15' },
      flavor: { id: 'f-small', ramMb: 512, vcpus: 1 },
      volumeSizeGb: 1,
    });
    assert.equal((await builtInstance(world, instanceId)).taskStatus, 'NONE');
    assert.deepEqual(agent.created, [instanceId], 'only the placement made above, none by the resumed task');
    assert.deepEqual(agent.prepares.map((p) => p.adminPassword), [recorded]);
  } finally {
    await agent.stop();
    await world.close();
  }
});

test('a create taken up only after the build timeout fails without placing the instance', async () => {
  const world = await startWorld({ buildTimeoutMs: 60_000 });
  const agent = new FakeAgent(world.transport, 'host-1', { kind: 'healthy' });
  try {
    await agent.start();
    const { instanceId } = await requestCreate(world, { createdAt: new Date(Date.now() - 120_000) });
    const instance = await builtInstance(world, instanceId);
    assert.equal(instance.taskStatus, 'BUILDING_ERROR_TIMEOUT_GA');
    assert.deepEqual(agent.created, [], 'no engine is started for an instance that is failed at once');
    assert.deepEqual(agent.prepares, []);
  } finally {
    await agent.stop();
    await world.close();
  }
});

test('a delete asked while the agent is down completes once the agent is back', async () => {
  const world = await startWorld();
  const agent = new FakeAgent(world.transport, 'host-1', { kind: 'healthy' });
  try {
    await agent.start();
    const { instanceId } = await requestCreate(world);
    assert.equal((await builtInstance(world, instanceId)).taskStatus, 'NONE');
    await agent.stop();

    const taskId = await requestDelete(world, instanceId);
    await sleep(300);
    assert.equal((await world.store.instances.get(instanceId))?.taskStatus, 'DELETING', 'the delete waits for the agent');
    assert.equal((await world.store.tasks.get(taskId))?.state, 'running');

    await agent.start();
    await eventually('the instance to be deleted', () => world.store.instances.get(instanceId), (i) => i === undefined);
    assert.deepEqual(agent.deleted, [instanceId]);
    assert.equal((await world.store.serviceStatuses.get(instanceId))?.status, 'DELETED');
    assert.equal((await endedTask(world, taskId)).state, 'done');
  } finally {
    await agent.stop();
    await world.close();
  }
});

test('a delete the agent refuses ends in ERROR with the agent’s reason, and can be asked again', async () => {
  const world = await startWorld();
  const agent = new FakeAgent(world.transport, 'host-1', { kind: 'healthy' });
  try {
    await agent.start();
    const { instanceId } = await requestCreate(world);
    assert.equal((await builtInstance(world, instanceId)).taskStatus, 'NONE');
    agent.deleteError = new CofferError('EngineError', 'pg_ctl stop failed: device busy.');
    const first = await requestDelete(world, instanceId);
    assert.equal((await endedTask(world, first)).state, 'failed');
    assert.equal((await world.store.instances.get(instanceId))?.taskStatus, 'DELETING_ERROR');
    const fault = (await world.store.faults.latest(instanceId))?.message ?? '';
    assert.match(fault, /pg_ctl stop failed: device busy\./);
    assert.doesNotMatch(fault, /start the .*agent/i, 'the agent answered: starting it is not the fix');

    agent.deleteError = undefined;
    const second = await requestDelete(world, instanceId);
    assert.equal((await endedTask(world, second)).state, 'done');
    assert.equal(await world.store.instances.get(instanceId), undefined);
  } finally {
    await agent.stop();
    await world.close();
  }
});

test('a taskmanager that cannot subscribe fails to start and claims nothing', async () => {
  const store = await openStateStore('sqlite::memory:');
  const transport = new InProcessTransport();
  try {
    await store.tasks.create(task('t-orphan', 'i-orphan', 'delete_instance', {}));
    await transport.close();
    await assert.rejects(
      startTaskmanager({ store, transport, logger: silentLogger(), sweepIntervalMs: 10 }),
      { code: 'BusUnavailable' },
    );
    await sleep(200);
    assert.equal((await store.tasks.get('t-orphan'))?.state, 'pending', 'no sweep was left running');
  } finally {
    await store.close();
  }
});

/** What the API writes for PATCH datastore_version: the instance UPGRADING and a pending upgrade task. */
async function requestUpgrade(world: World, instanceId: string, toVersionId: string): Promise<string> {
  const taskId = randomUUID();
  await world.store.transaction(async (tx) => {
    await tx.instances.update(instanceId, { taskStatus: 'UPGRADING', taskDescription: 'Upgrading the instance.' });
    await tx.tasks.create(task(taskId, instanceId, 'upgrade', { fromVersionId: world.versionId, toVersionId }));
  });
  await wake(world, taskId);
  return taskId;
}

test('an upgrade asks the instance’s agent to move it to the new version, which the instance takes only then; a refused one keeps its version with the agent’s reason', async () => {
  const world = await startWorld();
  const agent = new FakeAgent(world.transport, 'host-1', { kind: 'healthy' });
  try {
    await agent.start();
    const current = (await world.store.datastores.getVersion(world.versionId))!;
    const newer = await world.store.datastores.upsertVersion({ ...current, id: randomUUID(), name: '16', version: '16.4', updatedAt: new Date() });
    const { instanceId } = await requestCreate(world);
    assert.equal((await builtInstance(world, instanceId)).taskStatus, 'NONE');

    agent.upgradeError = new CofferError('EngineError', 'pg_upgrade --check refused the upgrade: the instance keeps its version and data.');
    const refused = await requestUpgrade(world, instanceId, newer.id);
    assert.equal((await endedTask(world, refused)).state, 'failed');
    const kept = await world.store.instances.get(instanceId);
    assert.equal(kept?.taskStatus, 'NONE');
    assert.equal(kept?.datastoreVersionId, world.versionId);
    assert.match((await world.store.faults.latest(instanceId))?.message ?? '', /^Upgrade failed: pg_upgrade --check refused the upgrade.*The instance keeps version 15\.$/);

    agent.upgradeError = undefined;
    const done = await requestUpgrade(world, instanceId, newer.id);
    assert.equal((await endedTask(world, done)).state, 'done');
    const upgraded = await world.store.instances.get(instanceId);
    assert.equal(upgraded?.taskStatus, 'NONE');
    assert.equal(upgraded?.datastoreVersionId, newer.id);
    assert.deepEqual(agent.upgraded, [
      { instanceId, version: '16' },
      { instanceId, version: '16' },
    ]);

    // the data moved but the engine does not come up: the instance says it runs the new version, and why it is down
    const newest = await world.store.datastores.upsertVersion({ ...current, id: randomUUID(), name: '17', version: '17.2', updatedAt: new Date() });
    agent.upgradeBreaksEngine = true;
    const broken = await requestUpgrade(world, instanceId, newest.id);
    assert.equal((await endedTask(world, broken)).state, 'failed');
    assert.equal((await world.store.instances.get(instanceId))?.datastoreVersionId, newest.id);
    assert.match((await world.store.faults.latest(instanceId))?.message ?? '', /^The instance's data was upgraded, but its engine did not come up on the new version: /);
  } finally {
    await agent.stop();
    await world.close();
  }
});
