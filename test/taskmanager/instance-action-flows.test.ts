import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, test } from 'node:test';
import {
  conductorContract,
  conductorTopic,
  createRpcClient,
  guestContract,
  guestTopic,
  InProcessTransport,
  serveRpc,
  taskmanagerContract,
  taskmanagerTopic,
  type AccessSpec,
  type RpcHandlers,
  type Subscription,
} from '../../src/bus/index.js';
import { CofferError } from '../../src/common/errors.js';
import { silentLogger } from '../../src/common/logger.js';
import { startConductor, type Conductor } from '../../src/conductor/index.js';
import { openStateStore, type InstanceAccess, type StateStore, type TaskKind, type TaskRow, type TaskStatusName } from '../../src/db/index.js';
import { startTaskmanager, type Taskmanager } from '../../src/taskmanager/index.js';
import { fakeGuestHandlers } from '../support/fake-guest.js';
import { activePostgresql15 } from './datastore-fixture.js';
import { eventually } from '../support/wait.js';

// The restart, stop, start, resize and access flows inside one process: the real taskmanager and conductor
// over a SQLite store and the in-process bus, with a fake guest that answers and heartbeats as
// the real one does. Each test writes what the API writes (the task status and a pending task
// row) and wakes the taskmanager.

let store: StateStore;
let transport: InProcessTransport;
let conductor: Conductor;
let taskmanager: Taskmanager;
const guests: Subscription[] = [];

beforeEach(async () => {
  store = await openStateStore('sqlite::memory:');
  transport = new InProcessTransport();
  conductor = await startConductor({ store, transport, logger: silentLogger() });
  await store.flavors.upsert({ id: 'f-small', name: 'small', ramMb: 512, vcpus: 1, diskGb: 0, ephemeralGb: 0 });
  await store.flavors.upsert({ id: 'f-large', name: 'large', ramMb: 2048, vcpus: 2, diskGb: 0, ephemeralGb: 0 });
  taskmanager = await startTaskmanager({
    store,
    transport,
    logger: silentLogger(),
    leaseMs: 2_000,
    sweepIntervalMs: 50,
    statusPollMs: 10,
    healthyWaitMs: 2_000,
    actionTimeoutMs: 2_000,
  });
});

afterEach(async () => {
  for (const guest of guests.splice(0)) await guest.close();
  await taskmanager.stop();
  await conductor.stop();
  await transport.close();
  await store.close();
});

/** A running instance, as a finished create leaves it. */
async function runningInstance(access: InstanceAccess | null = null): Promise<string> {
  const id = randomUUID();
  const version = await activePostgresql15(store);
  const now = new Date();
  await store.instances.create({
    id,
    name: 'db1',
    tenantId: 'project-1',
    flavorId: 'f-small',
    volumeSizeGb: 2,
    datastoreVersionId: version.id,
    taskStatus: 'NONE',
    taskDescription: 'No tasks for the instance.',
    taskStartTime: null,
    access,
    createdAt: now,
    updatedAt: now,
  });
  await store.instances.update(id, { host: 'host-1', address: '127.95.0.9', port: 5432 });
  await store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: now });
  return id;
}

/** A guest that heartbeats through the conductor as the real one does around its operations. */
async function serveGuest(instanceId: string, overrides: Partial<RpcHandlers<typeof guestContract>> = {}): Promise<void> {
  guests.push(await serveRpc(transport, guestContract, guestTopic(instanceId), fakeGuestHandlers(overrides)));
}

function heartbeat(instanceId: string, status: 'RESTARTING' | 'HEALTHY' | 'FAILED' | 'SHUTDOWN', message?: string): Promise<void> {
  return createRpcClient(transport, conductorContract, conductorTopic).heartbeat({ instanceId, status, ...(message === undefined ? {} : { message }) });
}

/** What the API writes for an action: the task status, a pending task row; then the wake-up cast. */
async function requestAction(
  instanceId: string,
  kind: TaskKind,
  taskStatus: TaskStatusName,
  payload: unknown,
  options: { step?: string; service?: 'RESTARTING' } = {},
): Promise<string> {
  const taskId = randomUUID();
  const now = new Date();
  await store.transaction(async (tx) => {
    await tx.instances.update(instanceId, { taskStatus, taskDescription: 'an action', taskStartTime: now });
    if (options.service !== undefined) await tx.serviceStatuses.set({ instanceId, status: options.service, updatedAt: now });
    const task: TaskRow = {
      id: taskId,
      instanceId,
      kind,
      step: options.step ?? 'start',
      state: 'pending',
      owner: null,
      leaseExpiresAt: null,
      payload,
      attempts: 0,
      createdAt: now,
      updatedAt: now,
    };
    await tx.tasks.create(task);
  });
  await createRpcClient(transport, taskmanagerContract, taskmanagerTopic).runTask({ taskId });
  return taskId;
}

async function endedTask(taskId: string): Promise<TaskRow> {
  return (await eventually('the task to end', () => store.tasks.get(taskId), (t) => t?.state === 'done' || t?.state === 'failed'))!;
}

test('restart: the guest restarts the engine, and the task ends once the conductor has a healthy heartbeat', async () => {
  const id = await runningInstance();
  let restarts = 0;
  let statusDuringRestart: string | undefined;
  await serveGuest(id, {
    restart: async () => {
      restarts += 1;
      statusDuringRestart = (await store.instances.get(id))?.taskStatus;
      await heartbeat(id, 'RESTARTING');
      await heartbeat(id, 'HEALTHY');
      return {};
    },
  });
  const taskId = await requestAction(id, 'restart', 'REBOOTING', { requestId: 'req-1' }, { service: 'RESTARTING' });
  const ended = await endedTask(taskId);
  assert.equal(ended.state, 'done');
  assert.equal(restarts, 1);
  assert.equal(statusDuringRestart, 'REBOOTING');
  const instance = await store.instances.get(id);
  assert.equal(instance?.taskStatus, 'NONE');
  assert.equal(instance?.taskStartTime, null);
  assert.equal((await store.serviceStatuses.get(id))?.status, 'HEALTHY');
  assert.equal(await store.faults.latest(id), undefined);
});

test('restart resumed after the guest answered does not restart the engine a second time', async () => {
  const id = await runningInstance();
  let restarts = 0;
  await serveGuest(id, {
    restart: async () => {
      restarts += 1;
      return {};
    },
  });
  const taskId = await requestAction(id, 'restart', 'REBOOTING', {}, { step: 'restarted' });
  assert.equal((await endedTask(taskId)).state, 'done');
  assert.equal(restarts, 0);
  assert.equal((await store.instances.get(id))?.taskStatus, 'NONE');
});

test('a restart the guest fails ends with no task and a fault saying why', async () => {
  const id = await runningInstance();
  await serveGuest(id, {
    restart: async () => {
      throw new CofferError('EngineError', 'postgres: could not bind to 127.95.0.9:5432');
    },
  });
  const taskId = await requestAction(id, 'restart', 'REBOOTING', {}, { service: 'RESTARTING' });
  assert.equal((await endedTask(taskId)).state, 'failed');
  assert.equal((await store.instances.get(id))?.taskStatus, 'NONE');
  assert.equal((await store.faults.latest(id))?.message, 'Restart failed: postgres: could not bind to 127.95.0.9:5432');
});

test('a restarted engine that never reports healthy ends the restart with a fault after the wait', async () => {
  const id = await runningInstance();
  await serveGuest(id); // answers restart but sends no heartbeat
  const taskId = await requestAction(id, 'restart', 'REBOOTING', {}, { service: 'RESTARTING' });
  assert.equal((await endedTask(taskId)).state, 'failed');
  assert.equal((await store.instances.get(id))?.taskStatus, 'NONE');
  assert.match((await store.faults.latest(id))?.message ?? '', /^Restart failed: The engine did not report itself healthy within 2 s\.$/);
});

test('an instance reset while its restart runs is left as the reset made it, without a fault', async () => {
  const id = await runningInstance();
  await serveGuest(id, {
    restart: async () => {
      // reset_status, as the API does it, while the guest is busy
      await store.instances.update(id, { taskStatus: 'NONE', taskDescription: 'No tasks for the instance.' });
      await store.serviceStatuses.set({ instanceId: id, status: 'UNKNOWN', updatedAt: new Date() });
      throw new CofferError('GuestTimeout', 'the engine did not stop');
    },
  });
  const taskId = await requestAction(id, 'restart', 'REBOOTING', {}, { service: 'RESTARTING' });
  await endedTask(taskId);
  assert.equal((await store.instances.get(id))?.taskStatus, 'NONE');
  assert.equal((await store.serviceStatuses.get(id))?.status, 'UNKNOWN');
  assert.equal(await store.faults.latest(id), undefined, 'the reset is what the user asked for last');
});

test('resize flavor: the guest re-renders the engine for the new RAM; then the instance takes the new flavor', async () => {
  const id = await runningInstance();
  const asked: number[] = [];
  await serveGuest(id, {
    resize: async ({ memoryMb }) => {
      asked.push(memoryMb);
      assert.equal((await store.instances.get(id))?.flavorId, 'f-small', 'the old flavor stays until the engine runs with the new one');
      return {};
    },
  });
  const taskId = await requestAction(id, 'resize_flavor', 'RESIZING', { oldFlavorId: 'f-small', newFlavorId: 'f-large' });
  assert.equal((await endedTask(taskId)).state, 'done');
  assert.deepEqual(asked, [2048]);
  const instance = await store.instances.get(id);
  assert.equal(instance?.flavorId, 'f-large');
  assert.equal(instance?.taskStatus, 'NONE');
});

test('a flavor resize the guest fails returns the engine to the old flavor and keeps it, with a fault', async () => {
  const id = await runningInstance();
  const asked: number[] = [];
  await serveGuest(id, {
    resize: async ({ memoryMb }) => {
      asked.push(memoryMb);
      if (memoryMb === 2048) throw new CofferError('EngineError', 'could not map shared memory segment');
      return {};
    },
  });
  const taskId = await requestAction(id, 'resize_flavor', 'RESIZING', { oldFlavorId: 'f-small', newFlavorId: 'f-large' });
  assert.equal((await endedTask(taskId)).state, 'failed');
  assert.deepEqual(asked, [2048, 512], 'asked for the new RAM, then back to the old');
  const instance = await store.instances.get(id);
  assert.equal(instance?.flavorId, 'f-small');
  assert.equal(instance?.taskStatus, 'NONE');
  assert.equal(
    (await store.faults.latest(id))?.message,
    'Resize to a new flavor failed: could not map shared memory segment. The instance keeps flavor f-small.',
  );
});

test('a flavor resize sends the desired generation read when it runs and records what the guest applied', async () => {
  const id = await runningInstance();
  // as the API leaves it: the create applied (1), the resize raised desired to 2
  await store.instances.recordAppliedGeneration(id, 1);
  await store.instances.bumpDesiredGeneration(id);
  const sent: Array<number | undefined> = [];
  await serveGuest(id, {
    resize: async ({ generation }) => {
      sent.push(generation);
      return { generation };
    },
  });
  const taskId = await requestAction(id, 'resize_flavor', 'RESIZING', { oldFlavorId: 'f-small', newFlavorId: 'f-large' });
  assert.equal((await endedTask(taskId)).state, 'done');
  assert.deepEqual(sent, [2]);
  const instance = await store.instances.get(id);
  assert.deepEqual([instance?.desiredGeneration, instance?.appliedGeneration], [2, 2]);
});

test('a late answer of an older generation never lowers the applied one', async () => {
  const id = await runningInstance();
  await store.instances.bumpDesiredGeneration(id);
  await store.instances.bumpDesiredGeneration(id);
  // a newer change was already recorded applied (3) when this task's guest answers an older one
  await store.instances.recordAppliedGeneration(id, 3);
  await serveGuest(id, { updateAccess: async () => ({ generation: 2 }) });
  const taskId = await requestAction(id, 'update_access', 'UPDATING', {});
  assert.equal((await endedTask(taskId)).state, 'done');
  assert.equal((await store.instances.get(id))?.appliedGeneration, 3);
});

test('resize volume tells the guest the new size, records it and ends the task', async () => {
  const id = await runningInstance();
  const told: number[] = [];
  await serveGuest(id, {
    resizeVolume: async ({ sizeGb }) => {
      told.push(sizeGb);
      return { totalBytes: sizeGb * 1024 ** 3, usedBytes: 1 };
    },
  });
  const taskId = await requestAction(id, 'resize_volume', 'RESIZING', { oldSizeGb: 2, newSizeGb: 5 });
  assert.equal((await endedTask(taskId)).state, 'done');
  assert.deepEqual(told, [5]);
  const instance = await store.instances.get(id);
  assert.equal(instance?.volumeSizeGb, 5);
  assert.equal(instance?.taskStatus, 'NONE');
});

test('a resize of the volume the guest refuses gives the old size back, with a fault', async () => {
  const id = await runningInstance();
  await serveGuest(id, {
    resizeVolume: async () => {
      throw new CofferError('UnprocessableEntity', 'Instance is not prepared yet.');
    },
  });
  await store.instances.update(id, { volumeSizeGb: 4 });
  const taskId = await requestAction(id, 'resize_volume', 'RESIZING', { oldSizeGb: 2, newSizeGb: 4 });
  assert.equal((await endedTask(taskId)).state, 'failed');
  const instance = await store.instances.get(id);
  assert.deepEqual([instance?.volumeSizeGb, instance?.taskStatus], [2, 'NONE']);
  assert.match((await store.faults.latest(id))?.message ?? '', /^Resize of the volume failed: Instance is not prepared yet\./);
});

test('update access applies the access recorded on the instance through the guest', async () => {
  const access = { isPublic: false, allowedCidrs: ['10.1.0.0/16'] };
  const id = await runningInstance(access);
  const applied: AccessSpec[] = [];
  await serveGuest(id, {
    updateAccess: async ({ access: spec }) => {
      applied.push(spec);
      return {};
    },
  });
  const taskId = await requestAction(id, 'update_access', 'UPDATING', { requestId: 'req-2' });
  assert.equal((await endedTask(taskId)).state, 'done');
  assert.deepEqual(applied, [access]);
  assert.equal((await store.instances.get(id))?.taskStatus, 'NONE');
});

test('update access asked while the guest is away completes once it is back', async () => {
  const id = await runningInstance({ allowedCidrs: ['10.2.0.0/16'] });
  const taskId = await requestAction(id, 'update_access', 'UPDATING', {});
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal((await store.instances.get(id))?.taskStatus, 'UPDATING');
  let applied = 0;
  await serveGuest(id, {
    updateAccess: async () => {
      applied += 1;
      return {};
    },
  });
  assert.equal((await endedTask(taskId)).state, 'done');
  assert.equal(applied, 1);
  assert.equal((await store.instances.get(id))?.taskStatus, 'NONE');
});

test('an access update the guest refuses ends in UPDATING_ERROR_ACCESS with a fault', async () => {
  const id = await runningInstance({ allowedCidrs: ['10.3.0.0/16'] });
  await serveGuest(id, {
    updateAccess: async () => {
      throw new CofferError('BadRequest', 'Invalid client address range "10.3.0.0/99".');
    },
  });
  const taskId = await requestAction(id, 'update_access', 'UPDATING', {});
  assert.equal((await endedTask(taskId)).state, 'failed');
  assert.equal((await store.instances.get(id))?.taskStatus, 'UPDATING_ERROR_ACCESS');
  assert.equal((await store.faults.latest(id))?.message, 'Updating the access rules failed: Invalid client address range "10.3.0.0/99".');
});

test('an access update keeps a pending restart pending', async () => {
  const id = await runningInstance();
  await serveGuest(id);
  const taskId = await requestAction(id, 'update_access', 'UPDATING', { resumeTask: 'RESTART_REQUIRED' });
  assert.equal((await endedTask(taskId)).state, 'done');
  assert.equal((await store.instances.get(id))?.taskStatus, 'RESTART_REQUIRED');
});

test('a restart whose taskmanager stops mid-way is resumed by another one, without a fault', async () => {
  const id = await runningInstance();
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let restarts = 0;
  await serveGuest(id, {
    restart: async () => {
      restarts += 1;
      if (restarts === 1) await released;
      await heartbeat(id, 'HEALTHY');
      return {};
    },
  });
  const taskId = await requestAction(id, 'restart', 'REBOOTING', {}, { service: 'RESTARTING' });
  await eventually('the first taskmanager to call the guest', () => restarts, (n) => n === 1);
  // The first worker stops while the guest is busy; its flow must leave the task to another.
  const stopping = taskmanager.stop();
  release();
  await stopping;
  assert.equal((await store.tasks.get(taskId))?.state, 'running', 'left for another worker, not ended');
  assert.equal((await store.instances.get(id))?.taskStatus, 'REBOOTING');

  taskmanager = await startTaskmanager({ store, transport, logger: silentLogger(), leaseMs: 300, sweepIntervalMs: 50, statusPollMs: 10, workerId: 'second' });
  const ended = await endedTask(taskId);
  assert.equal(ended.state, 'done');
  assert.equal(ended.attempts, 2, 'claimed again once the lease ran out');
  assert.equal((await store.instances.get(id))?.taskStatus, 'NONE');
  assert.equal(await store.faults.latest(id), undefined);
});

test('resizes keep a restart a configuration group asked for: the engine may not have restarted', async () => {
  const id = await runningInstance();
  await serveGuest(id, { resize: async () => ({}) });
  const volume = await requestAction(id, 'resize_volume', 'RESIZING', { oldSizeGb: 2, newSizeGb: 3, resumeTask: 'RESTART_REQUIRED' });
  assert.equal((await endedTask(volume)).state, 'done');
  assert.deepEqual([(await store.instances.get(id))?.taskStatus, (await store.instances.get(id))?.volumeSizeGb], ['RESTART_REQUIRED', 3]);
  const flavor = await requestAction(id, 'resize_flavor', 'RESIZING', { oldFlavorId: 'f-small', newFlavorId: 'f-large', resumeTask: 'RESTART_REQUIRED' });
  assert.equal((await endedTask(flavor)).state, 'done');
  assert.deepEqual([(await store.instances.get(id))?.taskStatus, (await store.instances.get(id))?.flavorId], ['RESTART_REQUIRED', 'f-large']);
});

/** A configuration group of the instance's project and version, attached as the API attaches one. */
async function attachGroup(instanceId: string, values: Record<string, number | string | boolean>): Promise<string> {
  const instance = (await store.instances.get(instanceId))!;
  const id = randomUUID();
  const now = new Date();
  await store.configurations.create({ id, tenantId: instance.tenantId, name: 'g', description: null, datastoreVersionId: instance.datastoreVersionId, values, createdAt: now, updatedAt: now });
  await store.instances.update(instanceId, { configurationId: id });
  return id;
}

test('apply_configuration sends the group’s values as they are when it runs, and ends RESTART_REQUIRED when a restart is pending', async () => {
  const id = await runningInstance();
  const group = await attachGroup(id, { work_mem: 1024 });
  const applied: unknown[] = [];
  let statusDuringApply: string | undefined;
  await serveGuest(id, {
    applyConfiguration: async ({ overrides }) => {
      applied.push(overrides);
      statusDuringApply = (await store.instances.get(id))?.taskStatus;
      return { pendingRestart: ['max_connections'] };
    },
  });
  await store.configurations.update(group, { values: { work_mem: 2048, max_connections: 50 } });
  const taskId = await requestAction(id, 'apply_configuration', 'UPDATING', { requestId: 'req-cfg', previousConfigurationId: null });
  assert.equal((await endedTask(taskId)).state, 'done');
  assert.deepEqual(applied, [{ work_mem: 2048, max_connections: 50 }]);
  assert.equal(statusDuringApply, 'UPDATING');
  const instance = await store.instances.get(id);
  assert.deepEqual([instance?.taskStatus, instance?.configurationId, instance?.taskStartTime], ['RESTART_REQUIRED', group, null]);
  assert.equal(await store.faults.latest(id), undefined);
});

test('apply_configuration resumed after the guest answered does not apply again: the recorded pending restarts decide', async () => {
  const id = await runningInstance();
  await attachGroup(id, { work_mem: 1024 });
  let applies = 0;
  await serveGuest(id, {
    applyConfiguration: async () => {
      applies += 1;
      return { pendingRestart: [] };
    },
  });
  const pending = await requestAction(id, 'apply_configuration', 'UPDATING', { previousConfigurationId: null, pendingRestart: ['shared_buffers'] }, { step: 'applied' });
  assert.equal((await endedTask(pending)).state, 'done');
  assert.equal(applies, 0);
  assert.equal((await store.instances.get(id))?.taskStatus, 'RESTART_REQUIRED');
  // a group change applied while a restart was owed keeps it owed, even when nothing new is pending
  const again = await requestAction(id, 'apply_configuration', 'UPDATING', { previousConfigurationId: null, resumeTask: 'RESTART_REQUIRED' });
  assert.equal((await endedTask(again)).state, 'done');
  assert.equal(applies, 1);
  assert.equal((await store.instances.get(id))?.taskStatus, 'RESTART_REQUIRED');
});

test('an attach whose group was deleted meanwhile returns the instance to its previous group, with a fault', async () => {
  const id = await runningInstance();
  const previous = await attachGroup(id, { work_mem: 64 });
  const gone = await attachGroup(id, { work_mem: 128 });
  await store.configurations.markDeleted(gone, new Date());
  let applies = 0;
  await serveGuest(id, {
    applyConfiguration: async () => {
      applies += 1;
      return { pendingRestart: [] };
    },
  });
  const taskId = await requestAction(id, 'apply_configuration', 'UPDATING', { previousConfigurationId: previous });
  assert.equal((await endedTask(taskId)).state, 'failed');
  assert.equal(applies, 0, 'nothing reached the guest');
  assert.deepEqual([(await store.instances.get(id))?.configurationId, (await store.instances.get(id))?.taskStatus], [previous, 'NONE']);
  assert.equal(
    (await store.faults.latest(id))?.message,
    `Applying the configuration failed: Configuration group with ID ${gone} could not be found: it was deleted. The instance keeps configuration group ${previous} and the values it ran with.`,
  );
});

test('stop: the guest stops the engine; the instance rests STOPPED with the service SHUTDOWN, even after a pending restart', async () => {
  const id = await runningInstance();
  // a configuration change waits for a restart: heartbeats never overwrite that status
  await store.serviceStatuses.set({ instanceId: id, status: 'RESTART_REQUIRED', updatedAt: new Date() });
  let stops = 0;
  let statusDuringStop: string | undefined;
  await serveGuest(id, {
    stopDb: async () => {
      stops += 1;
      statusDuringStop = (await store.instances.get(id))?.taskStatus;
      await heartbeat(id, 'SHUTDOWN');
      return {};
    },
  });
  const taskId = await requestAction(id, 'stop', 'STOPPING', { requestId: 'req-stop', resumeTask: 'RESTART_REQUIRED' });
  assert.equal((await endedTask(taskId)).state, 'done');
  assert.equal(stops, 1);
  assert.equal(statusDuringStop, 'STOPPING');
  const instance = await store.instances.get(id);
  assert.equal(instance?.taskStatus, 'STOPPED');
  assert.equal(instance?.taskStartTime, null);
  assert.equal((await store.serviceStatuses.get(id))?.status, 'SHUTDOWN');
  assert.equal(await store.faults.latest(id), undefined);
});

test('a stop resumed after the guest answered does not ask it again', async () => {
  const id = await runningInstance();
  let stops = 0;
  await serveGuest(id, {
    stopDb: async () => {
      stops += 1;
      return {};
    },
  });
  const taskId = await requestAction(id, 'stop', 'STOPPING', {}, { step: 'stopped' });
  assert.equal((await endedTask(taskId)).state, 'done');
  assert.equal(stops, 0);
  assert.equal((await store.instances.get(id))?.taskStatus, 'STOPPED');
});

test('a stop the guest fails has the engine run again and returns the instance to where it was, with a fault', async () => {
  const id = await runningInstance();
  const calls: string[] = [];
  await serveGuest(id, {
    stopDb: async () => {
      calls.push('stopDb');
      throw new CofferError('EngineError', 'postgres did not stop within 60 s');
    },
    startDb: async () => {
      calls.push('startDb');
      return {};
    },
  });
  const taskId = await requestAction(id, 'stop', 'STOPPING', { resumeTask: 'RESTART_REQUIRED' });
  assert.equal((await endedTask(taskId)).state, 'failed');
  assert.deepEqual(calls, ['stopDb', 'startDb'], 'the guest is told to supervise the engine as before');
  assert.equal((await store.instances.get(id))?.taskStatus, 'RESTART_REQUIRED', 'the pending restart stays pending');
  assert.equal((await store.faults.latest(id))?.message, 'Stop failed: postgres did not stop within 60 s');
});

test('start: the guest starts the engine, and the task ends once the conductor has a healthy heartbeat', async () => {
  const id = await runningInstance();
  await store.instances.update(id, { taskStatus: 'STOPPED' });
  await store.serviceStatuses.set({ instanceId: id, status: 'SHUTDOWN', updatedAt: new Date() });
  let starts = 0;
  await serveGuest(id, {
    startDb: async () => {
      starts += 1;
      await heartbeat(id, 'HEALTHY');
      return {};
    },
  });
  const taskId = await requestAction(id, 'start', 'STARTING', { requestId: 'req-start' });
  assert.equal((await endedTask(taskId)).state, 'done');
  assert.equal(starts, 1);
  assert.equal((await store.instances.get(id))?.taskStatus, 'NONE');
  assert.equal((await store.serviceStatuses.get(id))?.status, 'HEALTHY');
  assert.equal(await store.faults.latest(id), undefined);
});

test('a start the guest fails keeps the instance stopped, with a fault, so that it can be started again', async () => {
  const id = await runningInstance();
  await store.serviceStatuses.set({ instanceId: id, status: 'SHUTDOWN', updatedAt: new Date() });
  const calls: string[] = [];
  await serveGuest(id, {
    startDb: async () => {
      calls.push('startDb');
      throw new CofferError('EngineError', 'postgres: could not bind to 127.95.0.9:5432');
    },
    stopDb: async () => {
      calls.push('stopDb');
      return {};
    },
  });
  const taskId = await requestAction(id, 'start', 'STARTING', {});
  assert.equal((await endedTask(taskId)).state, 'failed');
  assert.deepEqual(calls, ['startDb', 'stopDb'], 'the guest is told to keep the engine stopped again');
  assert.equal((await store.instances.get(id))?.taskStatus, 'STOPPED');
  assert.equal((await store.serviceStatuses.get(id))?.status, 'SHUTDOWN');
  assert.equal((await store.faults.latest(id))?.message, 'Start failed: postgres: could not bind to 127.95.0.9:5432');
});
